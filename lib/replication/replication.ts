import { Cluster, type TransportStats } from '../cluster/cluster.js'
import type { MessageLimits } from '../protocol/messages.js'
import type { Member, MemberState } from '../cluster/peer-link.js'
import { MAX_BATCH, type ClusterOptions } from '../peer-store/options.js'
import type { SessionLimits } from '../codec/session-codec.js'
import type { LocalChange, SessionTable } from '../table/session-table.js'
import type { Version } from '../table/version.js'
import { Replicator, type ReplicatedChange } from './all-to-all.js'

export interface ReplicationEvents {
  memberChanged(member: Member, previous: MemberState): void
  replicated(sid: string | null, change: ReplicatedChange, from: string): void
  synced(peer: string, sessions: number, durationMs: number): void
  peerError(error: Error, remote: string): void
}

/**
 * The replicating half of a PeerStore: the cluster transport and the replicator, wired together.
 * The store hands it local changes and asks it about misses; it never sees a socket.
 */
export class Replication {
  readonly #cluster: Cluster
  readonly #replicator: Replicator
  readonly #options: ClusterOptions

  constructor(table: SessionTable, options: ClusterOptions, session: SessionLimits, events: ReplicationEvents) {
    this.#options = options
    const limits: MessageLimits = { session, maxBatch: MAX_BATCH }
    this.#cluster = new Cluster(options, limits, {
      message: (message, connection, peer) => this.#replicator.handle(message, connection, peer),
      connected: (peer, connection) => this.#replicator.connected(peer, connection),
      needsResync: (peer, connection) => this.#replicator.resync(peer, connection),
      memberChanged: (member, previous) => events.memberChanged(member, previous),
      connectionError: (error, remote) => events.peerError(error, remote),
    })
    this.#replicator = new Replicator(table, this.#cluster, options, limits, {
      replicated: (sid, change, from) => events.replicated(sid, change, from),
      synced: (peer, sessions, durationMs) => events.synced(peer, sessions, durationMs),
    })
  }

  /** Opens the replication port and starts reaching the peers. */
  start(): Promise<void> {
    return this.#cluster.start()
  }

  /** The replication port actually bound. */
  get port(): number {
    return this.#cluster.port
  }

  get syncing(): boolean {
    return this.#replicator.syncing
  }

  publish(change: LocalChange): Promise<void> | undefined {
    return this.#replicator.publish(change)
  }

  publishClear(epoch: Version): Promise<void> | undefined {
    return this.#replicator.publishClear(epoch)
  }

  fetchMissing(sid: string): Promise<void> {
    return this.#replicator.fetchMissing(sid)
  }

  members(): Member[] {
    return this.#cluster.members()
  }

  stats(): TransportStats {
    return { ...this.#cluster.stats }
  }

  /** Sends pending changes to live peers (within `closeTimeout`), says goodbye, closes every socket. */
  async stop(): Promise<void> {
    this.#replicator.flush()
    await this.#cluster.stop(this.#options.closeTimeoutMs)
    this.#replicator.stop()
  }
}

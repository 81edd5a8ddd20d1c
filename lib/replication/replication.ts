import { InvalidOptionError } from '../base/errors.js'
import type { PeerAddress } from '../cluster/address.js'
import type { TransportStats } from '../cluster/cluster.js'
import type { Member, MemberState } from '../cluster/peer-link.js'
import type { LocalChange } from '../table/session-table.js'
import type { Version } from '../table/version.js'
import type { RedisTierStats } from './redis/redis-replication.js'

/** Backups mode: the trims that let go of copies this node no longer holds. */
export interface BackupStats {
  /** Trim passes run (after membership changes, and again while copies wait for confirmation). */
  trims: number
  /** Copies let go, each once every holder had shown it has that version or a newer one. */
  released: number
}

/** What a replication counts: the transport's counters, the Redis tier's and the backups' when there are. */
export interface ReplicationStats extends TransportStats {
  readonly redis?: RedisTierStats
  readonly backups?: BackupStats
}

/** The kind of change a `session:replicated` event reports. */
export type ReplicatedChange = 'upsert' | 'destroy' | 'expiry' | 'clear'

/** What a replication reports to the store above it. */
export interface ReplicationEvents {
  memberChanged(member: Member, previous: MemberState): void
  /** A change from elsewhere was applied here (only with `notifyOnReplication`). `sid` is null for a clear. */
  replicated(sid: string | null, change: ReplicatedChange, from: string): void
  /** A synchronisation with a peer finished: `sessions` entries were fetched from it. */
  synced(peer: string, sessions: number, durationMs: number): void
  /** Recoverable trouble with a peer (a bad frame, a refused handshake). */
  peerError(error: Error, remote: string): void
  /** The Redis tier reached Redis and wrote back the `sessions` this node holds (by version). */
  redisUp?(sessions: number, durationMs: number): void
  /** The Redis tier lost Redis (`reason`: the connection event): changes wait, requests go on. */
  redisDown?(reason: string): void
  /** A state transfer from `peer` advanced (see `SyncProgress`). */
  syncProgress?(progress: SyncProgress): void
  /** A timing for monitoring (see `Measurement`); called on hot paths, so it must be cheap. */
  measured?(measurement: Measurement): void
}

/** How far a state transfer from one peer has got: done so far, and what the peer's digest promised. */
export interface SyncProgress {
  readonly peer: string
  readonly sessions: number
  readonly bytes: number
  readonly expectedSessions: number
  readonly expectedBytes: number
}

/**
 * Timings the replication takes for monitoring (the metrics entry turns them into histograms):
 * - `lag`: from the sender's clock in a batch to its arrival here (receiver side);
 * - `apply`: applying one received batch of changes here;
 * - `ack`: from a local write to its confirmation by the peers (`sendMode` 'ack' or 'sync');
 * - `transfer`: one whole state transfer from `peer`, with the sessions it brought.
 */
export type Measurement =
  | { readonly kind: 'lag'; readonly peer: string; readonly seconds: number }
  | { readonly kind: 'apply'; readonly peer: string; readonly seconds: number }
  | { readonly kind: 'ack'; readonly seconds: number }
  | { readonly kind: 'transfer'; readonly peer: string; readonly seconds: number; readonly sessions: number }

/**
 * Where sessions go besides this node's memory, and where a miss is looked up: the one seam between
 * the PeerStore and everything that moves sessions between processes. The all-to-all replicator of
 * today sits behind it; a primary/backup replicator or a Redis tier are siblings. The store hands
 * it every local change (`LocalChange`, from the session table) and asks it about misses; it never
 * sees a socket.
 */
export interface Replication {
  /** Opens whatever it listens on and starts reaching the others; rejects with `ListenError`. */
  start(): Promise<void>
  /** The replication port actually bound, if it listens on one. */
  readonly port: number | undefined
  /** True while this node may still lack sessions that exist elsewhere (a first transfer runs). */
  readonly syncing: boolean
  /** Sends a local change on; resolves as `sendMode` says (undefined: nothing to wait for). */
  publish(change: LocalChange): Promise<void> | undefined
  /** Says that this node cleared everything and started `epoch`. */
  publishClear(epoch: Version): Promise<void> | undefined
  /** A miss here: asks wherever the session may be (bounded by `fetchTimeout`); resolves when done. */
  fetchMissing(sid: string): Promise<void>
  /**
   * Whether a copy here, last written by `origin`, may be served as it is; when not (a copy this
   * node does not hold in backups mode), it is asked for like a miss first. Absent: always.
   */
  isCurrent?(sid: string, origin: string): boolean
  /** The nodes that hold `sid` last written by `origin`, best first; undefined where every node holds every session. */
  holders?(sid: string, origin: string): readonly string[] | undefined
  /** The peers and their state. */
  members(): Member[]
  /** Its counters; the store fills in zeros for whatever it leaves out. */
  stats(): Partial<ReplicationStats>
  /** Sends what is pending (within `closeTimeout`), says goodbye, closes everything. */
  stop(): Promise<void>
  /**
   * Adds a peer at run time (see `Cluster.addPeer`); it is dialed and gets state transfer as at
   * start. Absent where there are no peers (the Redis tier alone).
   */
  addPeer?(address: PeerAddress): Member
  /**
   * Forgets a peer named by node id or address, after a goodbye; throws `InvalidArgumentError` for
   * an unknown one. Returns what it was and a promise of the goodbye.
   */
  removePeer?(name: string): { member: Member; goodbye: Promise<void> }
}

/** What `addPeer`/`removePeer` throw on a store that has no peers to change. */
export function noPeersError(method: string): InvalidOptionError {
  return new InvalidOptionError(
    'listen',
    `a \`listen\` address and a \`nodeId\` given to the constructor: ${method}() changes the peers of a store that ` +
      'replicates to peers, and this one has none (no `listen`, or a Redis tier only)',
    undefined,
  )
}

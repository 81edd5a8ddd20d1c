import type { PeerAddress } from '../cluster/address.js'
import type { Member } from '../cluster/peer-link.js'
import type { LocalChange, SessionTable } from '../table/session-table.js'
import type { Version } from '../table/version.js'
import { noPeersError, type Replication, type ReplicationStats } from './replication.js'

/**
 * Several replications behind the one seam, side by side: the peers and a Redis tier. Every change
 * goes to each; a miss asks each in turn (the peers first) until the session is here.
 */
export class CompositeReplication implements Replication {
  readonly #parts: readonly Replication[]
  readonly #table: SessionTable

  constructor(table: SessionTable, parts: readonly Replication[]) {
    this.#table = table
    this.#parts = parts
  }

  start(): Promise<void> {
    return Promise.all(this.#parts.map((part) => part.start())).then(() => undefined)
  }

  get port(): number | undefined {
    return this.#parts.find((part) => part.port !== undefined)?.port
  }

  get syncing(): boolean {
    return this.#parts.some((part) => part.syncing)
  }

  publish(change: LocalChange): Promise<void> | undefined {
    return all(this.#parts.map((part) => part.publish(change)))
  }

  publishClear(epoch: Version): Promise<void> | undefined {
    return all(this.#parts.map((part) => part.publishClear(epoch)))
  }

  isCurrent(sid: string, origin: string): boolean {
    return this.#parts.every((part) => part.isCurrent?.(sid, origin) ?? true)
  }

  async fetchMissing(sid: string): Promise<void> {
    for (const part of this.#parts) {
      await part.fetchMissing(sid)
      if (this.#table.get(sid, Date.now())) return
    }
  }

  members(): Member[] {
    return this.#parts.flatMap((part) => part.members())
  }

  stats(): Partial<ReplicationStats> {
    return Object.assign({}, ...this.#parts.map((part) => part.stats())) as Partial<ReplicationStats>
  }

  async stop(): Promise<void> {
    await Promise.all(this.#parts.map((part) => part.stop()))
  }

  /** Adds the peer to the part that has peers; throws `InvalidOptionError` when none has. */
  addPeer(address: PeerAddress): Member {
    const part = this.#parts.find((each) => each.addPeer !== undefined)
    if (!part?.addPeer) throw noPeersError('addPeer')
    return part.addPeer(address)
  }

  removePeer(name: string): { member: Member; goodbye: Promise<void> } {
    const part = this.#parts.find((each) => each.removePeer !== undefined)
    if (!part?.removePeer) throw noPeersError('removePeer')
    return part.removePeer(name)
  }
}

/** One promise for those there are, or undefined when nothing is to be waited for. */
function all(waits: ReadonlyArray<Promise<void> | undefined>): Promise<void> | undefined {
  const pending = waits.filter((wait): wait is Promise<void> => wait !== undefined)
  if (pending.length === 0) return undefined
  return pending.length === 1 ? pending[0] : Promise.all(pending).then(() => undefined)
}

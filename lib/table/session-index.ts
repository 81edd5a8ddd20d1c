import { readMeta } from '../codec/session-meta.js'
import { routeOf } from './session-id.js'
import type { Entry, TableWatcher } from './session-table.js'

/** What the index knows of one live session. */
export interface IndexedSession {
  /** The user it belongs to, or null for an anonymous session. */
  readonly principal: string | null
  /** When it was created (ms since the epoch), as its bytes say; when first seen here otherwise. */
  readonly createdAt: number
  /** When it was last read, written or touched here (ms since the epoch). */
  readonly lastAccess: number
}

interface Indexed extends IndexedSession {
  principal: string | null
  createdAt: number
  lastAccess: number
  /** The bytes the principal was read from: a change of bytes is the only reason to read it again. */
  blob: Buffer
  /** Owned by this node: its id is routed here (or, without a route, it was first seen written here). */
  readonly here: boolean
}

/**
 * The live sessions by principal, and by recency of use: what `sessionsOf`, `destroyAllOf` and the
 * session limits ask. Kept by the session table's watcher, so every change counts, whoever made it
 * (a local write, a peer, an expiry): an index entry lives exactly as long as its session.
 *
 * Recency is kept in insertion-ordered maps, each re-inserted on use, so that the first key of each
 * is its least recently used session, found in O(1): anonymous sessions owned by this node,
 * anonymous sessions owned by others, and sessions with a principal. Evicting this node's own
 * sessions first keeps two nodes that both make room from evicting the same session at once.
 */
export class SessionIndex implements TableWatcher {
  readonly #nodeId: string
  readonly #records = new Map<string, Indexed>()
  readonly #anonymousHere = new Map<string, Indexed>()
  readonly #anonymousElsewhere = new Map<string, Indexed>()
  readonly #owned = new Map<string, Indexed>()
  readonly #byPrincipal = new Map<string, Set<string>>()

  constructor(nodeId: string) {
    this.#nodeId = nodeId
  }

  stored(sid: string, entry: Readonly<Entry>, now: number): void {
    const blob = entry.blob!
    let record = this.#records.get(sid)
    if (record === undefined || record.blob !== blob) {
      const meta = readMeta(blob)
      const principal = meta?.principal ?? null
      if (record !== undefined && record.principal !== principal) this.#unlink(sid, record)
      if (record === undefined || record.principal !== principal) {
        const here = record?.here ?? (routeOf(sid) ?? entry.origin) === this.#nodeId
        // A creation time from a peer is never taken to be in the future.
        const createdAt = Math.min(meta?.createdAt ?? record?.createdAt ?? now, now)
        record = { principal, createdAt, lastAccess: now, blob, here }
        this.#link(sid, record)
      } else {
        record.blob = blob
        if (meta) record.createdAt = Math.min(meta.createdAt, now)
      }
    }
    this.#used(sid, record, now)
  }

  removed(sid: string): void {
    const record = this.#records.get(sid)
    if (record !== undefined) this.#unlink(sid, record)
  }

  /** A read of `sid` here: it counts as a use for the eviction order. */
  accessed(sid: string, now: number): void {
    const record = this.#records.get(sid)
    if (record !== undefined) this.#used(sid, record, now)
  }

  get(sid: string): IndexedSession | undefined {
    return this.#records.get(sid)
  }

  /** Ids of the live sessions of `principal` (a copy: safe to destroy them while iterating). */
  sessionsOf(principal: string): string[] {
    return [...(this.#byPrincipal.get(principal) ?? [])]
  }

  /**
   * The least recently used anonymous session, this node's own first; then (only when `orOwned`)
   * the least recently used one with a principal.
   */
  leastRecentlyUsed(orOwned: boolean): string | undefined {
    for (const sid of this.#anonymousHere.keys()) return sid
    for (const sid of this.#anonymousElsewhere.keys()) return sid
    if (orOwned) for (const sid of this.#owned.keys()) return sid
    return undefined
  }

  #used(sid: string, record: Indexed, now: number): void {
    record.lastAccess = now
    const recency = this.#recencyOf(record)
    recency.delete(sid)
    recency.set(sid, record)
  }

  #recencyOf(record: Indexed): Map<string, Indexed> {
    if (record.principal !== null) return this.#owned
    return record.here ? this.#anonymousHere : this.#anonymousElsewhere
  }

  #link(sid: string, record: Indexed): void {
    this.#records.set(sid, record)
    if (record.principal === null) return
    let sids = this.#byPrincipal.get(record.principal)
    if (sids === undefined) this.#byPrincipal.set(record.principal, (sids = new Set()))
    sids.add(sid)
  }

  #unlink(sid: string, record: Indexed): void {
    this.#records.delete(sid)
    this.#recencyOf(record).delete(sid)
    if (record.principal === null) return
    const sids = this.#byPrincipal.get(record.principal)
    sids?.delete(sid)
    if (sids?.size === 0) this.#byPrincipal.delete(record.principal)
  }
}

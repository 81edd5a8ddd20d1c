import type { EncodedSession } from '../codec/session-codec.js'
import { ExpiryWheel } from './expiry-wheel.js'
import { compareVersions, NO_VERSION, sameVersion, type Version } from './version.js'

/**
 * One stored session, or the tombstone of a destroyed one (`blob === null`). Plain mutable records
 * of a single shape: the table may hold a million of them.
 */
export interface Entry {
  /** msgpack map of the session's top-level fields; null for a tombstone. */
  blob: Buffer | null
  /** `cookie.expires` in ms since the epoch, or null. */
  cookieExpires: number | null
  /** When the session expires; for a tombstone, when it is forgotten. */
  expiresAt: number
  /** Version counter and the node that made this version (see `version.ts`). */
  counter: number
  origin: string
  /** When the expiry was last rewritten here, for `touchAfter`. */
  expiryWrittenAt: number
}

/** What a local write changed, for the replicator to send to the peers. */
export type LocalChange =
  | {
      readonly kind: 'upsert'
      readonly sid: string
      readonly base: Version
      readonly entry: Readonly<Entry>
      /** The bytes before this change (null for a create), to diff against. */
      readonly previous: Buffer | null
    }
  | { readonly kind: 'expiry'; readonly sid: string; readonly entry: Readonly<Entry> }
  | { readonly kind: 'destroy'; readonly sid: string; readonly entry: Readonly<Entry> }
  | {
      readonly kind: 'rename'
      readonly sid: string
      readonly to: string
      readonly base: Version
      /** The entry now under `to`. */
      readonly entry: Readonly<Entry>
      /** The tombstone left under `sid`. */
      readonly tombstone: Readonly<Entry>
    }

/** What applying a change from a peer did. */
export type RemoteResult =
  /** Applied. */
  | 'applied'
  /** Already here, or older than what is here: nothing to do. */
  | 'stale'
  /** Made on top of a version this node does not have: the whole entry must be fetched. */
  | 'needs-full'

export interface SessionTableOptions {
  readonly nodeId: string
  /** How long a tombstone outlives `now` at least, in ms. */
  readonly tombstoneTtlMs: number
  /** Width of an expiry bucket, in ms. */
  readonly expiryResolutionMs: number
}

/**
 * The sessions this node holds, with their versions and expiry. Knows nothing of sockets or of
 * express-session. Local writes return the change they made, for the replicator; changes from
 * peers are applied only on top of the version they were made from (see `version.ts`).
 */
export class SessionTable {
  readonly #entries = new Map<string, Entry>()
  readonly #wheel: ExpiryWheel
  readonly #options: SessionTableOptions
  #liveCount = 0

  constructor(options: SessionTableOptions, now: number) {
    this.#options = options
    this.#wheel = new ExpiryWheel(options.expiryResolutionMs, now)
  }

  /** Live sessions, counting any that expired but were not yet reclaimed by a sweep. */
  get liveCount(): number {
    return this.#liveCount
  }

  /** Tombstones of destroyed sessions not yet forgotten. */
  get tombstoneCount(): number {
    return this.#entries.size - this.#liveCount
  }

  /** The live, unexpired entry for `sid`; reclaims it on the spot if it has expired. */
  get(sid: string, now: number): Entry | undefined {
    const entry = this.#entries.get(sid)
    if (!entry || entry.blob === null) return undefined
    if (entry.expiresAt <= now) {
      this.#forget(sid, entry)
      return undefined
    }
    return entry
  }

  /** Whatever is stored under `sid`, tombstone or expired entry included. */
  peek(sid: string): Readonly<Entry> | undefined {
    return this.#entries.get(sid)
  }

  /** Every entry, tombstones included, for digests. Safe to use across awaits. */
  entries(): IterableIterator<[string, Readonly<Entry>]> {
    return this.#entries.entries()
  }

  // ---- local writes -----------------------------------------------------------------------------

  /**
   * Writes a session. Unchanged bytes only move the expiry, at most once per `touchAfterMs`.
   * Returns the change, or undefined when nothing changed or the id is destroyed.
   */
  upsert(sid: string, session: EncodedSession, expiresAt: number, now: number, touchAfterMs: number): LocalChange | undefined {
    const entry = this.#entries.get(sid)
    if (entry?.blob === null) return undefined
    if (!entry || entry.expiresAt <= now) {
      if (entry) this.#forget(sid, entry)
      const created = this.#newEntry(session.blob, session.cookieExpires, expiresAt, NO_VERSION.counter + 1, this.#options.nodeId, now)
      this.#insert(sid, created)
      return { kind: 'upsert', sid, base: NO_VERSION, entry: created, previous: null }
    }
    if (entry.blob.equals(session.blob)) return this.rewriteExpiry(sid, entry, expiresAt, session.cookieExpires, now, touchAfterMs)
    return this.replaceBlob(sid, entry, session.blob, session.cookieExpires, expiresAt, now)
  }

  /** Replaces the bytes of a live entry as a new local version. */
  replaceBlob(sid: string, entry: Entry, blob: Buffer, cookieExpires: number | null, expiresAt: number, now: number): LocalChange {
    const base: Version = { counter: entry.counter, origin: entry.origin }
    const previous = entry.blob
    this.#moveExpiry(sid, entry, expiresAt)
    entry.blob = blob
    entry.cookieExpires = cookieExpires
    entry.counter += 1
    entry.origin = this.#options.nodeId
    entry.expiryWrittenAt = now
    return { kind: 'upsert', sid, base, entry, previous }
  }

  /**
   * Moves a live entry's expiry unless it was rewritten less than `touchAfterMs` ago; but never lets
   * a session lapse because of that limit: an expiry closer than `touchAfterMs` is always rewritten.
   */
  rewriteExpiry(sid: string, entry: Entry, expiresAt: number, cookieExpires: number | null, now: number, touchAfterMs: number): LocalChange | undefined {
    if (entry.expiresAt === expiresAt && entry.cookieExpires === cookieExpires) return undefined
    const recentlyWritten = now - entry.expiryWrittenAt < touchAfterMs
    const lapsesSoon = entry.expiresAt - now < touchAfterMs
    if (recentlyWritten && !lapsesSoon) return undefined
    this.#moveExpiry(sid, entry, expiresAt)
    entry.cookieExpires = cookieExpires
    entry.expiryWrittenAt = now
    return { kind: 'expiry', sid, entry }
  }

  /**
   * Turns a session into a tombstone, so that no late write or stale copy brings it back. A tombstone
   * is kept until the session would have expired, and at least `tombstoneTtlMs`.
   */
  destroy(sid: string, now: number): LocalChange | undefined {
    const entry = this.#entries.get(sid)
    if (entry?.blob === null) return undefined
    const keepUntil = Math.max(entry && entry.expiresAt > now ? entry.expiresAt : 0, now + this.#options.tombstoneTtlMs)
    const tombstone = this.#bury(sid, entry, (entry?.counter ?? 0) + 1, this.#options.nodeId, keepUntil, now)
    return { kind: 'destroy', sid, entry: tombstone }
  }

  /**
   * Moves a live session to a new id, as a new local version; the old id becomes a tombstone.
   * Returns undefined when there is no live session under `sid` or `to` is taken.
   */
  rename(sid: string, to: string, now: number): LocalChange | undefined {
    const entry = this.get(sid, now)
    if (!entry || this.#entries.has(to)) return undefined
    const base: Version = { counter: entry.counter, origin: entry.origin }
    const counter = entry.counter + 1
    const moved = this.#newEntry(entry.blob, entry.cookieExpires, entry.expiresAt, counter, this.#options.nodeId, now)
    const keepUntil = Math.max(entry.expiresAt, now + this.#options.tombstoneTtlMs)
    const tombstone = this.#bury(sid, entry, counter, this.#options.nodeId, keepUntil, now)
    this.#insert(to, moved)
    return { kind: 'rename', sid, to, base, entry: moved, tombstone }
  }

  /** Forgets everything, tombstones included. */
  clear(): void {
    this.#entries.clear()
    this.#wheel.clear()
    this.#liveCount = 0
  }

  /** Ids of live, unexpired sessions. */
  *liveIds(now: number): IterableIterator<string> {
    for (const [sid, entry] of this.#entries) if (entry.blob !== null && entry.expiresAt > now) yield sid
  }

  /** Reclaims every expired session and forgotten tombstone whose expiry bucket came due. */
  sweep(now: number): void {
    this.#wheel.sweep(now, (sid) => {
      const entry = this.#entries.get(sid)
      if (!entry) return
      if (entry.expiresAt <= now) this.#forget(sid, entry)
      else this.#wheel.add(sid, entry.expiresAt) // rewritten after it was bucketed: keep watching
    })
  }

  // ---- changes from peers -----------------------------------------------------------------------

  /**
   * Applies a delta made on top of `base`. `apply` turns the current bytes (null for a create) into
   * the new ones; it runs only when the delta fits.
   */
  applyDelta(
    sid: string,
    base: Version,
    version: Version,
    expiresAt: number,
    cookieExpires: number | null,
    now: number,
    apply: (current: Buffer | null) => Buffer,
  ): RemoteResult {
    const entry = this.#liveOrTombstone(sid, now)
    if (entry?.blob === null) return 'stale' // destroy is final
    const current: Version = entry ?? NO_VERSION
    if (!sameVersion(current, base)) return compareVersions(version, false, current, false) <= 0 ? 'stale' : 'needs-full'
    if (expiresAt <= now) {
      if (entry) this.#forget(sid, entry)
      return 'applied'
    }
    const blob = apply(entry?.blob ?? null)
    if (entry) {
      this.#moveExpiry(sid, entry, expiresAt)
      entry.blob = blob
      entry.cookieExpires = cookieExpires
      entry.counter = version.counter
      entry.origin = version.origin
      entry.expiryWrittenAt = now
    } else {
      this.#insert(sid, this.#newEntry(blob, cookieExpires, expiresAt, version.counter, version.origin, now))
    }
    return 'applied'
  }

  /** Applies a whole entry (a session, or a tombstone when `blob` is null) if it is newer than ours. */
  applySnapshot(sid: string, version: Version, blob: Buffer | null, expiresAt: number, cookieExpires: number | null, now: number): RemoteResult {
    const entry = this.#liveOrTombstone(sid, now)
    if (expiresAt <= now) return 'stale'
    if (entry && compareVersions(version, blob === null, entry, entry.blob === null) <= 0) {
      if (entry.blob === null && blob === null && expiresAt > entry.expiresAt) this.#moveExpiry(sid, entry, expiresAt)
      return 'stale'
    }
    if (blob === null) {
      this.#bury(sid, entry, version.counter, version.origin, expiresAt, now)
      return 'applied'
    }
    if (entry) this.#forget(sid, entry)
    this.#insert(sid, this.#newEntry(blob, cookieExpires, expiresAt, version.counter, version.origin, now))
    return 'applied'
  }

  /**
   * Applies a peer's rename: the old id is buried whatever happens (a rename ends it); the data
   * moves only if this node has the exact version that moved, else the new id must be fetched.
   */
  applyRename(from: string, to: string, base: Version, version: Version, keepUntil: number, now: number): RemoteResult {
    const entry = this.#liveOrTombstone(from, now)
    const movable = entry && entry.blob !== null && sameVersion(entry, base) ? entry : undefined
    if (!entry || entry.blob !== null) this.#bury(from, entry, version.counter, version.origin, keepUntil, now)
    if (!movable) {
      const existing = this.#liveOrTombstone(to, now)
      return existing && compareVersions(existing, existing.blob === null, version, false) >= 0 ? 'stale' : 'needs-full'
    }
    return this.applySnapshot(to, version, movable.blob, movable.expiresAt, movable.cookieExpires, now)
  }

  /** Applies a destroy: a tombstone wins over any live version. */
  applyDestroy(sid: string, version: Version, keepUntil: number, now: number): RemoteResult {
    return this.applySnapshot(sid, version, null, keepUntil, null, now)
  }

  /**
   * Applies a peer's expiry change for `version`. A later version carries its own expiry, so a
   * change for another version is stale; between two changes for the same version the later expiry wins.
   */
  applyExpiry(sid: string, version: Version, expiresAt: number, cookieExpires: number | null, now: number): RemoteResult {
    const entry = this.get(sid, now)
    if (!entry || !sameVersion(entry, version) || expiresAt <= entry.expiresAt) return 'stale'
    this.#moveExpiry(sid, entry, expiresAt)
    entry.cookieExpires = cookieExpires
    return 'applied'
  }

  // ---- internals --------------------------------------------------------------------------------

  /** The entry for `sid`, forgetting it first if it is a session that has expired. */
  #liveOrTombstone(sid: string, now: number): Entry | undefined {
    const entry = this.#entries.get(sid)
    if (entry && entry.blob !== null && entry.expiresAt <= now) {
      this.#forget(sid, entry)
      return undefined
    }
    return entry
  }

  #bury(sid: string, entry: Entry | undefined, counter: number, origin: string, keepUntil: number, now: number): Entry {
    if (entry) this.#forget(sid, entry)
    const tombstone = this.#newEntry(null, null, keepUntil, counter, origin, now)
    this.#insert(sid, tombstone)
    return tombstone
  }

  #newEntry(blob: Buffer | null, cookieExpires: number | null, expiresAt: number, counter: number, origin: string, now: number): Entry {
    return { blob, cookieExpires, expiresAt, counter, origin, expiryWrittenAt: now }
  }

  #moveExpiry(sid: string, entry: Entry, expiresAt: number): void {
    this.#wheel.move(sid, entry.expiresAt, expiresAt)
    entry.expiresAt = expiresAt
  }

  #insert(sid: string, entry: Entry): void {
    this.#entries.set(sid, entry)
    this.#wheel.add(sid, entry.expiresAt)
    if (entry.blob !== null) this.#liveCount += 1
  }

  #forget(sid: string, entry: Entry): void {
    this.#entries.delete(sid)
    this.#wheel.remove(sid, entry.expiresAt)
    if (entry.blob !== null) this.#liveCount -= 1
  }
}

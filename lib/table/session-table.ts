import { diffFields, fullDelta, type FieldDelta } from '../codec/field-delta.js'
import type { EncodedSession } from '../codec/session-codec.js'
import { ExpiryWheel } from './expiry-wheel.js'
import { compareVersions, NO_VERSION, sameVersion, versionOf, type Version } from './version.js'

/**
 * One stored session, or the tombstone of one that is gone (`blob === null`): destroyed, or moved to
 * another id by a rebind (`movedTo`). Plain mutable records of a single shape: the table may hold a
 * million of them.
 */
export interface Entry {
  /** msgpack map of the session's top-level fields; null for a tombstone. */
  blob: Buffer | null
  /** For the tombstone a rebind leaves: the id the session moved to. Null otherwise. */
  movedTo: string | null
  /** `cookie.expires` in ms since the epoch, or null. */
  cookieExpires: number | null
  /** When the session expires; for a tombstone, when it is forgotten. */
  expiresAt: number
  /** Version counter and the node that made this version (see `version.ts`). */
  counter: number
  origin: string
  /** When the expiry was last rewritten here, for `touchAfter`. */
  expiryWrittenAt: number
  /** How many times this session has been moved to a new id (see `maxRebinds`). */
  rebinds: number
}

/** A whole entry as peers exchange it: a session, a destroyed one, or one moved to another id. */
export interface EntryState {
  readonly version: Version
  /** The session's bytes; null for a tombstone. */
  readonly blob: Buffer | null
  /** For a tombstone left by a rebind, the id the session moved to. */
  readonly movedTo: string | null
  readonly expiresAt: number
  readonly cookieExpires: number | null
  readonly rebinds: number
}

/** What a local write changed, for the replicator to send to the peers. */
export type LocalChange =
  | {
      readonly kind: 'upsert'
      readonly sid: string
      readonly base: Version
      readonly entry: Readonly<Entry>
      /** The bytes before this change (null for a create). */
      readonly previous: Buffer | null
      /** The fields that changed from `previous` (values are views into the new bytes). */
      readonly delta: FieldDelta
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
      /** The tombstone left under `sid`, naming `to`. */
      readonly tombstone: Readonly<Entry>
    }

/** What `upsert` writes: the encoded session, with the delta `encodeSession` computed when it has one. */
export type SessionWrite = Pick<EncodedSession, 'blob' | 'cookieExpires'> & Partial<Pick<EncodedSession, 'delta' | 'base'>>

/** What applying a change from a peer did. */
export type RemoteResult =
  /** Applied. */
  | 'applied'
  /** Already here, or older than what is here: nothing to do. */
  | 'stale'
  /** Made on top of a version this node does not have: the whole entry must be fetched. */
  | 'needs-full'
  /** A move was applied, but the session's data under its new id is not here: fetch that id. */
  | 'needs-target'

export interface SessionTableOptions {
  readonly nodeId: string
  /** How long a tombstone outlives `now` at least, in ms. */
  readonly tombstoneTtlMs: number
  /** Width of an expiry bucket, in ms. */
  readonly expiryResolutionMs: number
  /** How many times one session may be moved to a new id; tombstones per session stay below this. */
  readonly maxRebinds: number
  /** An unchanged session's expiry is rewritten at most this often, in ms (see `touchAfter`). */
  readonly touchAfterMs: number
}

/** Why a live session left the table (see `TableWatcher.removed`). */
export type RemovalReason =
  /** Its expiry passed (found by a sweep, a read, or a write that came too late). */
  | 'expired'
  /** Destroyed, here or by a peer, or ended because the move that made it lost. */
  | 'destroyed'
  /** Moved to another id by a rebind: it lives on under that id. */
  | 'moved'
  /** Replaced whole by a newer copy from a peer: `stored` follows at once. */
  | 'replaced'
  /** Let go in backups mode: the holders keep it. */
  | 'released'
  /** Everything was cleared. */
  | 'cleared'

/**
 * Told of every change to the live sessions, whoever made it (a local write, a peer, a sweep): what
 * keeps the store's indexes and events true without the table knowing of them.
 */
export interface TableWatcher {
  /** A live session was stored, or its bytes or expiry changed. */
  stored(sid: string, entry: Readonly<Entry>, now: number): void
  /** A live session left the table; `entry` still holds its last bytes. */
  removed(sid: string, entry: Readonly<Entry>, reason: RemovalReason): void
}

const NO_WATCHER: TableWatcher = { stored: () => undefined, removed: () => undefined }

/** Where a session's expiry stands: when it expires, and its cookie's `expires`. */
export interface Expiry {
  readonly expiresAt: number
  /** `cookie.expires` in ms since the epoch, or null. */
  readonly cookieExpires: number | null
}

/** A delta from a peer: the fields it changes are applied by the caller's `apply`. */
export interface RemoteDelta extends Expiry {
  readonly sid: string
  /** The version the change was made on. */
  readonly base: Version
  readonly version: Version
}

/**
 * The sessions this node holds, with their versions and expiry. Knows nothing of sockets or of
 * express-session. Local writes return the change they made, for the replicator; changes from
 * peers are applied only on top of the version they were made from (see `version.ts`).
 *
 * Moves (rebinds) are ordered against writes and destroys on every node alike: a move of `a` to `b`
 * is a version of `a`. When something newer than the move reaches `a` (a concurrent write with a
 * higher version, a destroy, another move), or a node learns of a move older than what it has for
 * `a`, the move lost, and `b` is destroyed wherever that is known: a destroy of the old id always
 * ends the session under its new one, in either order of arrival, and two concurrent moves of one
 * session leave one live id.
 */
export class SessionTable {
  readonly #entries = new Map<string, Entry>()
  readonly #wheel: ExpiryWheel
  readonly #options: SessionTableOptions
  readonly #watcher: TableWatcher
  #liveCount = 0
  #epoch: Version = NO_VERSION
  #changes = 0

  constructor(options: SessionTableOptions, now: number, watcher: TableWatcher = NO_WATCHER) {
    this.#options = options
    this.#watcher = watcher
    this.#wheel = new ExpiryWheel(options.expiryResolutionMs, now)
  }

  /** Raised by every change to what the table holds: tells a snapshot writer whether there is anything new. */
  get changes(): number {
    return this.#changes
  }

  /** Live sessions, counting any that expired but were not yet reclaimed by a sweep. */
  get liveCount(): number {
    return this.#liveCount
  }

  /** Tombstones of destroyed and moved sessions not yet forgotten. */
  get tombstoneCount(): number {
    return this.#entries.size - this.#liveCount
  }

  /**
   * The clear this table's contents date from: every `clear()` in the cluster starts a newer epoch,
   * and anything from an older one is gone for good (see `clear`).
   */
  get epoch(): Version {
    return this.#epoch
  }

  /** The live, unexpired entry for `sid`; reclaims it on the spot if it has expired. */
  get(sid: string, now: number): Entry | undefined {
    const entry = this.#entries.get(sid)
    if (!entry || entry.blob === null) return undefined
    if (entry.expiresAt <= now) {
      this.#forget(sid, entry, 'expired')
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
   * Returns the change, or undefined when nothing changed or the id is a tombstone.
   */
  upsert(sid: string, session: SessionWrite, expiresAt: number, now: number): LocalChange | undefined {
    const entry = this.#entries.get(sid)
    if (entry?.blob === null) return undefined
    if (!entry || entry.expiresAt <= now) {
      if (entry) this.#forget(sid, entry, 'expired')
      const created = this.#newEntry(
        {
          ...LIVE,
          version: { counter: NO_VERSION.counter + 1, origin: this.#options.nodeId },
          blob: session.blob,
          expiresAt,
          cookieExpires: session.cookieExpires,
        },
        now,
      )
      this.#insert(sid, created, now)
      const delta = session.delta !== undefined && session.base === null ? session.delta : fullDelta(session.blob)
      return { kind: 'upsert', sid, base: NO_VERSION, entry: created, previous: null, delta }
    }
    const expiry = { expiresAt, cookieExpires: session.cookieExpires }
    if (entry.blob === session.blob || entry.blob.equals(session.blob)) return this.rewriteExpiry(sid, entry, expiry, now)
    // A delta computed against exactly these stored bytes is reused; any other is computed again.
    const delta = session.delta !== undefined && session.base === entry.blob ? session.delta : undefined
    return this.replaceBlob(sid, entry, session.blob, expiry, now, delta)
  }

  /**
   * Replaces the bytes of a live entry as a new local version. `delta` is what changed from the
   * current bytes, when the caller knows it; otherwise it is computed from the bytes.
   */
  replaceBlob(sid: string, entry: Entry, blob: Buffer, { expiresAt, cookieExpires }: Expiry, now: number, delta?: FieldDelta): LocalChange {
    const base = versionOf(entry)
    const previous = entry.blob
    const changed = delta ?? diffFields(previous, blob)
    this.#moveExpiry(sid, entry, expiresAt)
    entry.blob = blob
    entry.cookieExpires = cookieExpires
    entry.counter += 1
    entry.origin = this.#options.nodeId
    entry.expiryWrittenAt = now
    this.#watcher.stored(sid, entry, now)
    return { kind: 'upsert', sid, base, entry, previous, delta: changed }
  }

  /**
   * Moves a live entry's expiry unless it was rewritten less than `touchAfterMs` ago; but never lets
   * a session lapse because of that limit: an expiry closer than `touchAfterMs` is always rewritten.
   */
  rewriteExpiry(sid: string, entry: Entry, { expiresAt, cookieExpires }: Expiry, now: number): LocalChange | undefined {
    if (entry.expiresAt === expiresAt && entry.cookieExpires === cookieExpires) return undefined
    const { touchAfterMs } = this.#options
    const recentlyWritten = now - entry.expiryWrittenAt < touchAfterMs
    const lapsesSoon = entry.expiresAt - now < touchAfterMs
    if (recentlyWritten && !lapsesSoon) return undefined
    this.#moveExpiry(sid, entry, expiresAt)
    entry.cookieExpires = cookieExpires
    entry.expiryWrittenAt = now
    this.#watcher.stored(sid, entry, now)
    return { kind: 'expiry', sid, entry }
  }

  /**
   * Turns a session into a tombstone, so that no late write or stale copy brings it back. A tombstone
   * is kept until the session would have expired, and at least `tombstoneTtlMs`; `keepUntil` sets
   * another time (an evicted session's tombstone need not outlive its replication). A tombstone
   * already there (destroyed, or moved: the session lives on under its new id) is left as it is.
   */
  destroy(sid: string, now: number, keepUntil?: number): LocalChange | undefined {
    const entry = this.#entries.get(sid)
    if (entry?.blob === null) return undefined
    const version = { counter: (entry?.counter ?? 0) + 1, origin: this.#options.nodeId }
    const expiresAt = keepUntil ?? this.#keepUntil(entry, now)
    const tombstone = this.#put(sid, entry, { ...DESTROYED, version, expiresAt }, now)
    return { kind: 'destroy', sid, entry: tombstone }
  }

  /**
   * Moves a live session to a new id, as a new local version; the old id becomes a tombstone naming
   * the new one. Returns undefined when there is no live session under `sid`, `to` is taken, or the
   * session was already moved `maxRebinds` times.
   */
  rename(sid: string, to: string, now: number): LocalChange | undefined {
    const entry = this.get(sid, now)
    if (!entry || this.#entries.has(to) || entry.rebinds >= this.#options.maxRebinds) return undefined
    const base = versionOf(entry)
    const version = { counter: entry.counter + 1, origin: this.#options.nodeId }
    const moved = this.#newEntry(
      {
        version,
        blob: entry.blob,
        movedTo: null,
        expiresAt: entry.expiresAt,
        cookieExpires: entry.cookieExpires,
        rebinds: entry.rebinds + 1,
      },
      now,
    )
    const tombstone = this.#put(sid, entry, { ...MOVED, version, movedTo: to, expiresAt: this.#keepUntil(entry, now) }, now)
    this.#insert(to, moved, now)
    return { kind: 'rename', sid, to, base, entry: moved, tombstone }
  }

  /**
   * Lets go of a live session this node no longer has to hold (backups mode, after a membership
   * change): no tombstone, nothing to replicate; the holders keep it.
   */
  release(sid: string): void {
    const entry = this.#entries.get(sid)
    if (entry && entry.blob !== null) this.#forget(sid, entry, 'released')
  }

  /**
   * Forgets every session and tombstone and starts `epoch`: from now on, nothing from an older epoch
   * is accepted from a peer (the replicator checks), so a node that missed the clear cannot bring
   * the cleared sessions back.
   */
  clear(epoch: Version = this.#epoch): void {
    for (const [sid, entry] of this.#entries) if (entry.blob !== null) this.#watcher.removed(sid, entry, 'cleared')
    this.#entries.clear()
    this.#wheel.clear()
    this.#liveCount = 0
    this.#changes += 1
    this.#epoch = versionOf(epoch)
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
      if (entry.expiresAt <= now) this.#forget(sid, entry, 'expired')
      else this.#wheel.add(sid, entry.expiresAt) // rewritten after it was bucketed: keep watching
    })
  }

  // ---- changes from peers -----------------------------------------------------------------------
  // `killed`, when given, collects the ids of sessions destroyed because a move lost (see the class).

  /**
   * Applies a delta made on top of `base`. `apply` turns the current bytes (null for a create) into
   * the new ones; it runs only when the delta fits.
   */
  applyDelta(delta: RemoteDelta, now: number, apply: (current: Buffer | null) => Buffer): RemoteResult {
    const { sid, base, version, expiresAt, cookieExpires } = delta
    const entry = this.#liveOrTombstone(sid, now)
    if (entry?.blob === null) {
      // Destroyed: final. Moved: a concurrent write newer than the move undoes it, but the data left
      // with the move, so the write must be fetched whole.
      if (entry.movedTo === null) return 'stale'
      return compareVersions(version, false, entry, false) > 0 ? 'needs-full' : 'stale'
    }
    const current: Version = entry ?? NO_VERSION
    if (!sameVersion(current, base)) return compareVersions(version, false, current, false) <= 0 ? 'stale' : 'needs-full'
    if (expiresAt <= now) {
      if (entry) this.#forget(sid, entry, 'expired')
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
      this.#watcher.stored(sid, entry, now)
    } else {
      this.#insert(sid, this.#newEntry({ ...LIVE, version, blob, expiresAt, cookieExpires }, now), now)
    }
    return 'applied'
  }

  /**
   * Applies a whole entry (a session or a tombstone) if it is newer than ours. For a move that was
   * applied, 'needs-target' says the session's data under its new id must still be fetched.
   */
  applySnapshot(sid: string, state: EntryState, now: number, killed?: string[]): RemoteResult {
    const entry = this.#liveOrTombstone(sid, now)
    if (state.expiresAt <= now) return 'stale'
    if (entry && compareVersions(state.version, isDestroyed(state), entry, isDestroyed(entry)) <= 0) {
      const sameState = sameVersion(entry, state.version) && entry.movedTo === state.movedTo
      if (sameState && entry.blob === null && state.expiresAt > entry.expiresAt) this.#moveExpiry(sid, entry, state.expiresAt)
      // Learning of a move that lost to what is here ends the session under its new id.
      if (!sameState && state.movedTo !== null) this.#kill(state.movedTo, state.expiresAt, now, killed)
      return 'stale'
    }
    const lostMove = entry?.movedTo ?? null
    this.#put(sid, entry, state, now)
    if (lostMove !== null && lostMove !== state.movedTo) this.#kill(lostMove, state.expiresAt, now, killed)
    if (state.movedTo === null) return 'applied'
    const target = this.#liveOrTombstone(state.movedTo, now)
    return target && compareVersions(target, isDestroyed(target), state.version, false) >= 0 ? 'applied' : 'needs-target'
  }

  /**
   * Applies a peer's move of `from` to `to`. If this node has the exact version that moved, the data
   * moves here too; otherwise 'needs-target' asks for it. A move older than what this node has for
   * `from` lost, and `to` is destroyed.
   */
  applyRename(
    move: { from: string; to: string; base: Version; version: Version; keepUntil: number; rebinds: number },
    now: number,
    killed?: string[],
  ): RemoteResult {
    const entry = this.#liveOrTombstone(move.from, now)
    const tombstone: EntryState = { ...MOVED, version: move.version, movedTo: move.to, expiresAt: move.keepUntil }
    if (!entry?.blob || !sameVersion(entry, move.base)) return this.applySnapshot(move.from, tombstone, now, killed)
    const data: EntryState = {
      ...LIVE,
      version: move.version,
      blob: entry.blob,
      expiresAt: entry.expiresAt,
      cookieExpires: entry.cookieExpires,
      rebinds: move.rebinds,
    }
    this.#put(move.from, entry, tombstone, now)
    return this.applySnapshot(move.to, data, now, killed) === 'stale' ? 'stale' : 'applied'
  }

  /** Applies a destroy: it wins over any live version, and ends a move of the session too. */
  applyDestroy(
    { sid, version, keepUntil }: { sid: string; version: Version; keepUntil: number },
    now: number,
    killed?: string[],
  ): RemoteResult {
    return this.applySnapshot(sid, { ...DESTROYED, version, expiresAt: keepUntil }, now, killed)
  }

  /**
   * Applies a peer's expiry change for `version`. A later version carries its own expiry, so a
   * change for another version is stale; between two changes for the same version the later expiry wins.
   */
  applyExpiry({ sid, version, expiresAt, cookieExpires }: Expiry & { sid: string; version: Version }, now: number): RemoteResult {
    const entry = this.get(sid, now)
    if (!entry || !sameVersion(entry, version) || expiresAt <= entry.expiresAt) return 'stale'
    this.#moveExpiry(sid, entry, expiresAt)
    entry.cookieExpires = cookieExpires
    this.#watcher.stored(sid, entry, now)
    return 'applied'
  }

  // ---- internals --------------------------------------------------------------------------------

  /**
   * Destroys `sid` because the move that created it lost, and whatever it moved on to in turn. A
   * tombstone is left even where nothing was, so a copy fetched later cannot bring it back.
   */
  #kill(sid: string, keepUntil: number, now: number, killed: string[] | undefined): void {
    let next: string | null = sid
    // Each session moves at most `maxRebinds` times, so a chain is never longer; the bound also
    // stops a cycle a faulty peer could make.
    for (let hops = 0; next !== null && hops <= this.#options.maxRebinds; hops++) {
      const entry = this.#liveOrTombstone(next, now)
      if (entry && isDestroyed(entry)) return
      const version = { counter: (entry?.counter ?? 0) + 1, origin: this.#options.nodeId }
      const movedOn: string | null = entry?.movedTo ?? null
      this.#put(next, entry, { ...DESTROYED, version, expiresAt: Math.max(keepUntil, this.#keepUntil(entry, now)) }, now)
      if (entry?.blob) killed?.push(next)
      next = movedOn
    }
  }

  /** How long the tombstone of `entry` is kept: until the session would have expired, and at least `tombstoneTtlMs`. */
  #keepUntil(entry: Entry | undefined, now: number): number {
    return Math.max(entry && entry.expiresAt > now ? entry.expiresAt : 0, now + this.#options.tombstoneTtlMs)
  }

  /** The entry for `sid`, forgetting it first if it is a session that has expired. */
  #liveOrTombstone(sid: string, now: number): Entry | undefined {
    const entry = this.#entries.get(sid)
    if (entry && entry.blob !== null && entry.expiresAt <= now) {
      this.#forget(sid, entry, 'expired')
      return undefined
    }
    return entry
  }

  /** Replaces whatever is under `sid` with `state`. */
  #put(sid: string, entry: Entry | undefined, state: EntryState, now: number): Entry {
    if (entry) this.#forget(sid, entry, state.blob !== null ? 'replaced' : state.movedTo !== null ? 'moved' : 'destroyed')
    const replacement = this.#newEntry(state, now)
    this.#insert(sid, replacement, now)
    return replacement
  }

  #newEntry(state: EntryState, now: number): Entry {
    return {
      blob: state.blob,
      movedTo: state.movedTo,
      cookieExpires: state.cookieExpires,
      expiresAt: state.expiresAt,
      counter: state.version.counter,
      origin: state.version.origin,
      expiryWrittenAt: now,
      rebinds: state.rebinds,
    }
  }

  #moveExpiry(sid: string, entry: Entry, expiresAt: number): void {
    this.#changes += 1
    this.#wheel.move(sid, entry.expiresAt, expiresAt)
    entry.expiresAt = expiresAt
  }

  #insert(sid: string, entry: Entry, now: number): void {
    this.#changes += 1
    this.#entries.set(sid, entry)
    this.#wheel.add(sid, entry.expiresAt)
    if (entry.blob === null) return
    this.#liveCount += 1
    this.#watcher.stored(sid, entry, now)
  }

  #forget(sid: string, entry: Entry, reason: RemovalReason): void {
    this.#changes += 1
    this.#entries.delete(sid)
    this.#wheel.remove(sid, entry.expiresAt)
    if (entry.blob === null) return
    this.#liveCount -= 1
    this.#watcher.removed(sid, entry, reason)
  }
}

/** A destroyed session's tombstone (not a moved one): final, it beats every other version. */
export function isDestroyed(entry: { readonly blob: Buffer | null; readonly movedTo: string | null }): boolean {
  return entry.blob === null && entry.movedTo === null
}

/** Defaults of each kind of `EntryState`, to spread before the fields that differ. */
const LIVE = { movedTo: null, cookieExpires: null, rebinds: 0 } as const
const DESTROYED = { blob: null, movedTo: null, cookieExpires: null, rebinds: 0 } as const
const MOVED = { blob: null, cookieExpires: null, rebinds: 0 } as const

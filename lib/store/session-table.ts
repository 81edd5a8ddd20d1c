import type { EncodedSession } from '../codec/session-codec.js'
import { ExpiryWheel } from './expiry-wheel.js'
import { NO_VERSION, type Version } from './version.js'

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
  /** When the expiry was last rewritten, for `touchAfter`. */
  expiryWrittenAt: number
}

/** What a local write changed, for the replicator to turn into a delta. */
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

export type UpsertResult = 'created' | 'updated' | 'expiry-rewritten' | 'unchanged' | 'destroyed'

export interface SessionTableOptions {
  readonly nodeId: string
  /** How long a tombstone outlives `now` at least, in ms. */
  readonly tombstoneTtlMs: number
  /** Width of an expiry bucket, in ms. */
  readonly expiryResolutionMs: number
}

/**
 * The sessions this node holds, with their versions and expiry. Knows nothing of sockets or
 * express-session; every local change is reported through `onChange`.
 */
export class SessionTable {
  readonly #entries = new Map<string, Entry>()
  readonly #wheel: ExpiryWheel
  readonly #options: SessionTableOptions
  #liveCount = 0
  /** Set by the replicator; a table without one is a plain local store. */
  onChange: ((change: LocalChange) => void) | undefined

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

  /** Writes a session. Unchanged bytes only move the expiry, at most once per `touchAfterMs`. */
  upsert(sid: string, session: EncodedSession, expiresAt: number, now: number, touchAfterMs: number): UpsertResult {
    const entry = this.#entries.get(sid)
    if (entry?.blob === null) return 'destroyed'
    if (!entry || entry.expiresAt <= now) {
      if (entry) this.#forget(sid, entry)
      const created: Entry = {
        blob: session.blob,
        cookieExpires: session.cookieExpires,
        expiresAt,
        counter: NO_VERSION.counter + 1,
        origin: this.#options.nodeId,
        expiryWrittenAt: now,
      }
      this.#insert(sid, created)
      this.onChange?.({ kind: 'upsert', sid, base: NO_VERSION, entry: created, previous: null })
      return 'created'
    }
    if (entry.blob.equals(session.blob)) {
      return this.rewriteExpiry(sid, entry, expiresAt, session.cookieExpires, now, touchAfterMs) ? 'expiry-rewritten' : 'unchanged'
    }
    this.replaceBlob(sid, entry, session.blob, session.cookieExpires, expiresAt, now)
    return 'updated'
  }

  /** Replaces the bytes of a live entry as a new local version and reports the change. */
  replaceBlob(sid: string, entry: Entry, blob: Buffer, cookieExpires: number | null, expiresAt: number, now: number): void {
    const base: Version = { counter: entry.counter, origin: entry.origin }
    const previous = entry.blob
    this.#wheel.move(sid, entry.expiresAt, expiresAt)
    entry.blob = blob
    entry.cookieExpires = cookieExpires
    entry.expiresAt = expiresAt
    entry.counter += 1
    entry.origin = this.#options.nodeId
    entry.expiryWrittenAt = now
    this.onChange?.({ kind: 'upsert', sid, base, entry, previous })
  }

  /**
   * Moves a live entry's expiry unless it was rewritten less than `touchAfterMs` ago; but never lets
   * a session lapse because of that limit: an expiry closer than `touchAfterMs` is always rewritten.
   */
  rewriteExpiry(sid: string, entry: Entry, expiresAt: number, cookieExpires: number | null, now: number, touchAfterMs: number): boolean {
    if (entry.expiresAt === expiresAt && entry.cookieExpires === cookieExpires) return false
    const recentlyWritten = now - entry.expiryWrittenAt < touchAfterMs
    const lapsesSoon = entry.expiresAt - now < touchAfterMs
    if (recentlyWritten && !lapsesSoon) return false
    this.#wheel.move(sid, entry.expiresAt, expiresAt)
    entry.expiresAt = expiresAt
    entry.cookieExpires = cookieExpires
    entry.expiryWrittenAt = now
    this.onChange?.({ kind: 'expiry', sid, entry })
    return true
  }

  /**
   * Turns a session into a tombstone, so that no late write or stale copy brings it back. A tombstone
   * is kept until the session would have expired, and at least `tombstoneTtlMs`.
   */
  destroy(sid: string, now: number): void {
    const entry = this.#entries.get(sid)
    if (entry?.blob === null) return
    const keepUntil = Math.max(entry && entry.expiresAt > now ? entry.expiresAt : 0, now + this.#options.tombstoneTtlMs)
    if (entry) this.#forget(sid, entry)
    const tombstone: Entry = {
      blob: null,
      cookieExpires: null,
      expiresAt: keepUntil,
      counter: (entry?.counter ?? 0) + 1,
      origin: this.#options.nodeId,
      expiryWrittenAt: now,
    }
    this.#insert(sid, tombstone)
    this.onChange?.({ kind: 'destroy', sid, entry: tombstone })
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

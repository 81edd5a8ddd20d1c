import { Store, type SessionData } from 'express-session'
import { decodeSession, encodeCookie, encodeSession, joinFields, splitFields, type SessionLimits } from '../codec/session-codec.js'
import { debugFor } from '../debug.js'
import { InvalidArgumentError, InvalidOptionError, StoreClosedError } from '../errors.js'
import { resolveOptions, type PeerStoreOptions, type ResolvedOptions } from '../options.js'
import { settle, type Callback } from './callback.js'
import { SessionTable } from './session-table.js'

const debug = debugFor('store')

/** What `PeerStore.stats()` reports. */
export interface PeerStoreStats {
  /** Sessions held, including expired ones not yet reclaimed (at most one `reapInterval` old). */
  readonly sessions: number
  /** Tombstones of destroyed sessions still remembered (see `tombstoneTtl`). */
  readonly tombstones: number
}

/** Longest accepted session id, in UTF-16 code units. */
export const MAX_SESSION_ID_LENGTH = 256

/** Without a node id the table still needs an origin for its versions. */
const LOCAL_NODE_ID = 'local'

/**
 * An express-session store that keeps sessions in this process's memory.
 *
 * Every method takes an optional express-session style callback; without one it returns a promise.
 * Callbacks are called exactly once and always asynchronously. Sessions are copied on the way in and
 * on the way out: nothing a request does to its session object changes what is stored until `set`.
 *
 * @example
 * ```ts
 * import session from 'express-session'
 * import { PeerStore } from 'connect-peer'
 *
 * const store = new PeerStore({ ttl: 3600 })
 * app.use(session({ store, secret: process.env.SESSION_SECRET!, resave: false, saveUninitialized: false }))
 * ```
 */
export class PeerStore extends Store {
  readonly #options: ResolvedOptions
  readonly #limits: SessionLimits
  readonly #table: SessionTable
  readonly #reaper: NodeJS.Timeout
  #closing: Promise<void> | undefined

  constructor()
  constructor(options: PeerStoreOptions)
  constructor(peers: readonly string[], options?: PeerStoreOptions)
  constructor(peersOrOptions?: readonly string[] | PeerStoreOptions, maybeOptions?: PeerStoreOptions) {
    super()
    const peers = isPeerList(peersOrOptions) ? peersOrOptions : []
    const options = (isPeerList(peersOrOptions) ? maybeOptions : peersOrOptions) ?? {}
    this.#options = resolveOptions(options)
    if (peers.length > 0) throw new InvalidOptionError('peers', 'an empty list (replication is not available yet)', peers)
    this.#limits = {
      maxSessionBytes: this.#options.maxSessionBytes,
      maxDepth: this.#options.maxDepth,
      maxContainerLength: this.#options.maxContainerLength,
    }
    const now = Date.now()
    this.#table = new SessionTable(
      { nodeId: LOCAL_NODE_ID, tombstoneTtlMs: this.#options.tombstoneTtlMs, expiryResolutionMs: this.#options.reapIntervalMs },
      now,
    )
    this.#reaper = setInterval(() => this.#table.sweep(Date.now()), this.#options.reapIntervalMs)
    this.#reaper.unref()
  }

  /** Resolves when the store can serve requests. A store without peers is ready at once. */
  ready(): Promise<void> {
    return this.#closing ? Promise.reject(new StoreClosedError('ready')) : Promise.resolve()
  }

  /** Fetches a session; `null` when there is none or it has expired. */
  get(sid: string): Promise<SessionData | null>
  get(sid: string, callback: (error: unknown, session?: SessionData | null) => void): void
  get(sid: string, callback?: Callback<SessionData | null>): Promise<SessionData | null> | undefined {
    return settle(() => {
      this.#assertUsable('get', sid)
      const entry = this.#table.get(sid, Date.now())
      return entry?.blob ? decodeSession(entry.blob, entry.cookieExpires) : null
    }, callback)
  }

  /**
   * Stores a session. Throws `NotReplicableError` or `SessionTooLargeError` (and keeps the previous
   * version) when the session cannot be stored. A session whose expiry has passed is destroyed.
   * Writes to a destroyed id are ignored while its tombstone lasts (see `tombstoneTtl`).
   */
  set(sid: string, session: SessionData): Promise<void>
  set(sid: string, session: SessionData, callback: (error?: unknown) => void): void
  set(sid: string, session: SessionData, callback?: Callback<void>): Promise<void> | undefined {
    return settle(() => {
      this.#assertUsable('set', sid)
      const encoded = encodeSession(session, this.#limits)
      const now = Date.now()
      const expiresAt = this.#expiryOf(session, encoded.cookieExpires, now)
      if (expiresAt <= now) {
        this.#table.destroy(sid, now)
        return
      }
      const result = this.#table.upsert(sid, encoded, expiresAt, now, this.#options.touchAfterMs)
      if (result === 'destroyed') debug('set of destroyed session %s ignored', sid)
    }, callback)
  }

  /**
   * Moves an existing session's expiry (see `touchAfter`) and stores a changed cookie. Touching an
   * unknown, expired or destroyed session does nothing. With `disableTouch` it never does anything.
   */
  override touch(sid: string, session: SessionData): Promise<void>
  override touch(sid: string, session: SessionData, callback: (error?: unknown) => void): void
  override touch(sid: string, session: SessionData, callback?: Callback<void>): Promise<void> | undefined {
    return settle(() => {
      this.#assertUsable('touch', sid)
      if (this.#options.disableTouch) return
      const now = Date.now()
      const entry = this.#table.get(sid, now)
      if (!entry?.blob) return
      if (typeof session !== 'object' || session === null) throw new InvalidArgumentError('session', 'an object', session)
      const cookie = session.cookie === undefined || session.cookie === null ? undefined : encodeCookie(session.cookie, this.#options.maxDepth)
      const cookieExpires = cookie ? cookie.expires : null
      const expiresAt = this.#expiryOf(session, cookieExpires, now)
      if (expiresAt <= now) {
        this.#table.destroy(sid, now)
        return
      }
      const fields = splitFields(entry.blob, this.#limits)
      const stored = fields.get('cookie')
      if (cookie && !(stored && cookie.bytes.equals(stored))) {
        // The cookie itself changed (say, a new maxAge for "remember me"): that is a data change.
        fields.set('cookie', cookie.bytes)
        this.#table.replaceBlob(sid, entry, joinFields(fields), cookieExpires, expiresAt, now)
        return
      }
      this.#table.rewriteExpiry(sid, entry, expiresAt, cookieExpires, now, this.#options.touchAfterMs)
    }, callback)
  }

  /** Destroys a session everywhere; destroying an unknown session is not an error. */
  destroy(sid: string): Promise<void>
  destroy(sid: string, callback: (error?: unknown) => void): void
  destroy(sid: string, callback?: Callback<void>): Promise<void> | undefined {
    return settle(() => {
      this.#assertUsable('destroy', sid)
      this.#table.destroy(sid, Date.now())
    }, callback)
  }

  /** Every live session, as an object keyed by session id (the shape MemoryStore returns). */
  override all(): Promise<Record<string, SessionData>>
  override all(callback: (error: unknown, sessions?: Record<string, SessionData>) => void): void
  override all(callback?: Callback<Record<string, SessionData>>): Promise<Record<string, SessionData>> | undefined {
    return settle(() => {
      this.#assertOpen('all')
      const now = Date.now()
      const sessions: Record<string, SessionData> = Object.create(null)
      for (const sid of this.#table.liveIds(now)) {
        const entry = this.#table.get(sid, now)!
        sessions[sid] = decodeSession(entry.blob!, entry.cookieExpires)
      }
      return sessions
    }, callback)
  }

  /** Ids of every live session. */
  ids(): Promise<string[]>
  ids(callback: (error: unknown, ids?: string[]) => void): void
  ids(callback?: Callback<string[]>): Promise<string[]> | undefined {
    return settle(() => {
      this.#assertOpen('ids')
      return [...this.#table.liveIds(Date.now())]
    }, callback)
  }

  /** Number of live sessions. */
  override length(): Promise<number>
  override length(callback: (error: unknown, length?: number) => void): void
  override length(callback?: Callback<number>): Promise<number> | undefined {
    return settle(() => {
      this.#assertOpen('length')
      this.#table.sweep(Date.now())
      let count = 0
      for (const _ of this.#table.liveIds(Date.now())) count += 1
      return count
    }, callback)
  }

  /** Removes every session and tombstone. */
  override clear(): Promise<void>
  override clear(callback: (error?: unknown) => void): void
  override clear(callback?: Callback<void>): Promise<void> | undefined {
    return settle(() => {
      this.#assertOpen('clear')
      this.#table.clear()
    }, callback)
  }

  /** Counts for monitoring; cheap enough to call on every scrape. */
  stats(): PeerStoreStats {
    return { sessions: this.#table.liveCount, tombstones: this.#table.tombstoneCount }
  }

  /** Stops the store: no timer, socket or listener is left. Idempotent; later calls return the same promise. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown()
    return this.#closing
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }

  async #shutdown(): Promise<void> {
    clearInterval(this.#reaper)
    this.#table.clear()
    debug('closed')
  }

  #expiryOf(session: SessionData, cookieExpires: number | null, now: number): number {
    const ttlFunction = this.#options.ttlFunction
    if (ttlFunction) {
      const seconds = ttlFunction(session)
      if (typeof seconds !== 'number' || Number.isNaN(seconds)) {
        throw new InvalidOptionError('ttl', 'a function that returns a number of seconds', seconds)
      }
      return now + seconds * 1000
    }
    return cookieExpires ?? now + this.#options.ttlMs
  }

  #assertOpen(method: string): void {
    if (this.#closing) throw new StoreClosedError(method)
  }

  #assertUsable(method: string, sid: unknown): void {
    this.#assertOpen(method)
    if (typeof sid !== 'string' || sid.length === 0 || sid.length > MAX_SESSION_ID_LENGTH) {
      throw new InvalidArgumentError('session id', `a string of 1 to ${MAX_SESSION_ID_LENGTH} characters`, sid)
    }
  }
}

function isPeerList(value: unknown): value is readonly string[] {
  return Array.isArray(value)
}

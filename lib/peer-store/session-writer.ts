import type { SessionData } from 'express-session'
import { debugFor } from '../base/debug.js'
import { InvalidOptionError } from '../base/errors.js'
import { decodeSession, encodeSession, mergeSession, type EncodedSession, type SessionLimits } from '../codec/session-codec.js'
import { MAX_PRINCIPAL_LENGTH, readMeta, withMeta, type SessionMeta } from '../codec/session-meta.js'
import type { SessionIndex } from '../table/session-index.js'
import type { Entry, LocalChange, SessionTable } from '../table/session-table.js'
import type { Admission } from './admission.js'
import type { ResolvedOptions } from './options.js'
import type { DestroyReason, SessionEvents } from './session-events.js'

const debug = debugFor('store')

/** How long the tombstone of an anonymous session evicted for `maxSessions` lasts: long enough to replicate. */
export const EVICTED_TOMBSTONE_MS = 30_000

const DONE: Promise<void> = Promise.resolve()
const NO_EVICTIONS: ReadonlyArray<Promise<void>> = []

/**
 * What one request read of a session: its bytes as the request saw them. A request may read more
 * than one session (a Koa context or a Fastify request scope), hence the chain.
 */
interface Loaded {
  readonly sid: string
  blob: Buffer
  readonly next: Loaded | undefined
}

/**
 * The same, on a session object handed out by `get` (and the one express-session builds from it):
 * two symbol-keyed properties, which JSON, msgpack, `Object.keys` and `for...in` never see. Cheaper
 * than a WeakMap entry per read, which the garbage collector would have to trace.
 */
const READ_SID = Symbol('connect-peer: read as')
const READ_BLOB = Symbol('connect-peer: read from')

interface Marked {
  [READ_SID]?: string
  [READ_BLOB]?: Buffer
}

function mark(session: object, sid: string, blob: Buffer): void {
  ;(session as Marked)[READ_SID] = sid
  ;(session as Marked)[READ_BLOB] = blob
}

export interface SessionWriterContext {
  readonly options: Pick<ResolvedOptions, 'nodeId' | 'principal' | 'absoluteTimeout' | 'maxSessions' | 'maxRebinds' | 'ttl'>
  readonly limits: SessionLimits
  readonly table: SessionTable
  readonly index: SessionIndex | undefined
  readonly admission: Admission | undefined
  readonly events: SessionEvents
  /** Replicates a local change; resolves as `sendMode` says. */
  publish(change: LocalChange | undefined): Promise<void> | undefined
  /** When a session saved through express-session expires: its cookie's `expires`, or `ttl`. */
  expiryOf(session: SessionData, cookieExpires: number | null, now: number): number
}

/** A save whose expiry the adapter decides (Koa: its `maxAge`, possibly 'session', and `_expire`). */
export interface ExternalExpiry {
  /** Replaces the cookie's own `expires` (Koa keeps it outside the data). */
  readonly cookieExpires: number | null
  /** The session's lifetime from now; undefined: the store's `ttl`. */
  readonly maxAgeMs: number | undefined
}

/**
 * Every local write and destroy of a session, with what issue 17 added around them: merge on save
 * against what the request read, the store's facts kept in the session (creation, principal), the
 * absolute timeout, the session limits, and the `session:created`/`destroyed`/`expired` events of
 * the node that acts. The PeerStore hands requests in; this decides what the table stores.
 */
export class SessionWriter {
  readonly #context: SessionWriterContext
  /** What each request read, under its Koa context or its Fastify scope (session objects are marked). */
  readonly #loaded = new WeakMap<object, Loaded>()
  #mergedSaves = 0
  #evicted = 0

  constructor(context: SessionWriterContext) {
    this.#context = context
  }

  /** Saves merged with a newer version another request stored since. */
  get merged(): number {
    return this.#mergedSaves
  }

  /** Sessions evicted for a session limit. */
  get evicted(): number {
    return this.#evicted
  }

  /**
   * Notes that a request read `blob` for `sid`: under the session object it got (`session`, new
   * from `get`), and under its context (`request`: a Koa context, a Fastify request scope).
   */
  noteRead(sid: string, blob: Buffer, session: object | undefined, request: object | undefined): void {
    if (session) mark(session, sid, blob)
    if (request) this.#note(request, sid, blob)
  }

  /** Marks `to` as read like the first of `from` that was (express-session's `createSession`). */
  carryLoaded(to: object, ...from: Array<object | undefined>): void {
    for (const session of from as Array<Marked | undefined>) {
      const sid = session?.[READ_SID]
      if (sid !== undefined) return void mark(to, sid, session![READ_BLOB]!)
    }
  }

  /**
   * Stores `session` under `sid` for a request known by its session object and its context,
   * synchronously; the promise is the replication's (see `sendMode`). Merge on save: when the request
   * read the session and another request stored different bytes since, only what this request
   * changed is applied over them. A session another node took over since the request read it is
   * saved under its new id. Throws `SessionLimitError`, `NotReplicableError`, `SessionTooLargeError`.
   */
  save(sid: string, session: object, request: object | undefined, external?: ExternalExpiry): Promise<void> {
    const { table, limits } = this.#context
    // The bytes this request read the session from, if it did.
    const base = this.#readOf(sid, session) ?? (request && this.#loadedFor(sid, request)?.blob)
    const target = base ? this.#movedTo(sid, true) : sid
    const now = Date.now()
    const live = table.get(target, now)
    if (table.peek(target)?.blob === null) {
      debug('set of destroyed session %s ignored', target)
      return DONE
    }
    const meta = this.#metaOf(session as SessionData, live?.blob ?? base, now)
    // What this request's session is now, as it sees it: its base at its next save.
    let view: Buffer
    let encoded: EncodedSession
    const merging = base !== undefined && live !== undefined && !sameBytes(live.blob!, base)
    if (merging) {
      const mine = encodeSession(session, limits, base, meta)
      encoded = this.#merge(live.blob!, mine)
      view = mine.blob
    } else {
      // Encoded once, against what is stored: unchanged sessions come back as the stored bytes.
      encoded = encodeSession(session, limits, live?.blob ?? null, meta)
      view = encoded.blob
    }
    if (external) encoded = { ...encoded, cookieExpires: external.cookieExpires }
    const expiresAt = this.#capped(
      external
        ? now + (external.maxAgeMs ?? this.#context.options.ttl)
        : this.#context.expiryOf(session as SessionData, encoded.cookieExpires, now),
      meta,
      now,
    )
    if (expiresAt <= now) return live ? this.expireNow(target, live, now) : (this.#context.publish(table.destroy(target, now)) ?? DONE)
    const evictions = this.#admit(target, meta, !live, now)
    const change = table.upsert(target, encoded, expiresAt, now)
    if (merging) this.#mergedSaves += 1
    if (change?.kind === 'upsert' && change.previous === null) this.#context.events.created(target, change.entry)
    mark(session, target, view)
    if (request) this.#note(request, target, view)
    const sent = this.#context.publish(change)
    return evictions.length === 0 ? (sent ?? DONE) : Promise.all([...evictions, sent]).then(() => undefined)
  }

  /**
   * Destroys a live session here and everywhere, reporting it once (`session:destroyed`). A logout
   * by an id another node has since moved the session from (a takeover the request did not see)
   * ends the session under its new id; a move made here (the Fastify adapter's own takeover, which
   * then destroys the old id) is not followed.
   */
  destroy(sid: string, now: number, reason: DestroyReason, keepUntil?: number): Promise<void> {
    const { table, events } = this.#context
    const target = reason === 'destroyed' ? this.#movedTo(sid, false) : sid
    const entry = table.get(target, now)
    if (entry) {
      events.destroyed(target, entry, reason)
      if (reason === 'evicted') this.#evicted += 1
    }
    return this.#context.publish(table.destroy(target, now, keepUntil)) ?? DONE
  }

  /** A write or touch found the session's end already passed: it expires now, reported here. */
  expireNow(sid: string, entry: Readonly<Entry>, now: number): Promise<void> {
    this.#context.events.expiredHere(sid, entry)
    return this.#context.publish(this.#context.table.destroy(sid, now)) ?? DONE
  }

  /** A touch's new expiry, no later than the session's absolute end. */
  touchExpiry(expiresAt: number, entry: Readonly<Entry>, now: number): number {
    return this.#context.options.absoluteTimeout === undefined ? expiresAt : this.#capped(expiresAt, readMeta(entry.blob!), now)
  }

  /** Notes under `key` that its request's view of `sid` is `blob` now. */
  #note(key: object, sid: string, blob: Buffer): void {
    const first = this.#loaded.get(key)
    let loaded = first
    while (loaded && loaded.sid !== sid) loaded = loaded.next
    if (loaded) loaded.blob = blob
    else this.#loaded.set(key, { sid, blob, next: first })
  }

  /** What the request known by `key` read of `sid`, under its id or the id a takeover moved it to. */
  #loadedFor(sid: string, key: object): Loaded | undefined {
    for (let loaded = this.#loaded.get(key); loaded; loaded = loaded.next) if (this.#same(loaded.sid, sid)) return loaded
    return undefined
  }

  /** What the session object was read from, if it was read as `sid` (or as the id it moved from). */
  #readOf(sid: string, session: object): Buffer | undefined {
    // Not an object at all: `encodeSession` refuses it, with the error the caller expects.
    if (typeof session !== 'object' || session === null) return undefined
    const { [READ_SID]: readAs, [READ_BLOB]: blob } = session as Marked
    return readAs !== undefined && this.#same(readAs, sid) ? blob : undefined
  }

  /** Whether two ids name one session: the same, or one moved to the other by a takeover. */
  #same(readAs: string, sid: string): boolean {
    // A session object may be saved under another id (copied by the app): only a read of this one counts.
    return readAs === sid || this.#movedTo(readAs, true) === this.#movedTo(sid, true)
  }

  /**
   * Where the session under `sid` lives now, following its moves (at most `maxRebinds`); with
   * `anyNode` false, only the moves other nodes made.
   */
  #movedTo(sid: string, anyNode: boolean): string {
    const { table, options } = this.#context
    for (let hops = 0; hops < options.maxRebinds; hops++) {
      const entry = table.peek(sid)
      if (!entry || entry.movedTo === null || (!anyNode && entry.origin === options.nodeId)) break
      sid = entry.movedTo
    }
    return sid
  }

  /**
   * `mine` applied over `stored`. The principal follows the merged data (it may depend on keys the
   * other request changed), so it is computed again from it.
   */
  #merge(stored: Buffer, mine: EncodedSession): EncodedSession {
    const { limits, options } = this.#context
    const merged = mergeSession(stored, mine, limits)
    const meta = options.principal && readMeta(merged.blob)
    if (!meta) return merged
    const principal = this.#principalOf(decodeSession(merged.blob, null))
    return principal === meta.principal ? merged : withMeta(merged, stored, { createdAt: meta.createdAt, principal }, limits)
  }

  /**
   * Evicts what the session limits ask before `sid` is stored; throws `SessionLimitError` (before
   * evicting anything) when refused. An anonymous session evicted for `maxSessions` leaves a short
   * tombstone; one with a principal, evicted for another, a full one (it is a logout).
   */
  #admit(sid: string, meta: SessionMeta | undefined, isNew: boolean, now: number): ReadonlyArray<Promise<void>> {
    const { admission, table, index, options } = this.#context
    if (!admission) return NO_EVICTIONS
    const principal = meta?.principal ?? null
    // `get` reclaims an expired session on the spot: an expired session never counts.
    const oldest = admission.admit(
      sid,
      principal,
      isNew,
      () => table.liveCount,
      (other) => table.get(other, now) !== undefined,
    )
    const sent = oldest.map((victim) => this.destroy(victim, now, 'evicted'))
    const max = options.maxSessions
    if (!isNew || max === undefined) return sent
    for (let victim = admission.nextVictim(sid, principal); victim !== undefined && table.liveCount >= max;) {
      const anonymous = index?.get(victim)?.principal === null
      sent.push(this.destroy(victim, now, 'evicted', anonymous ? now + EVICTED_TOMBSTONE_MS : undefined))
      const next = admission.nextVictim(sid, principal)
      victim = next === victim ? undefined : next
    }
    return sent
  }

  /**
   * The facts stored with a session, kept only when a principal or an absolute timeout needs them.
   * The creation time comes from what is stored, else from what the request read (a session that
   * expired meanwhile keeps its age), and is never in the future.
   */
  #metaOf(session: SessionData, known: Buffer | null | undefined, now: number): SessionMeta | undefined {
    const { principal, absoluteTimeout } = this.#context.options
    if (!principal && absoluteTimeout === undefined) return undefined
    const createdAt = Math.min((known && readMeta(known)?.createdAt) ?? now, now)
    return { createdAt, principal: principal ? this.#principalOf(session) : null }
  }

  /** The `principal` option's answer for `session`, checked: a string, or null for anonymous. */
  #principalOf(session: SessionData): string | null {
    const value = this.#context.options.principal!(session)
    if (value === undefined || value === null || value === '') return null
    if ((typeof value !== 'string' && typeof value !== 'number') || String(value).length > MAX_PRINCIPAL_LENGTH) {
      throw new InvalidOptionError(
        'principal',
        `a function returning a string (up to ${MAX_PRINCIPAL_LENGTH} characters), a number or undefined`,
        value,
      )
    }
    return String(value)
  }

  /** `expiresAt`, no later than the session's creation (never counted as later than now) plus `absoluteTimeout`. */
  #capped(expiresAt: number, meta: SessionMeta | undefined, now: number): number {
    const { absoluteTimeout } = this.#context.options
    return absoluteTimeout === undefined || !meta ? expiresAt : Math.min(expiresAt, Math.min(meta.createdAt, now) + absoluteTimeout)
  }
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  return a === b || a.equals(b)
}

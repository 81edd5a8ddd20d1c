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

export interface SessionWriterContext {
  readonly options: Pick<ResolvedOptions, 'nodeId' | 'principal' | 'absoluteTimeout' | 'maxSessions' | 'maxRebinds'>
  readonly limits: SessionLimits
  readonly table: SessionTable
  readonly index: SessionIndex | undefined
  readonly admission: Admission | undefined
  readonly events: SessionEvents
  /** Replicates a local change; resolves as `sendMode` says. */
  publish(change: LocalChange | undefined): Promise<void> | undefined
}

/** How a save sets the session's expiry: from the cookie's `expires` (or a given one), at `now`. */
export interface SaveExpiry {
  /** Replaces the cookie's own `expires` (Koa keeps it outside the data). */
  readonly cookieExpires?: number | null
  expiresAt(cookieExpires: number | null, now: number): number
}

/**
 * Every local write and destroy of a session, with what issue 17 added around them: merge on save
 * against what the request read, the store's facts kept in the session (creation, principal), the
 * absolute timeout, the session limits, and the `session:created`/`destroyed`/`expired` events of
 * the node that acts. The PeerStore hands requests in; this decides what the table stores.
 */
export class SessionWriter {
  readonly #context: SessionWriterContext
  /** What each request read, under its session object, its Koa context or its Fastify scope. */
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
    if (session) this.#loaded.set(session, { sid, blob, next: undefined })
    if (request) this.#note(request, sid, blob)
  }

  /** Makes what was read under the first of `from` that has anything known under `to` too (express-session's `createSession`). */
  carryLoaded(to: object, ...from: Array<object | undefined>): void {
    for (const key of from) {
      const loaded = key && this.#loaded.get(key)
      if (loaded) return void this.#loaded.set(to, loaded)
    }
  }

  /**
   * Stores `session` under `sid` for a request known by its session object and its context,
   * synchronously; the promise is the replication's (see `sendMode`). Merge on save: when the request
   * read the session and another request stored different bytes since, only what this request
   * changed is applied over them. A session another node took over since the request read it is
   * saved under its new id. Throws `SessionLimitError`, `NotReplicableError`, `SessionTooLargeError`.
   */
  save(sid: string, session: object, request: object | undefined, expiry: SaveExpiry): Promise<void> {
    const { table, limits } = this.#context
    const loaded = this.#loadedFor(sid, session) ?? (request && this.#loadedFor(sid, request))
    const target = loaded ? this.#movedTo(sid, true) : sid
    const now = Date.now()
    const live = table.get(target, now)
    if (table.peek(target)?.blob === null) {
      debug('set of destroyed session %s ignored', target)
      return DONE
    }
    const meta = this.#metaOf(session as SessionData, live?.blob ?? loaded?.blob, now)
    // What this request's session is now, as it sees it: its base at its next save.
    let view: Buffer
    let encoded: EncodedSession
    const merging = loaded !== undefined && live !== undefined && !sameBytes(live.blob!, loaded.blob)
    if (merging) {
      const mine = encodeSession(session, limits, loaded.blob, meta)
      encoded = this.#merge(live.blob!, mine)
      view = mine.blob
    } else {
      // Encoded once, against what is stored: unchanged sessions come back as the stored bytes.
      encoded = encodeSession(session, limits, live?.blob ?? null, meta)
      view = encoded.blob
    }
    if (expiry.cookieExpires !== undefined) encoded = { ...encoded, cookieExpires: expiry.cookieExpires }
    const expiresAt = this.#capped(expiry.expiresAt(encoded.cookieExpires, now), meta, now)
    if (expiresAt <= now) return live ? this.expireNow(target, live, now) : (this.#context.publish(table.destroy(target, now)) ?? DONE)
    const evictions = this.#admit(target, meta, !live, now)
    const change = table.upsert(target, encoded, expiresAt, now)
    if (merging) this.#mergedSaves += 1
    if (change?.kind === 'upsert' && change.previous === null) this.#context.events.created(target, change.entry)
    this.#note(session, target, view)
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
    for (let loaded = this.#loaded.get(key); loaded; loaded = loaded.next) {
      // A request may read other sessions too: only a read of this one counts.
      if (loaded.sid === sid || this.#movedTo(loaded.sid, true) === this.#movedTo(sid, true)) return loaded
    }
    return undefined
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

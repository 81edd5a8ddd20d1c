import type { SessionData } from 'express-session'
import { InvalidArgumentError, NotReplicableError, SessionTooLargeError } from '../base/errors.js'
import { applyFields, diffFields, diffLayouts, fullDelta, type FieldDelta } from './field-delta.js'
import { decode, ownedCopy, packr } from './msgpack.js'
import type { ScanLimits } from './msgpack-scan.js'
import { assertReplicable, joinPath } from './replicable.js'
import { layoutOf } from './session-layout.js'
import { META_KEY, metaValue, type SessionMeta } from './session-meta.js'

/** Longest accepted session id, in UTF-16 code units, from a caller or from the network. */
export const MAX_SESSION_ID_LENGTH = 256

/**
 * Turns the session object express-session hands to `set` into the bytes the store keeps and
 * replicates, and back.
 *
 * A stored session is one msgpack map of its top-level keys. The cookie is kept as `cookie.toJSON()`
 * with `expires` cut out and held as a number beside the bytes: `expires` moves on every request,
 * and keeping it out of the bytes lets an unchanged session be recognised by comparing bytes.
 */
export interface EncodedSession {
  /** msgpack map of the session's top-level keys, `cookie.expires` set to null. */
  readonly blob: Buffer
  /** `cookie.expires` in ms since the epoch, or null when the cookie has no expiry. */
  readonly cookieExpires: number | null
  /**
   * What changed from `base` to `blob`, field by field (values are views into `blob`): the delta the
   * table stores and the replication sends, so nothing is encoded or compared twice.
   */
  readonly delta: FieldDelta
  /** The stored bytes `delta` was computed against (null: none, every field set). */
  readonly base: Buffer | null
}

export interface SessionLimits extends ScanLimits {
  readonly maxSessionBytes: number
}

/**
 * Encodes a session, once. Given the bytes stored for it (`stored`), compares field by field: when
 * nothing changed it returns `stored` itself, and only changed fields are checked for
 * replicability (an unchanged field encodes to bytes that were checked when they were stored; its
 * top-level value is still checked to be of a plain kind). `meta`, when given, is stored as the last
 * field (see `session-meta.ts`). Throws `InvalidArgumentError`, `NotReplicableError` or
 * `SessionTooLargeError`; never stores anything.
 */
export function encodeSession(session: unknown, limits: SessionLimits, stored: Buffer | null = null, meta?: SessionMeta): EncodedSession {
  if (typeof session !== 'object' || session === null || Array.isArray(session)) {
    throw new InvalidArgumentError('session', 'an object', session)
  }
  const source = session as Record<string, unknown>
  const copy: Record<string, unknown> = {}
  // The store's facts first: reading them then costs one key comparison (see `readMeta`).
  if (meta) copy[META_KEY] = metaValue(meta)
  let cookieExpires: number | null = null
  for (const key of Object.keys(source)) {
    const value = source[key]
    if (key === 'cookie' && value !== undefined && value !== null) {
      const cookie = normaliseCookie(value)
      cookieExpires = cookie.expires
      copy.cookie = cookie.json
    } else {
      if (key === '__proto__') throw new NotReplicableError('["__proto__"]', 'the key "__proto__" is reserved')
      if (key === META_KEY) throw new NotReplicableError(JSON.stringify([key]), 'this key is reserved for the store')
      copy[key] = value
    }
  }
  let packed: Uint8Array
  try {
    packed = packr.pack(copy)
  } catch (error) {
    // Something msgpack cannot encode: say what and where, as a NotReplicableError.
    checkFields(copy, Object.keys(copy), limits.maxDepth, source)
    throw error
  }
  if (stored !== null && packed.length === stored.length && stored.equals(packed)) {
    checkShallow(copy, limits.maxDepth, source)
    return { blob: stored, cookieExpires, delta: NO_CHANGE, base: stored }
  }
  // packr's result is a view into its own buffer, good until its next pack: copy it before that.
  const blob = ownedCopy(packed)
  const delta = stored === null ? fullDelta(blob) : diffLayouts(stored, layoutOf(stored), blob, layoutOf(blob))
  if (stored === null) {
    checkFields(copy, Object.keys(copy), limits.maxDepth, source)
  } else {
    checkFields(
      copy,
      delta.set.map(([key]) => key),
      limits.maxDepth,
      source,
    )
    checkShallow(copy, limits.maxDepth, source)
  }
  if (blob.length > limits.maxSessionBytes) throw new SessionTooLargeError(blob.length, limits.maxSessionBytes)
  return { blob, cookieExpires, delta, base: stored }
}

const NO_CHANGE: FieldDelta = { set: [], remove: [] }

/**
 * Merge on save: `mine` is a request's session encoded against the bytes it loaded, so its delta is
 * what the request changed; `stored` is a newer version another request stored since. The result is
 * `stored` with the request's changes applied, key by key: keys the request did not touch keep
 * their stored value, keys it set or removed take its change. Throws `SessionTooLargeError`.
 */
export function mergeSession(stored: Buffer, mine: EncodedSession, limits: SessionLimits): EncodedSession {
  const { set, remove } = mine.delta
  const blob = set.length === 0 && remove.length === 0 ? stored : applyFields(stored, mine.delta)
  if (blob.length > limits.maxSessionBytes) throw new SessionTooLargeError(blob.length, limits.maxSessionBytes)
  return { blob, cookieExpires: mine.cookieExpires, delta: diffFields(stored, blob), base: stored }
}

function checkFields(copy: Record<string, unknown>, keys: readonly string[], maxDepth: number, session: object): void {
  for (const key of keys) {
    if (key === 'cookie') assertReplicable(copy.cookie, 'cookie', maxDepth)
    else assertReplicable(copy[key], joinPath('', key), maxDepth, session)
  }
}

/**
 * The top level of every field: a function, a Map or a class instance can encode to the same
 * bytes as a plain value stored before (nil, a map), so unchanged bytes alone do not prove it plain.
 */
function checkShallow(copy: Record<string, unknown>, maxDepth: number, session: object): void {
  for (const key in copy) {
    const value = copy[key]
    if (typeof value !== 'object' || value === null) {
      if (typeof value === 'function' || typeof value === 'symbol' || typeof value === 'bigint') {
        assertReplicable(value, joinPath('', key), maxDepth, session)
      }
      continue
    }
    const prototype: unknown = Object.getPrototypeOf(value)
    if (prototype === Object.prototype || prototype === Array.prototype || prototype === null || prototype === Date.prototype) continue
    if (key === 'cookie') assertReplicable(value, 'cookie', maxDepth)
    else assertReplicable(value, joinPath('', key), maxDepth, session)
  }
}

/** Encodes only the cookie, for `touch`, which must not look at the rest of the session. */
export function encodeCookie(cookie: unknown, maxDepth: number): { bytes: Buffer; expires: number | null } {
  const normalised = normaliseCookie(cookie)
  assertReplicable(normalised.json, 'cookie', maxDepth)
  return { bytes: Buffer.from(packr.pack(normalised.json)), expires: normalised.expires }
}

/**
 * Rebuilds the session object: a fresh object every time, so callers may mutate it freely. The
 * store's own facts (`META_KEY`) are left out.
 */
export function decodeSession(blob: Uint8Array, cookieExpires: number | null): SessionData {
  const session = decode(blob) as SessionData & Record<string, unknown>
  // Only when there: a `delete` makes V8 keep the object as a slower dictionary.
  if (META_KEY in session) delete session[META_KEY]
  if (session.cookie && cookieExpires !== null) {
    ;(session.cookie as { expires?: Date | null }).expires = new Date(cookieExpires)
  }
  return session
}

/** How far from a whole second an `originalMaxAge` may be and still count as that second. */
const SNAP_MS = 10

function normaliseCookie(cookie: unknown): { json: Record<string, unknown>; expires: number | null } {
  if (typeof cookie !== 'object' || cookie === null) throw new InvalidArgumentError('session.cookie', 'an object', cookie)
  const toJSON = (cookie as { toJSON?: unknown }).toJSON
  const json = { ...(typeof toJSON === 'function' ? (toJSON.call(cookie) as object) : cookie) } as Record<string, unknown>
  const expires = toTime(json.expires)
  if ('expires' in json) json.expires = null
  // @fastify/session's cookie carries the previous request's expiry; it derives it from `expires`
  // again on load, so storing it would only make every rolling save look like a change.
  delete json.originalExpires
  json.originalMaxAge = snapToSecond(json.originalMaxAge)
  return { json, expires }
}

/**
 * express-session recomputes `originalMaxAge` from the clock (`expires - Date.now()`) each time it
 * moves the expiry, so it comes out a millisecond or two short now and then. Snap such values to the
 * whole second they miss, or that jitter would make an unchanged session look changed.
 */
function snapToSecond(value: unknown): unknown {
  if (typeof value !== 'number' || !Number.isFinite(value)) return value
  const snapped = Math.round(value / 1000) * 1000
  return Math.abs(snapped - value) <= SNAP_MS ? snapped : value
}

/**
 * The cookie's expiry in ms since the epoch, or null for none. A value that gives no valid time (an
 * Invalid Date, an unparsable string) counts as none, as it does in MemoryStore (JSON turns it into
 * null): the session then gets the store's `ttl`. Refusing it would be a second error for a request
 * whose cookie express-session has already failed to write.
 */
function toTime(expires: unknown): number | null {
  let time = Number.NaN
  if (expires instanceof Date) time = expires.getTime()
  else if (typeof expires === 'string' || typeof expires === 'number') time = new Date(expires).getTime()
  return Number.isNaN(time) ? null : time
}

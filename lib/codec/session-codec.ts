import type { SessionData } from 'express-session'
import { InvalidArgumentError, NotReplicableError, SessionTooLargeError } from '../base/errors.js'
import { decode, ownedCopy, packr } from './msgpack.js'
import { readMapFields, type ScanLimits } from './msgpack-scan.js'
import { assertReplicable, joinPath } from './replicable.js'

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
}

export interface SessionLimits extends ScanLimits {
  readonly maxSessionBytes: number
}

/** Throws `InvalidArgumentError`, `NotReplicableError` or `SessionTooLargeError`; never stores anything. */
export function encodeSession(session: unknown, limits: SessionLimits): EncodedSession {
  if (typeof session !== 'object' || session === null || Array.isArray(session)) {
    throw new InvalidArgumentError('session', 'an object', session)
  }
  const copy: Record<string, unknown> = {}
  let cookieExpires: number | null = null
  for (const key of Object.keys(session)) {
    const value = (session as Record<string, unknown>)[key]
    if (key === 'cookie' && value !== undefined && value !== null) {
      const cookie = normaliseCookie(value)
      cookieExpires = cookie.expires
      copy.cookie = cookie.json
      assertReplicable(cookie.json, 'cookie', limits.maxDepth)
    } else {
      if (key === '__proto__') throw new NotReplicableError('["__proto__"]', 'the key "__proto__" is reserved')
      assertReplicable(value, joinPath('', key), limits.maxDepth, session)
      copy[key] = value
    }
  }
  const packed = packr.pack(copy)
  if (packed.length > limits.maxSessionBytes) throw new SessionTooLargeError(packed.length, limits.maxSessionBytes)
  return { blob: ownedCopy(packed), cookieExpires }
}

/** Encodes only the cookie, for `touch`, which must not look at the rest of the session. */
export function encodeCookie(cookie: unknown, maxDepth: number): { bytes: Buffer; expires: number | null } {
  const normalised = normaliseCookie(cookie)
  assertReplicable(normalised.json, 'cookie', maxDepth)
  return { bytes: Buffer.from(packr.pack(normalised.json)), expires: normalised.expires }
}

/** Rebuilds the session object: a fresh object every time, so callers may mutate it freely. */
export function decodeSession(blob: Uint8Array, cookieExpires: number | null): SessionData {
  const session = decode(blob) as SessionData & Record<string, unknown>
  if (session.cookie && cookieExpires !== null) {
    ;(session.cookie as { expires?: Date | null }).expires = new Date(cookieExpires)
  }
  return session
}

/** Top-level fields of a stored session, keyed by name, each the bytes of its value. */
export function splitFields(blob: Buffer, limits: ScanLimits): Map<string, Buffer> {
  const fields = new Map<string, Buffer>()
  for (const field of readMapFields(blob, limits)) fields.set(field.key, blob.subarray(field.valueStart, field.valueEnd))
  return fields
}

/** The inverse of `splitFields`: one msgpack map from already-encoded values. */
export function joinFields(fields: ReadonlyMap<string, Uint8Array>): Buffer {
  const parts: Uint8Array[] = [mapHeader(fields.size)]
  let length = parts[0]!.length
  for (const [key, value] of fields) {
    const encodedKey = packr.pack(key)
    parts.push(encodedKey, value)
    length += encodedKey.length + value.length
  }
  // Stored for long: a buffer of its own, not a share of a pooled slab (see ownedCopy).
  const joined = Buffer.allocUnsafeSlow(length)
  let offset = 0
  for (const part of parts) {
    joined.set(part, offset)
    offset += part.length
  }
  return joined
}

function mapHeader(count: number): Uint8Array {
  if (count < 16) return Uint8Array.of(0x80 | count)
  if (count < 0x10000) return Uint8Array.of(0xde, count >> 8, count & 0xff)
  const header = Buffer.alloc(5)
  header[0] = 0xdf
  header.writeUInt32BE(count, 1)
  return header
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

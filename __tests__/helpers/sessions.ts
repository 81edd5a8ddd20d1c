import { Cookie, type SessionData } from 'express-session'
import type { PeerStoreOptions } from '../../lib/index.js'

/** One hour in ms: the cookie maxAge `session()` gives unless told otherwise. */
export const HOUR = 3_600_000

/**
 * A session as express-session hands it to a store: the data beside a plain cookie with
 * `originalMaxAge`, `expires` (now + `maxAgeMs`), `httpOnly` and `path`. `maxAgeMs` null is a
 * cookie without expiry (a browser-session cookie).
 */
export function session(data: Record<string, unknown> = {}, maxAgeMs: number | null = HOUR): SessionData {
  const expires = maxAgeMs === null ? null : new Date(Date.now() + maxAgeMs)
  return { cookie: { originalMaxAge: maxAgeMs, expires, httpOnly: true, path: '/' }, ...data }
}

/**
 * As `session()`, but the cookie is express-session's own `Cookie` object (with its `maxAge` accessor
 * and `toJSON()`), as in a real request: for the tests of how a store stores the cookie.
 * `maxAgeMs` null is a cookie without maxAge.
 */
export function sessionWithCookie(data: Record<string, unknown> = {}, maxAgeMs: number | null = HOUR): SessionData {
  // express-session's Cookie takes its options at runtime; its typings declare no constructor argument.
  const CookieWithOptions = Cookie as unknown as new (options: object) => Cookie
  const cookie = new CookieWithOptions({ maxAge: maxAgeMs ?? undefined, httpOnly: true, path: '/' })
  return { cookie, ...data }
}

/**
 * Fast membership timings for tests: a dead peer is noticed in about a second, not ten. Spread it
 * first and add what a test needs besides (`{ ...FAST, handshakeTimeout: 1000 }`).
 */
export const FAST = { heartbeatInterval: 100, suspectTimeout: 300, deadTimeout: 1000 } satisfies PeerStoreOptions

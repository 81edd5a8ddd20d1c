import type { SessionData } from 'express-session'
import { InvalidOptionError } from './errors.js'

/**
 * Options of `new PeerStore(peers, options)`. Session lifetimes are in seconds, like connect-redis's
 * `ttl` and connect-mongo's `touchAfter`; everything else is in milliseconds or bytes.
 */
export interface PeerStoreOptions {
  /**
   * Lifetime, in seconds, of a session whose cookie has no `expires` (no `maxAge`). A function of the
   * session is called on every write and always wins over the cookie, as in connect-redis: use it for
   * per-session lifetimes such as "remember me".
   * @default 86400 (one day)
   */
  ttl?: number | ((session: SessionData) => number)
  /**
   * Ignore `touch()`: an unchanged session's expiry only moves when the session is saved.
   * @default false
   */
  disableTouch?: boolean
  /**
   * Rewrite an unchanged session's expiry at most once per this many seconds (0: on every request).
   * Expiry then lags by up to this much, but a session never lapses because of it: an expiry closer
   * than `touchAfter` is always rewritten. Later versions use it to limit replication traffic.
   * @default 0
   */
  touchAfter?: number
  /**
   * Largest encoded session, in bytes; a larger `set` fails with `SessionTooLargeError`.
   * @default 262144 (256 KiB)
   */
  maxSessionBytes?: number
  /**
   * Deepest nesting of objects and arrays in a session value; deeper values are refused.
   * @default 32
   */
  maxDepth?: number
  /**
   * Seconds a destroyed session's tombstone is kept at least (it is kept until the session would
   * have expired in any case). While it exists, writes to that id are ignored, so an in-flight
   * request cannot bring a logged-out session back.
   * @default 600
   */
  tombstoneTtl?: number
  /**
   * How often, in ms, expired sessions are reclaimed. Expired sessions are never returned even
   * before they are reclaimed.
   * @default 1000
   */
  reapInterval?: number
}

/** Options after defaults and validation; durations converted to milliseconds. */
export interface ResolvedOptions {
  readonly ttlMs: number
  readonly ttlFunction: ((session: SessionData) => number) | undefined
  readonly disableTouch: boolean
  readonly touchAfterMs: number
  readonly maxSessionBytes: number
  readonly maxDepth: number
  readonly maxContainerLength: number
  readonly tombstoneTtlMs: number
  readonly reapIntervalMs: number
}

export const DEFAULTS = {
  ttl: 86_400,
  disableTouch: false,
  touchAfter: 0,
  maxSessionBytes: 256 * 1024,
  maxDepth: 32,
  tombstoneTtl: 600,
  reapInterval: 1000,
} as const

const KNOWN_OPTIONS = new Set<string>(Object.keys(DEFAULTS))

/** Validates every option before anything (timer, socket) exists; throws `InvalidOptionError`. */
export function resolveOptions(options: PeerStoreOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidOptionError('options', 'an object', options)
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) throw new InvalidOptionError(key, `one of the known options (${[...KNOWN_OPTIONS].join(', ')})`, key)
  }
  const ttl = options.ttl ?? DEFAULTS.ttl
  if (typeof ttl !== 'function') positiveNumber('ttl', ttl)
  const maxSessionBytes = integer('maxSessionBytes', options.maxSessionBytes ?? DEFAULTS.maxSessionBytes, 64, 64 * 1024 * 1024)
  return {
    ttlMs: typeof ttl === 'function' ? DEFAULTS.ttl * 1000 : ttl * 1000,
    ttlFunction: typeof ttl === 'function' ? ttl : undefined,
    disableTouch: boolean('disableTouch', options.disableTouch ?? DEFAULTS.disableTouch),
    touchAfterMs: nonNegativeNumber('touchAfter', options.touchAfter ?? DEFAULTS.touchAfter) * 1000,
    maxSessionBytes,
    maxDepth: integer('maxDepth', options.maxDepth ?? DEFAULTS.maxDepth, 2, 512),
    // A container cannot hold more items than there are bytes, so the size limit bounds it too.
    maxContainerLength: maxSessionBytes,
    tombstoneTtlMs: nonNegativeNumber('tombstoneTtl', options.tombstoneTtl ?? DEFAULTS.tombstoneTtl) * 1000,
    reapIntervalMs: integer('reapInterval', options.reapInterval ?? DEFAULTS.reapInterval, 10, 3_600_000),
  }
}

function boolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new InvalidOptionError(name, 'a boolean', value)
  return value
}

function positiveNumber(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new InvalidOptionError(name, 'a finite number greater than 0', value)
  }
  return value
}

function nonNegativeNumber(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidOptionError(name, 'a finite number of at least 0', value)
  }
  return value
}

function integer(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(name, `an integer from ${min} to ${max}`, value)
  }
  return value
}

/**
 * Every error connect-peer creates. Each has a stable `code`; branch on `code` or `instanceof`,
 * never on the message text, which may be reworded.
 *
 * @example
 * ```ts
 * import { PeerStoreError, ErrorCodes } from 'connect-peer'
 * try { await store.set(sid, session) } catch (err) {
 *   if (err instanceof PeerStoreError && err.code === ErrorCodes.NOT_REPLICABLE) console.warn(err.path)
 * }
 * ```
 */
export const ErrorCodes = {
  INVALID_OPTION: 'EPEER_INVALID_OPTION',
  INVALID_ARGUMENT: 'EPEER_INVALID_ARGUMENT',
  NOT_REPLICABLE: 'EPEER_NOT_REPLICABLE',
  SESSION_TOO_LARGE: 'EPEER_SESSION_TOO_LARGE',
  CLOSED: 'EPEER_CLOSED',
  MALFORMED_DATA: 'EPEER_MALFORMED_DATA',
} as const

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes]

/** Base class of every error thrown or emitted by connect-peer. */
export class PeerStoreError extends Error {
  override readonly name: string = 'PeerStoreError'
  readonly code: ErrorCode

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}

/** An option passed to a constructor is missing, of the wrong type or out of range. */
export class InvalidOptionError extends PeerStoreError {
  override readonly name = 'InvalidOptionError'
  /** The option's name as the user wrote it, e.g. `touchAfter` or `peers[1].port`. */
  readonly option: string

  constructor(option: string, expected: string, received: unknown) {
    super(
      ErrorCodes.INVALID_OPTION,
      `Invalid option \`${option}\`: expected ${expected}, received ${describe(received)}.`,
    )
    this.option = option
  }
}

/** A method was called with an argument it cannot accept (a non-string session id, a session that is not an object). */
export class InvalidArgumentError extends PeerStoreError {
  override readonly name = 'InvalidArgumentError'

  constructor(argument: string, expected: string, received: unknown) {
    super(ErrorCodes.INVALID_ARGUMENT, `Invalid ${argument}: expected ${expected}, received ${describe(received)}.`)
  }
}

/**
 * A session value cannot be replicated: a function, a symbol, a bigint, a circular reference or a
 * class instance (anything but plain objects, arrays, strings, numbers, booleans, null, Dates and
 * Buffers). The stored session is left as it was.
 */
export class NotReplicableError extends PeerStoreError {
  override readonly name = 'NotReplicableError'
  /** Where the value sits in the session, e.g. `user.socket` or `cart.items[3]`. */
  readonly path: string

  constructor(path: string, reason: string) {
    super(
      ErrorCodes.NOT_REPLICABLE,
      `Session value at \`${path}\` cannot be replicated: ${reason}. ` +
        'Store plain objects, arrays, strings, numbers, booleans, null, Dates or Buffers.',
    )
    this.path = path
  }
}

/** An encoded session is larger than `maxSessionBytes`. The stored session is left as it was. */
export class SessionTooLargeError extends PeerStoreError {
  override readonly name = 'SessionTooLargeError'
  readonly size: number
  readonly limit: number

  constructor(size: number, limit: number) {
    super(
      ErrorCodes.SESSION_TOO_LARGE,
      `Session encodes to ${size} bytes, more than the ${limit} allowed; ` +
        'store less in the session or raise the `maxSessionBytes` option.',
    )
    this.size = size
    this.limit = limit
  }
}

/** The store was used after `close()`. */
export class StoreClosedError extends PeerStoreError {
  override readonly name = 'StoreClosedError'

  constructor(method: string) {
    super(ErrorCodes.CLOSED, `PeerStore.${method}() called after close().`)
  }
}

/** Bytes that are not acceptable msgpack: truncated, too deep, too long, or of a type that is not allowed. */
export class MalformedDataError extends PeerStoreError {
  override readonly name = 'MalformedDataError'

  constructor(reason: string, options?: { cause?: unknown }) {
    super(ErrorCodes.MALFORMED_DATA, `Malformed msgpack data: ${reason}.`, options)
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}...` : value)
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return `${typeof value} ${String(value)}`
  if (typeof value === 'object') return `an object (${Object.getPrototypeOf(value)?.constructor?.name ?? 'null prototype'})`
  return typeof value
}

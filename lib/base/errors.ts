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
  PROTOCOL: 'EPEER_PROTOCOL',
  HANDSHAKE_REFUSED: 'EPEER_HANDSHAKE_REFUSED',
  LISTEN: 'EPEER_LISTEN',
  REPLICATION_TIMEOUT: 'EPEER_REPLICATION_TIMEOUT',
  QUEUE_OVERFLOW: 'EPEER_QUEUE_OVERFLOW',
  CONNECTION_CLOSED: 'EPEER_CONNECTION_CLOSED',
  FRAME_TOO_LARGE: 'EPEER_FRAME_TOO_LARGE',
  SNAPSHOT: 'EPEER_SNAPSHOT',
  DISCOVERY: 'EPEER_DISCOVERY',
  SESSION_LIMIT: 'EPEER_SESSION_LIMIT',
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

/**
 * An option passed to a constructor is missing, of the wrong type or out of range. With
 * `sensitive` (secrets, keys, passphrases) the message gives only the kind and length of what was
 * received, never any part of it.
 */
export class InvalidOptionError extends PeerStoreError {
  override readonly name = 'InvalidOptionError'
  /** The option's name as the user wrote it, e.g. `touchAfter` or `peers[1].port`. */
  readonly option: string
  /** What was expected and what was received, as the message says it (never a secret's characters). */
  readonly detail: string

  constructor(option: string, expected: string, received: unknown, options?: { sensitive?: boolean }) {
    const detail = `expected ${expected}, received ${options?.sensitive ? describeShape(received) : describe(received)}`
    super(ErrorCodes.INVALID_OPTION, `Invalid option \`${option}\`: ${detail}.`)
    this.option = option
    this.detail = detail
  }
}

/** A method was called with an argument it cannot accept (a non-string session id, a session that is not an object). */
export class InvalidArgumentError extends PeerStoreError {
  override readonly name = 'InvalidArgumentError'

  constructor(argument: string, expected: string, received: unknown, options?: { cause?: unknown }) {
    super(ErrorCodes.INVALID_ARGUMENT, `Invalid ${argument}: expected ${expected}, received ${describe(received)}.`, options)
  }

  /** The same check failed on an argument as on an option (a peer given to `addPeer` as `peers` takes it). */
  static from(error: InvalidOptionError): InvalidArgumentError {
    const argument = new InvalidArgumentError('', '', undefined, { cause: error })
    argument.message = `Invalid ${error.option}: ${error.detail}.`
    return argument
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

/**
 * A session was not stored because a limit was reached: `maxSessions` (this node is full of
 * sessions that have a principal, and the new one has none) or `maxSessionsPerPrincipal` with the
 * `'refuse'` policy (the user has that many sessions already). Counted in `stats().refused`.
 */
export class SessionLimitError extends PeerStoreError {
  override readonly name = 'SessionLimitError'
  /** The option whose limit was reached. */
  readonly limit: 'maxSessions' | 'maxSessionsPerPrincipal'

  constructor(limit: 'maxSessions' | 'maxSessionsPerPrincipal', max: number) {
    const why =
      limit === 'maxSessions'
        ? `this node holds ${max} sessions (\`maxSessions\`), all of logged-in users, and a new anonymous session may not evict one`
        : `this user has ${max} sessions already (\`maxSessionsPerPrincipal\`, policy 'refuse')`
    super(ErrorCodes.SESSION_LIMIT, `Session not stored: ${why}.`)
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

/** A peer broke the protocol: a bad frame, an unknown message type, a message of the wrong shape. */
export class ProtocolError extends PeerStoreError {
  override readonly name = 'ProtocolError'

  constructor(reason: string, options?: { cause?: unknown }) {
    super(ErrorCodes.PROTOCOL, `Peer protocol violation: ${reason}.`, options)
  }
}

/** Why a handshake was refused; sent to the other side and reported on this one. */
export const HandshakeRefusals = {
  VERSION: 'version',
  CLUSTER: 'cluster',
  UNKNOWN_NODE: 'unknown-node',
  SAME_NODE: 'same-node',
  DUPLICATE: 'duplicate',
  WRONG_NODE: 'wrong-node',
  TIMEOUT: 'timeout',
  SHUTTING_DOWN: 'shutting-down',
  AUTH: 'auth',
  BUSY: 'busy',
} as const

export type HandshakeRefusal = (typeof HandshakeRefusals)[keyof typeof HandshakeRefusals]

/** For a `version` refusal: the protocol versions the dialer proposed, and those the refusing node speaks (empty when unknown). */
export interface ProtocolVersions {
  readonly proposed: readonly number[]
  readonly spoken: readonly number[]
}

/** A handshake between two nodes was refused, by this node or by the other. */
export class HandshakeRefusedError extends PeerStoreError {
  override readonly name = 'HandshakeRefusedError'
  readonly reason: HandshakeRefusal
  /** With reason `version`: which versions were proposed, and which the refusing node speaks. */
  readonly versions: ProtocolVersions | undefined

  constructor(reason: HandshakeRefusal, detail: string, versions?: ProtocolVersions) {
    super(ErrorCodes.HANDSHAKE_REFUSED, `Peer handshake refused (${reason}): ${detail}`)
    this.reason = reason
    this.versions = versions
  }
}

/** The replication port could not be opened (taken, or not an address of this machine). */
export class ListenError extends PeerStoreError {
  override readonly name = 'ListenError'

  constructor(address: string, tried: number, options: { cause: unknown; nodeId: string }) {
    const code = (options.cause as NodeJS.ErrnoException | undefined)?.code
    const reason = (options.cause as Error | undefined)?.message ?? String(options.cause)
    // The likeliest cause first: a second copy of the same node, not a port someone else needs.
    const hint =
      code === 'EADDRINUSE'
        ? `Is another instance of node "${options.nodeId}" already running? If something else uses the port, choose another ` +
          (tried > 1 ? `(tried ${tried} ports; \`listen.autoBind\` tries more)` : '(or set `listen.autoBind` to try the next ports)')
        : code === 'EADDRNOTAVAIL'
          ? 'Is that an address of this machine? `listen` takes one of its own addresses (or 0.0.0.0)'
          : 'Check `listen`'
    super(ErrorCodes.LISTEN, `Cannot listen on ${address} (${reason}). ${hint}.`, options)
  }
}

/** In `sendMode` 'ack' or 'sync', a live peer did not confirm a write within `ackTimeout`. */
export class ReplicationTimeoutError extends PeerStoreError {
  override readonly name = 'ReplicationTimeoutError'
  readonly peers: string[]

  constructor(peers: string[], timeoutMs: number) {
    super(
      ErrorCodes.REPLICATION_TIMEOUT,
      `Write not confirmed by ${peers.join(', ')} within ${timeoutMs} ms; it is stored on this node and will reach ` +
        'the peer when it catches up. Raise `ackTimeout` or use sendMode "async" to not wait.',
    )
    this.peers = peers
  }
}

/** A peer was too slow: its send queue passed `maxQueueBytes`, and was dropped for a resync. */
export class QueueOverflowError extends PeerStoreError {
  override readonly name = 'QueueOverflowError'

  constructor(peer: string, limit: number) {
    super(
      ErrorCodes.QUEUE_OVERFLOW,
      `Send queue to ${peer} passed ${limit} bytes; it was dropped and the peer will be resynchronised. ` +
        'Raise `maxQueueBytes` if the peer is only briefly slow.',
    )
  }
}

/** A connection to a peer closed while something was waiting on it. */
export class ConnectionClosedError extends PeerStoreError {
  override readonly name = 'ConnectionClosedError'

  constructor(peer: string) {
    super(ErrorCodes.CONNECTION_CLOSED, `Connection to ${peer} closed.`)
  }
}

/**
 * A change was not sent to a peer because its frame is larger than that peer accepts (its
 * `maxFrameBytes`, or `maxSessionBytes`, is smaller than this node's). The change is stored here;
 * the peer cannot hold it. Give every node the same size limits.
 */
export class FrameTooLargeError extends PeerStoreError {
  override readonly name = 'FrameTooLargeError'

  constructor(peer: string, size: number, limit: number) {
    super(
      ErrorCodes.FRAME_TOO_LARGE,
      `A change of ${size} bytes was not sent to ${peer}, which accepts frames of at most ${limit} bytes; ` +
        'give every node the same `maxSessionBytes` and `maxFrameBytes`.',
    )
  }
}

/** Why a snapshot file was not loaded. */
export const SnapshotProblems = {
  /** There is no snapshot yet (the first start, or a new directory). */
  MISSING: 'missing',
  /** The file ends before its last chunk: the writer was cut off, or the file was cut. */
  TRUNCATED: 'truncated',
  /** A chunk does not check out (bytes changed on disk), or the content is malformed. */
  CORRUPT: 'corrupt',
  /** It was written by another node, or a node of another cluster. */
  FOREIGN: 'foreign',
  /** It was sealed with a secret this node does not have (or has no secret for an encrypted file). */
  UNDECRYPTABLE: 'undecryptable',
  /** Not a snapshot, or one of a format version this release does not read. */
  FORMAT: 'format',
  /** It could not be read or written (permissions, disk full). */
  IO: 'io',
} as const

export type SnapshotProblem = (typeof SnapshotProblems)[keyof typeof SnapshotProblems]

/**
 * A snapshot could not be loaded (the node starts without it, from its peers) or written (the
 * previous one stays). Emitted as a `warning` event; never thrown at a request.
 */
export class SnapshotError extends PeerStoreError {
  override readonly name = 'SnapshotError'
  readonly reason: SnapshotProblem
  /** The file concerned; for a bad file, where it was moved aside. */
  readonly file: string

  constructor(reason: SnapshotProblem, file: string, detail: string, options?: { cause?: unknown }) {
    super(ErrorCodes.SNAPSHOT, `Snapshot ${file} (${reason}): ${detail}`, options)
    this.reason = reason
    this.file = file
  }
}

/**
 * The peers could not be listed (a DNS name that does not resolve, a server that does not answer, a
 * `peers` function that threw or returned something that is not a list of peers). The node keeps
 * the peers it has and tries again at the next interval. Emitted as a `discovery:error` event.
 */
export class DiscoveryError extends PeerStoreError {
  override readonly name = 'DiscoveryError'
  /** What was asked: `dns <name>`, `dns srv <name>`, or `the peers function`. */
  readonly source: string

  constructor(source: string, detail: string, options?: { cause?: unknown }) {
    super(ErrorCodes.DISCOVERY, `Peer discovery (${source}) failed: ${detail}; the current peers are kept.`, options)
    this.source = source
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}...` : value)
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return `${typeof value} ${String(value)}`
  if (typeof value === 'object')
    return `an object (${(Object.getPrototypeOf(value) as { constructor?: { name?: string } } | null)?.constructor?.name ?? 'null prototype'})`
  return typeof value
}

/** What a secret-bearing value is, without a single character of it. */
function describeShape(value: unknown): string {
  if (value === null || value === undefined) return String(value)
  if (typeof value === 'string') return `a string of ${value.length} characters`
  if (Buffer.isBuffer(value)) return `a Buffer of ${value.length} bytes`
  if (Array.isArray(value)) return `an array of ${value.length} items`
  if (typeof value === 'object') return describe(value)
  return `a ${typeof value}`
}

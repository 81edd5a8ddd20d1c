import type { SessionData } from 'express-session'
import { isLoopback, parseListen, parseNodeId, parsePeer, type ListenAddress, type ListenSpec, type PeerAddress, type PeerSpec } from '../cluster/address.js'
import { exponentialBackoff, type RetryPolicy } from '../cluster/backoff.js'
import type { TlsIdentity } from '../security/tls-identity.js'
import { InvalidOptionError } from '../base/errors.js'

/** How long a write waits for peers: not at all, until received, or until applied. */
export type SendMode = 'async' | 'ack' | 'sync'

/** Mutual TLS material, as `tls.createSecureContext` takes it, and how certificates name nodes. */
export interface TlsOptions {
  /**
   * The certificate authority (or authorities) peers' certificates must come from. Every
   * certificate it signs that names a node id can act as that node: use a CA dedicated to this
   * cluster, not a company-wide one.
   */
  ca: string | Buffer | Array<string | Buffer>
  /** This node's certificate; it must name this node's id as `identity` says. */
  cert: string | Buffer
  key: string | Buffer
  passphrase?: string
  /**
   * How a certificate names its node: `'cn-or-dns'`, the subject CN or a DNS subject alternative
   * name is the node id; or `{ uriPrefix: 'spiffe://cluster/' }`, a URI subject alternative name
   * `<uriPrefix><nodeId>` must be present and nothing else counts (stricter: a certificate issued
   * for a host name cannot pass for a node).
   * @default 'cn-or-dns'
   */
  identity?: TlsIdentity
}

/** TLS options after validation: `identity` filled in. */
export type ResolvedTlsOptions = TlsOptions & { readonly identity: TlsIdentity }

/**
 * Options of `new PeerStore(peers, options)`. Session lifetimes are in seconds, like connect-redis's
 * `ttl` and connect-mongo's `touchAfter`; everything else is in milliseconds or bytes.
 */
export interface PeerStoreOptions {
  // ---- sessions -------------------------------------------------------------------------------
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
   * Rewrite (and replicate) an unchanged session's expiry at most once per this many seconds (0: on
   * every request). Expiry then lags by up to this much, but a session never lapses because of it:
   * an expiry closer than `touchAfter` is always rewritten.
   * @default 0
   */
  touchAfter?: number
  /**
   * Largest encoded session, in bytes; a larger `set` fails with `SessionTooLargeError`.
   * @default 262144 (256 KiB)
   */
  maxSessionBytes?: number
  /**
   * Deepest nesting of objects and arrays in a session (the session itself is level 1).
   * @default 32
   */
  maxDepth?: number
  /**
   * Seconds a destroyed session's tombstone is kept at least (it is kept until the session would
   * have expired in any case). While it exists, writes to that id are ignored and no stale copy from
   * a peer can bring the session back.
   * @default 600
   */
  tombstoneTtl?: number
  /**
   * How many times one session may be taken over by another node (rebound to a new id after a
   * failover). Each takeover leaves a tombstone of the old id for the session's remaining lifetime,
   * so this bounds the tombstones one session can leave, whoever alternates its route cookie. Past
   * it, the session is still served on whichever node gets it, under the id it has.
   * @default 10
   */
  maxRebinds?: number
  /**
   * How often, in ms, expired sessions are reclaimed. Expired sessions are never returned even
   * before they are reclaimed.
   * @default 1000
   */
  reapInterval?: number

  // ---- cluster --------------------------------------------------------------------------------
  /**
   * This node's id, unique in the cluster (Tomcat's `jvmRoute`). Required with peers or `listen`.
   * 1 to 64 letters, digits, `-` or `_`.
   */
  nodeId?: string
  /** Where peers reach this node: `'10.0.0.1:4055'` or `{ host, port, autoBind }`. Required with peers. */
  listen?: ListenSpec
  /**
   * Shared cluster secret, the same on every node (at least 16 characters; `openssl rand -base64 32`
   * makes a good one). Peers prove they know it in the handshake, and every frame after it is
   * encrypted and authenticated with keys derived from it (AES-256-GCM). A list rotates secrets:
   * every one is accepted, the first is used to connect. Required unless the node listens on
   * loopback only, `tls` is set, or `insecure` is true.
   */
  secret?: string | readonly string[]
  /**
   * Mutual TLS instead of (or on top of) the secret: `{ ca, cert, key }` as for `tls.createSecureContext`.
   * Both sides present certificates from `ca`, and a peer's certificate must name its node id
   * (subject CN or a DNS subject alternative name).
   */
  tls?: TlsOptions
  /**
   * With `secret` (and no `tls`), a peer configured by IP address must connect from that address.
   * The secret proves only that a node belongs to the cluster, not which node it is: this binds a
   * node id to its address, since nodes dial from their listen address. Turn it off when peers reach
   * each other through NAT (or dial from an address other than the configured one). Peers configured
   * by host name, and clusters using `tls` (the certificate names the node), are not checked.
   * @default true
   */
  verifyPeerAddress?: boolean
  /**
   * Allow replication without a secret or TLS on a non-loopback address. Only for networks where
   * everyone who can reach the port is trusted.
   * @default false
   */
  insecure?: boolean
  /**
   * Connections from hosts other than the configured peers' that may be in their handshake at once;
   * more are closed at once. A configured peer's host has `maxPendingHandshakesPerHost` slots of its
   * own on top, so strangers filling these cannot keep the peers out. A connection must send its
   * HELLO within a second (or `handshakeTimeout`, if shorter), and finish within `handshakeTimeout`.
   * @default 32
   */
  maxPendingHandshakes?: number
  /**
   * Connections from any one host that may be in their handshake at once; more are closed at once.
   * Raise it when several peers reach this node from one address (through NAT).
   * @default 4 (or `maxPendingHandshakes`, if smaller)
   */
  maxPendingHandshakesPerHost?: number
  /**
   * Name of the cluster; nodes of different clusters refuse each other.
   * @default 'connect-peer'
   */
  clusterName?: string
  /**
   * When `set`/`destroy` resolve: 'async' at once (Tomcat's channelSendOptions=8), 'ack' once every
   * live peer has received the change, 'sync' once every live peer has applied it.
   * @default 'async'
   */
  sendMode?: SendMode
  /**
   * In 'ack' and 'sync' mode, how long a write waits for a live peer before failing with
   * `ReplicationTimeoutError`.
   * @default 5000
   */
  ackTimeout?: number
  /**
   * Interval of heartbeats to each peer, in ms (Tomcat's TcpPingInterceptor).
   * @default 1000
   */
  heartbeatInterval?: number
  /**
   * Silence after which a peer is suspect and verified with a fresh connection, in ms.
   * @default 3000
   */
  suspectTimeout?: number
  /**
   * Silence after which a peer is dead even if it still accepts connections, in ms.
   * @default 10000
   */
  deadTimeout?: number
  /**
   * Timeout of a connection attempt and of a suspect's verification, in ms (TcpFailureDetector).
   * @default 1000
   */
  connectTimeout?: number
  /**
   * Time a new connection has to complete its handshake, in ms.
   * @default 5000
   */
  handshakeTimeout?: number
  /**
   * Delay before reconnect attempt `n` (1, 2, ...) in ms, or null to stop.
   * @default exponentialBackoff(100, 5000): 100 ms doubling to 5 s, jittered
   */
  retry?: RetryPolicy
  /**
   * Bytes that may wait to be sent to one peer; past it the queue is dropped and the peer resynchronised.
   * @default 67108864 (64 MiB)
   */
  maxQueueBytes?: number
  /**
   * Largest frame accepted from a peer, in bytes; must leave room for one whole session.
   * @default the larger of 1 MiB and maxSessionBytes + 64 KiB
   */
  maxFrameBytes?: number
  /**
   * Sessions per chunk of a state transfer or resync (Tomcat's sendAllSessionsSize).
   * @default 1000
   */
  syncChunkSize?: number
  /**
   * How long after start, at most, a node treats itself as still receiving its state, in ms. Until its
   * first transfer ends (or this passes) a `get` that misses locally asks the peers.
   * @default 60000
   */
  stateTransferTimeout?: number
  /**
   * How long such a `get` waits for the peers, in ms.
   * @default 500
   */
  fetchTimeout?: number
  /**
   * How long a request for sessions during a state transfer or resynchronisation waits for its
   * reply, in ms. A request not answered in time is sent again (three times in all); then the whole
   * synchronisation starts over.
   * @default 10000
   */
  syncRequestTimeout?: number
  /**
   * How long `close()` may spend sending queued changes to live peers, in ms.
   * @default 5000
   */
  closeTimeout?: number
  /**
   * Expiry changes (touches) are collected and sent at most this often, in ms.
   * @default 100
   */
  touchFlushInterval?: number
  /**
   * On `close()`, destroy every session on every node (Tomcat's expireSessionsOnShutdown).
   * @default false
   */
  expireSessionsOnShutdown?: boolean
  /**
   * Emit `session:replicated` on the receiving node for every replicated change
   * (Tomcat's notifyListenersOnReplication).
   * @default true
   */
  notifyOnReplication?: boolean
}

/** Options after defaults and validation; durations in milliseconds. */
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
  readonly maxRebinds: number
  readonly nodeId: string
  /** Present when the store replicates. */
  readonly cluster: ClusterOptions | undefined
}

export interface ClusterOptions {
  readonly nodeId: string
  readonly peers: readonly PeerAddress[]
  readonly listen: ListenAddress
  /** Secrets, the first used to connect; empty without one. */
  readonly secrets: readonly string[]
  readonly tls: ResolvedTlsOptions | undefined
  readonly verifyPeerAddress: boolean
  readonly maxPendingHandshakes: number
  readonly maxPendingHandshakesPerHost: number
  readonly clusterName: string
  readonly sendMode: SendMode
  readonly ackTimeoutMs: number
  readonly heartbeatIntervalMs: number
  readonly suspectTimeoutMs: number
  readonly deadTimeoutMs: number
  readonly connectTimeoutMs: number
  readonly handshakeTimeoutMs: number
  readonly retry: RetryPolicy
  readonly maxQueueBytes: number
  readonly maxFrameBytes: number
  readonly syncChunkSize: number
  readonly stateTransferTimeoutMs: number
  readonly fetchTimeoutMs: number
  readonly syncRequestTimeoutMs: number
  readonly closeTimeoutMs: number
  readonly touchFlushIntervalMs: number
  readonly expireSessionsOnShutdown: boolean
  readonly notifyOnReplication: boolean
}

/** Most items one message may carry, whatever `syncChunkSize` a peer uses. */
export const MAX_BATCH = 10_000

export const DEFAULTS = {
  ttl: 86_400,
  disableTouch: false,
  touchAfter: 0,
  maxSessionBytes: 256 * 1024,
  maxDepth: 32,
  tombstoneTtl: 600,
  reapInterval: 1000,
  maxRebinds: 10,
  clusterName: 'connect-peer',
  sendMode: 'async',
  ackTimeout: 5000,
  heartbeatInterval: 1000,
  suspectTimeout: 3000,
  deadTimeout: 10_000,
  connectTimeout: 1000,
  handshakeTimeout: 5000,
  maxQueueBytes: 64 * 1024 * 1024,
  syncChunkSize: 1000,
  stateTransferTimeout: 60_000,
  fetchTimeout: 500,
  syncRequestTimeout: 10_000,
  closeTimeout: 5000,
  touchFlushInterval: 100,
  expireSessionsOnShutdown: false,
  notifyOnReplication: true,
  insecure: false,
  verifyPeerAddress: true,
  maxPendingHandshakes: 32,
  maxPendingHandshakesPerHost: 4,
} as const

/** Options that have no single default value to list in DEFAULTS. */
const OTHER_OPTIONS = ['nodeId', 'listen', 'secret', 'tls', 'retry', 'maxFrameBytes'] as const
const KNOWN_OPTIONS = new Set<string>([...Object.keys(DEFAULTS), ...OTHER_OPTIONS])

/** Node id of a store without peers: versions still need an origin. */
const LOCAL_NODE_ID = 'local'

/** Validates every option before anything (timer, socket) exists; throws `InvalidOptionError`. */
export function resolveOptions(peerSpecs: readonly PeerSpec[], options: PeerStoreOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidOptionError('options', 'an object', options)
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) throw new InvalidOptionError(key, `one of the known options (${[...KNOWN_OPTIONS].join(', ')})`, key)
  }
  const ttl = options.ttl ?? DEFAULTS.ttl
  if (typeof ttl !== 'function') positiveNumber('ttl', ttl)
  const maxSessionBytes = integer('maxSessionBytes', options.maxSessionBytes ?? DEFAULTS.maxSessionBytes, 64, 64 * 1024 * 1024)
  const cluster = resolveCluster(peerSpecs, options, maxSessionBytes)
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
    maxRebinds: integer('maxRebinds', options.maxRebinds ?? DEFAULTS.maxRebinds, 0, 1000),
    nodeId: cluster?.nodeId ?? (options.nodeId === undefined ? LOCAL_NODE_ID : parseNodeId('nodeId', options.nodeId)),
    cluster,
  }
}

function resolveCluster(peerSpecs: readonly PeerSpec[], options: PeerStoreOptions, maxSessionBytes: number): ClusterOptions | undefined {
  if (!Array.isArray(peerSpecs)) throw new InvalidOptionError('peers', "an array of 'host:port' or { host, port, nodeId }", peerSpecs)
  if (peerSpecs.length === 0 && options.listen === undefined) return undefined
  if (options.nodeId === undefined) {
    throw new InvalidOptionError('nodeId', 'a node id (such as "was1") when the store has peers or listens; it must be unique in the cluster', undefined)
  }
  const nodeId = parseNodeId('nodeId', options.nodeId)
  if (options.listen === undefined) {
    throw new InvalidOptionError('listen', "the address peers reach this node at, such as '10.0.0.1:4055', when the store has peers", undefined)
  }
  const peers = peerSpecs.map((spec, index) => parsePeer(`peers[${index}]`, spec))
  checkPeersAreDistinct(peers, nodeId)
  const listen = parseListen(options.listen)
  const secrets = parseSecrets(options.secret)
  const tls = parseTls(options.tls)
  const insecure = boolean('insecure', options.insecure ?? DEFAULTS.insecure)
  const localOnly = isLoopback(listen.host) && peers.every((peer) => isLoopback(peer.host))
  if (secrets.length === 0 && !tls && !insecure && !localOnly) {
    throw new InvalidOptionError(
      'secret',
      `a cluster secret before listening on ${listen.host}, which is not loopback: set \`secret\` to the same string on every node ` +
        '(such as the output of `openssl rand -base64 32`), or `tls` for mutual TLS, or `insecure: true` if everyone who can reach the port is trusted',
      undefined,
    )
  }
  const sendMode = options.sendMode ?? DEFAULTS.sendMode
  if (sendMode !== 'async' && sendMode !== 'ack' && sendMode !== 'sync') throw new InvalidOptionError('sendMode', "'async', 'ack' or 'sync'", sendMode)
  const clusterName = options.clusterName ?? DEFAULTS.clusterName
  if (typeof clusterName !== 'string' || clusterName.length === 0 || clusterName.length > 128) {
    throw new InvalidOptionError('clusterName', 'a string of 1 to 128 characters', clusterName)
  }
  const retry = options.retry ?? exponentialBackoff(100, 5000)
  if (typeof retry !== 'function') throw new InvalidOptionError('retry', 'a function (attempt) => delay in ms or null', retry)

  const heartbeatIntervalMs = integer('heartbeatInterval', options.heartbeatInterval ?? DEFAULTS.heartbeatInterval, 10, 60_000)
  const suspectTimeoutMs = integer('suspectTimeout', options.suspectTimeout ?? DEFAULTS.suspectTimeout, 10, 600_000)
  const deadTimeoutMs = integer('deadTimeout', options.deadTimeout ?? DEFAULTS.deadTimeout, 10, 3_600_000)
  if (suspectTimeoutMs < 2 * heartbeatIntervalMs) {
    throw new InvalidOptionError('suspectTimeout', `at least two heartbeats (${2 * heartbeatIntervalMs} ms), so one missed beat is not enough`, suspectTimeoutMs)
  }
  if (deadTimeoutMs <= suspectTimeoutMs) throw new InvalidOptionError('deadTimeout', `more than suspectTimeout (${suspectTimeoutMs} ms)`, deadTimeoutMs)
  const minFrameBytes = maxSessionBytes + 64 * 1024
  const maxFrameBytes = integer('maxFrameBytes', options.maxFrameBytes ?? Math.max(1024 * 1024, minFrameBytes), minFrameBytes, 1024 * 1024 * 1024)
  const maxQueueBytes = integer('maxQueueBytes', options.maxQueueBytes ?? DEFAULTS.maxQueueBytes, maxFrameBytes, 2 ** 40)
  const maxPendingHandshakes = integer('maxPendingHandshakes', options.maxPendingHandshakes ?? DEFAULTS.maxPendingHandshakes, 1, 10_000)
  const perHost = options.maxPendingHandshakesPerHost ?? Math.min(DEFAULTS.maxPendingHandshakesPerHost, maxPendingHandshakes)
  const maxPendingHandshakesPerHost = integer('maxPendingHandshakesPerHost', perHost, 1, 10_000)
  if (maxPendingHandshakesPerHost > maxPendingHandshakes) {
    throw new InvalidOptionError('maxPendingHandshakesPerHost', `at most maxPendingHandshakes (${maxPendingHandshakes})`, maxPendingHandshakesPerHost)
  }

  return {
    nodeId,
    peers,
    listen,
    secrets,
    tls,
    verifyPeerAddress: boolean('verifyPeerAddress', options.verifyPeerAddress ?? DEFAULTS.verifyPeerAddress),
    maxPendingHandshakes,
    maxPendingHandshakesPerHost,
    clusterName,
    sendMode,
    ackTimeoutMs: integer('ackTimeout', options.ackTimeout ?? DEFAULTS.ackTimeout, 1, 600_000),
    heartbeatIntervalMs,
    suspectTimeoutMs,
    deadTimeoutMs,
    connectTimeoutMs: integer('connectTimeout', options.connectTimeout ?? DEFAULTS.connectTimeout, 1, 600_000),
    handshakeTimeoutMs: integer('handshakeTimeout', options.handshakeTimeout ?? DEFAULTS.handshakeTimeout, 1, 600_000),
    retry,
    maxQueueBytes,
    maxFrameBytes,
    syncChunkSize: integer('syncChunkSize', options.syncChunkSize ?? DEFAULTS.syncChunkSize, 1, MAX_BATCH),
    stateTransferTimeoutMs: integer('stateTransferTimeout', options.stateTransferTimeout ?? DEFAULTS.stateTransferTimeout, 0, 3_600_000),
    fetchTimeoutMs: integer('fetchTimeout', options.fetchTimeout ?? DEFAULTS.fetchTimeout, 1, 60_000),
    syncRequestTimeoutMs: integer('syncRequestTimeout', options.syncRequestTimeout ?? DEFAULTS.syncRequestTimeout, 1, 600_000),
    closeTimeoutMs: integer('closeTimeout', options.closeTimeout ?? DEFAULTS.closeTimeout, 0, 600_000),
    touchFlushIntervalMs: integer('touchFlushInterval', options.touchFlushInterval ?? DEFAULTS.touchFlushInterval, 1, 60_000),
    expireSessionsOnShutdown: boolean('expireSessionsOnShutdown', options.expireSessionsOnShutdown ?? DEFAULTS.expireSessionsOnShutdown),
    notifyOnReplication: boolean('notifyOnReplication', options.notifyOnReplication ?? DEFAULTS.notifyOnReplication),
  }
}

/** A secret shorter than this is refused: it could be guessed from a recorded handshake. */
const MIN_SECRET_LENGTH = 16

function parseSecrets(value: unknown): string[] {
  if (value === undefined) return []
  const list = typeof value === 'string' ? [value] : value
  if (!Array.isArray(list) || list.length === 0) {
    throw new InvalidOptionError('secret', 'a string, or a non-empty list of strings (the first is used to connect)', value, { sensitive: true })
  }
  list.forEach((secret, index) => {
    if (typeof secret !== 'string' || secret.length < MIN_SECRET_LENGTH) {
      const option = typeof value === 'string' ? 'secret' : `secret[${index}]`
      throw new InvalidOptionError(option, `a string of at least ${MIN_SECRET_LENGTH} characters (\`openssl rand -base64 32\` makes one)`, secret, { sensitive: true })
    }
  })
  return list as string[]
}

const TLS_FIELDS = new Set(['ca', 'cert', 'key', 'passphrase', 'identity'])

function parseTls(value: unknown): ResolvedTlsOptions | undefined {
  if (value === undefined) return undefined
  // A private key or passphrase may be passed in the wrong place: never print any of these values.
  const sensitive = { sensitive: true }
  if (typeof value !== 'object' || value === null) throw new InvalidOptionError('tls', '{ ca, cert, key } (PEM strings or Buffers)', value, sensitive)
  const tls = value as Record<string, unknown>
  for (const field of Object.keys(tls)) {
    if (!TLS_FIELDS.has(field)) throw new InvalidOptionError(`tls.${field}`, `one of ${[...TLS_FIELDS].join(', ')}`, field)
  }
  const pem = (item: unknown) => typeof item === 'string' || Buffer.isBuffer(item)
  for (const field of ['ca', 'cert', 'key'] as const) {
    const item = tls[field]
    const ok = field === 'ca' && Array.isArray(item) ? item.length > 0 && item.every(pem) : pem(item)
    if (!ok) throw new InvalidOptionError(`tls.${field}`, 'a PEM string or Buffer', item, sensitive)
  }
  if (tls.passphrase !== undefined && typeof tls.passphrase !== 'string') throw new InvalidOptionError('tls.passphrase', 'a string', tls.passphrase, sensitive)
  return { ...(tls as unknown as TlsOptions), identity: parseTlsIdentity(tls.identity) }
}

/** A URI scheme, then no whitespace, quotes, backslashes or commas, ending in `/` or `:`. */
const URI_PREFIX = /^[A-Za-z][A-Za-z0-9+.-]*:[^\s"'\\,]*[/:]$/

function parseTlsIdentity(value: unknown): TlsIdentity {
  if (value === undefined || value === 'cn-or-dns') return 'cn-or-dns'
  const expected = "'cn-or-dns', or { uriPrefix } such as { uriPrefix: 'spiffe://cluster/' }"
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidOptionError('tls.identity', expected, value)
  const fields = Object.keys(value)
  if (fields.length !== 1 || fields[0] !== 'uriPrefix') throw new InvalidOptionError('tls.identity', `${expected}, with no other field`, fields.join(', '))
  const { uriPrefix } = value as { uriPrefix: unknown }
  if (typeof uriPrefix !== 'string' || uriPrefix.length > 200 || !URI_PREFIX.test(uriPrefix)) {
    throw new InvalidOptionError(
      'tls.identity.uriPrefix',
      "a URI prefix of at most 200 characters with a scheme, ending in '/' or ':' (such as 'spiffe://cluster/'), without spaces, quotes or commas",
      uriPrefix,
    )
  }
  return { uriPrefix }
}

function checkPeersAreDistinct(peers: readonly PeerAddress[], nodeId: string): void {
  const addresses = new Set<string>()
  const ids = new Set<string>()
  peers.forEach((peer, index) => {
    const address = `${peer.host}:${peer.port}`
    if (addresses.has(address)) throw new InvalidOptionError(`peers[${index}]`, 'each peer listed once', address)
    addresses.add(address)
    if (peer.nodeId === undefined) return
    if (peer.nodeId === nodeId) throw new InvalidOptionError(`peers[${index}].nodeId`, `an id other than this node's own ("${nodeId}")`, peer.nodeId)
    if (ids.has(peer.nodeId)) throw new InvalidOptionError(`peers[${index}].nodeId`, 'a node id no other peer has', peer.nodeId)
    ids.add(peer.nodeId)
  })
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

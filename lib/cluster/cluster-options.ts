import { InvalidOptionError } from '../base/errors.js'
import { boolean, func, integer, optional, text, type OptionTable, type ResolvedTable } from '../base/option-spec.js'
import type { TlsIdentity } from '../security/tls-identity.js'
import { parseNodeId } from '../table/node-id.js'
import { isLoopback, parseListen, parsePeer, type ListenAddress, type ListenSpec, type PeerAddress, type PeerSpec } from './address.js'
import { exponentialBackoff, type RetryPolicy } from './backoff.js'
import { parseDiscovery, type DiscoveryConfig } from './discovery.js'

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

/** Options of the cluster transport: who this node is, how it reaches and trusts its peers. */
export interface ClusterOptions {
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
}

/**
 * Defaults and checks of every cluster option. Options whose check depends on others (the node id
 * and listen address are required with peers; frame and queue sizes depend on the session size;
 * timing must leave room for missed beats) are finished in `resolveCluster`.
 */
export const CLUSTER_OPTIONS = {
  nodeId: { parse: optional((value, name) => parseNodeId(name, value)) },
  listen: { parse: optional((value) => parseListen(value)) },
  secret: { parse: (value) => parseSecrets(value) },
  tls: { parse: (value) => parseTls(value) },
  verifyPeerAddress: { default: true, parse: boolean },
  insecure: { default: false, parse: boolean },
  maxPendingHandshakes: { default: 32, parse: integer(1, 10_000) },
  maxPendingHandshakesPerHost: { parse: optional(integer(1, 10_000)) },
  clusterName: { default: 'connect-peer', parse: text(1, 128) },
  ackTimeout: { default: 5000, parse: integer(1, 600_000) },
  heartbeatInterval: { default: 1000, parse: integer(10, 60_000) },
  suspectTimeout: { default: 3000, parse: integer(10, 600_000) },
  deadTimeout: { default: 10_000, parse: integer(10, 3_600_000) },
  connectTimeout: { default: 1000, parse: integer(1, 600_000) },
  handshakeTimeout: { default: 5000, parse: integer(1, 600_000) },
  retry: { default: exponentialBackoff(100, 5000), parse: func<RetryPolicy>('a function (attempt) => delay in ms or null') },
  maxQueueBytes: { default: 64 * 1024 * 1024, parse: integer(1, 2 ** 40) },
  maxFrameBytes: { parse: optional(integer(1, 1024 * 1024 * 1024)) },
} as const satisfies OptionTable<ClusterOptions>

/** Per-host handshake slots when `maxPendingHandshakes` allows as many. */
const DEFAULT_PENDING_PER_HOST = 4

/** What the cluster transport runs with: every option checked, the peers parsed. */
export interface ClusterConfig extends Omit<
  ResolvedTable<typeof CLUSTER_OPTIONS>,
  'nodeId' | 'listen' | 'secret' | 'maxPendingHandshakesPerHost' | 'maxFrameBytes'
> {
  readonly nodeId: string
  readonly listen: ListenAddress
  /** The peers given as a list (empty when `discovery` finds them). */
  readonly peers: readonly PeerAddress[]
  /** Where the peers are found when `peers` was a function or a DNS name. */
  readonly discovery: DiscoveryConfig | undefined
  /** Secrets, the first used to connect; empty without one. */
  readonly secret: readonly string[]
  readonly maxPendingHandshakesPerHost: number
  readonly maxFrameBytes: number
}

/**
 * Finishes the cluster options `resolveTable(CLUSTER_OPTIONS, ...)` checked one by one (whether or not
 * the store replicates); returns the config when the store replicates (it has peers or a listen
 * address), undefined otherwise.
 */
export function resolveCluster(
  peerSource: unknown,
  resolved: ResolvedTable<typeof CLUSTER_OPTIONS>,
  maxSessionBytes: number,
): ClusterConfig | undefined {
  const listed = Array.isArray(peerSource)
  if (!listed && (typeof peerSource !== 'object' || peerSource === null) && typeof peerSource !== 'function') {
    throw new InvalidOptionError('peers', "an array of 'host:port' or { host, port, nodeId }, a function, or { dns }", peerSource)
  }
  const peerSpecs: readonly unknown[] = listed ? peerSource : []
  const { nodeId, listen, secret, tls, insecure } = resolved
  if (resolved.suspectTimeout < 2 * resolved.heartbeatInterval) {
    throw new InvalidOptionError(
      'suspectTimeout',
      `at least two heartbeats (${2 * resolved.heartbeatInterval} ms), so one missed beat is not enough`,
      resolved.suspectTimeout,
    )
  }
  if (resolved.deadTimeout <= resolved.suspectTimeout) {
    throw new InvalidOptionError('deadTimeout', `more than suspectTimeout (${resolved.suspectTimeout} ms)`, resolved.deadTimeout)
  }
  const minFrameBytes = maxSessionBytes + 64 * 1024
  const maxFrameBytes = resolved.maxFrameBytes ?? Math.max(1024 * 1024, minFrameBytes)
  if (maxFrameBytes < minFrameBytes)
    throw new InvalidOptionError('maxFrameBytes', `at least maxSessionBytes + 64 KiB (${minFrameBytes})`, maxFrameBytes)
  if (resolved.maxQueueBytes < maxFrameBytes)
    throw new InvalidOptionError('maxQueueBytes', `at least maxFrameBytes (${maxFrameBytes})`, resolved.maxQueueBytes)
  const maxPendingHandshakesPerHost =
    resolved.maxPendingHandshakesPerHost ?? Math.min(DEFAULT_PENDING_PER_HOST, resolved.maxPendingHandshakes)
  if (maxPendingHandshakesPerHost > resolved.maxPendingHandshakes) {
    throw new InvalidOptionError(
      'maxPendingHandshakesPerHost',
      `at most maxPendingHandshakes (${resolved.maxPendingHandshakes})`,
      maxPendingHandshakesPerHost,
    )
  }

  if (listed && peerSpecs.length === 0 && listen === undefined) return undefined
  if (nodeId === undefined) {
    throw new InvalidOptionError(
      'nodeId',
      'a node id (such as "was1") when the store has peers or listens; it must be unique in the cluster',
      undefined,
    )
  }
  if (listen === undefined) {
    throw new InvalidOptionError(
      'listen',
      "the address peers reach this node at, such as '10.0.0.1:4055', when the store has peers",
      undefined,
    )
  }
  const peers = peerSpecs.map((spec, index) => parsePeer(`peers[${index}]`, spec as PeerSpec))
  checkPeersAreDistinct(peers, nodeId)
  const discovery = listed ? undefined : parseDiscovery(peerSource, listen.port)
  // Peers found later are held to the same rule: without a secret, only loopback ones are added.
  const localOnly = isLoopback(listen.host) && peers.every((peer) => isLoopback(peer.host))
  if (secret.length === 0 && !tls && !insecure && !localOnly) {
    throw new InvalidOptionError(
      'secret',
      `a cluster secret before listening on ${listen.host}, which is not loopback: set \`secret\` to the same string on every node ` +
        '(such as the output of `openssl rand -base64 32`), or `tls` for mutual TLS, or `insecure: true` if everyone who can reach the port is trusted',
      undefined,
    )
  }
  return { ...resolved, nodeId, listen, peers, discovery, secret, maxFrameBytes, maxPendingHandshakesPerHost }
}

/** A secret shorter than this is refused: it could be guessed from a recorded handshake. */
const MIN_SECRET_LENGTH = 16

function parseSecrets(value: unknown): string[] {
  if (value === undefined) return []
  const list: unknown = typeof value === 'string' ? [value] : value
  if (!Array.isArray(list) || list.length === 0) {
    throw new InvalidOptionError('secret', 'a string, or a non-empty list of strings (the first is used to connect)', value, {
      sensitive: true,
    })
  }
  list.forEach((secret, index) => {
    if (typeof secret !== 'string' || secret.length < MIN_SECRET_LENGTH) {
      const option = typeof value === 'string' ? 'secret' : `secret[${index}]`
      throw new InvalidOptionError(
        option,
        `a string of at least ${MIN_SECRET_LENGTH} characters (\`openssl rand -base64 32\` makes one)`,
        secret,
        { sensitive: true },
      )
    }
  })
  return list as string[]
}

const TLS_FIELDS = new Set(['ca', 'cert', 'key', 'passphrase', 'identity'])

function parseTls(value: unknown): ResolvedTlsOptions | undefined {
  if (value === undefined) return undefined
  // A private key or passphrase may be passed in the wrong place: never print any of these values.
  const sensitive = { sensitive: true }
  if (typeof value !== 'object' || value === null)
    throw new InvalidOptionError('tls', '{ ca, cert, key } (PEM strings or Buffers)', value, sensitive)
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
  if (tls.passphrase !== undefined && typeof tls.passphrase !== 'string')
    throw new InvalidOptionError('tls.passphrase', 'a string', tls.passphrase, sensitive)
  return { ...(tls as unknown as TlsOptions), identity: parseTlsIdentity(tls.identity) }
}

/** A URI scheme, then no whitespace, quotes, backslashes or commas, ending in `/` or `:`. */
const URI_PREFIX = /^[A-Za-z][A-Za-z0-9+.-]*:[^\s"'\\,]*[/:]$/

function parseTlsIdentity(value: unknown): TlsIdentity {
  if (value === undefined || value === 'cn-or-dns') return 'cn-or-dns'
  const expected = "'cn-or-dns', or { uriPrefix } such as { uriPrefix: 'spiffe://cluster/' }"
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidOptionError('tls.identity', expected, value)
  const fields = Object.keys(value)
  if (fields.length !== 1 || fields[0] !== 'uriPrefix')
    throw new InvalidOptionError('tls.identity', `${expected}, with no other field`, fields.join(', '))
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
    if (peer.nodeId === nodeId)
      throw new InvalidOptionError(`peers[${index}].nodeId`, `an id other than this node's own ("${nodeId}")`, peer.nodeId)
    if (ids.has(peer.nodeId)) throw new InvalidOptionError(`peers[${index}].nodeId`, 'a node id no other peer has', peer.nodeId)
    ids.add(peer.nodeId)
  })
}

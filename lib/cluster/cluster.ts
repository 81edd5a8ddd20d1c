import { randomBytes } from 'node:crypto'
import { lookup } from 'node:dns/promises'
import { isIP, type Server, type Socket } from 'node:net'
import { debugFor } from '../base/debug.js'
import {
  HandshakeRefusals,
  HandshakeRefusedError,
  InvalidArgumentError,
  InvalidOptionError,
  MalformedDataError,
  ProtocolError,
  StoreClosedError,
} from '../base/errors.js'
import type { ClusterConfig } from './cluster-options.js'
import { canonicalHost, formatAddress, isLoopback, isOwnAddress, type PeerAddress } from './address.js'
import { Connection, type ConnectionHandlers, type OutgoingData } from './connection.js'
import { deriveSecretKey, type SecretKey } from '../security/keys.js'
import { acceptHandshake, type HandshakeSecurity, type LocalIdentity, type Refusal } from './handshake.js'
import { HandshakeSlots } from './handshake-slots.js'
import { listen } from './listener.js'
import { RateLimiter } from './rate-limiter.js'
import { socketsFor, type Sockets } from './sockets.js'
import { MessageType, type AckLevel, type Hello, type Message, type MessageLimits } from '../protocol/messages.js'
import { PROTOCOL_VERSION } from '../protocol/frame.js'
import { PeerLink, type Member, type MemberState } from './peer-link.js'

const debug = debugFor('transport')

/** Time a new connection has to send its HELLO (or `handshakeTimeout`, if shorter): a real peer sends it at once. */
const HELLO_TIMEOUT_MS = 1000
/** Version refusals remembered as reported (each remote and version once); past this many, forgotten and reported anew. */
const MAX_VERSION_REPORTS = 1024
/** A version refusal already reported is reported again after this long (a new incident). */
const VERSION_REPORT_MS = 3_600_000

/** Totals over every connection this node has had. */
export interface TransportStats {
  framesIn: number
  framesOut: number
  bytesIn: number
  bytesOut: number
  /** Connections closed because of a bad frame or message. */
  protocolErrors: number
  /** Handshakes refused, by this node or by the peer. */
  refusedHandshakes: number
  /**
   * Of those, refused because the two nodes speak no protocol version in common (a peer two or more
   * versions apart, see docs/rolling-upgrades.md). A dialer's fallback to the previous version is
   * not counted: that is how a new node and an old one agree.
   */
  versionRefusals: number
  /** Times a peer's send queue overflowed and was dropped. */
  queueOverflows: number
  /** Connections closed at once because their host (or all strangers together) had every handshake slot. */
  rejectedConnections: number
  /** Frames not sent because they exceed what the peer accepts (a session too large for it). */
  oversizedFrames: number
}

/** Zero of everything: the counters of a node that has not replicated (or has no peers). */
export function emptyTransportStats(): TransportStats {
  return {
    framesIn: 0,
    framesOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    protocolErrors: 0,
    refusedHandshakes: 0,
    versionRefusals: 0,
    queueOverflows: 0,
    rejectedConnections: 0,
    oversizedFrames: 0,
  }
}

/** What the cluster hands up to the replicator; the replicator never sees a socket. */
export interface ClusterEvents {
  /** A replication message from a peer, with the connection to answer on. */
  message(message: Message, connection: Connection, peer: PeerLink): void
  /** An outbound connection is up: synchronise with that peer. */
  connected(peer: PeerLink, connection: Connection): void
  /** A peer whose queue overflowed has caught up: it needs a resync. */
  needsResync(peer: PeerLink, connection: Connection): void
  memberChanged(member: Member, previous: MemberState): void
  /** A connection failed in a way worth reporting (bad frames, refused handshakes). */
  connectionError(error: Error, remote: string): void
}

/**
 * The transport: the replication port, one outbound connection per peer, and the inbound
 * connections the peers open to this node. Each node sends its changes on its own outbound
 * connection, so changes from one node reach another in the order they were made. Peers may be
 * added and removed while it runs (`addPeer`, `removePeer`); only current peers get in.
 */
export class Cluster {
  readonly identity: LocalIdentity
  readonly stats: TransportStats = emptyTransportStats()
  readonly #options: ClusterConfig
  readonly #events: ClusterEvents
  readonly #links: PeerLink[] = []
  /** Links removed at run time: what still arrives on their connections is dropped. */
  readonly #removed = new WeakSet<PeerLink>()
  /** Goodbyes to removed peers still being sent: `stop()` waits for them too. */
  readonly #goodbyes = new Set<Promise<void>>()
  /** Inbound connections by peer node id: the connection each peer sends its changes on. */
  readonly #inbound = new Map<string, { connection: Connection; incarnation: string; lastHeardAt: number }>()
  /** Sockets admitted and still in their handshake (TLS or ours), closed at once by `stop()`. */
  readonly #pending = new Set<Socket>()
  /** Canonical addresses of the configured peers: they have handshake slots of their own. */
  readonly #peerHosts = new Set<string>()
  /** What the host names of peers resolved to (for their handshake slots). */
  readonly #resolvedHosts = new Map<string, string[]>()
  readonly #slots: HandshakeSlots
  readonly #limits: MessageLimits
  readonly #security: HandshakeSecurity & { keys: SecretKey[] }
  readonly #sockets: Sockets
  /** One report per remote host and window: a flood of bad frames does not flood the logs. */
  readonly #reports = new RateLimiter(10_000)
  /** Version refusals reported so far, by remote host and proposed versions: each is reported once. */
  /** When each (host, proposed versions) refusal was last reported. */
  readonly #versionReports = new Map<string, number>()
  /** And at most one per remote host and window: a stranger proposing version after version does not flood the logs. */
  readonly #versionReportsPerHost = new RateLimiter(10_000)
  /** With a secret and no certificates, a peer configured by IP must connect from that IP. */
  readonly #bindsAddress: boolean
  readonly #localAddress: string | undefined
  #server: Server | undefined
  #port = 0
  #stopping = false

  constructor(options: ClusterConfig, limits: MessageLimits, events: ClusterEvents) {
    this.#options = options
    this.#events = events
    this.#limits = limits
    this.identity = {
      cluster: options.clusterName,
      nodeId: options.nodeId,
      incarnation: randomBytes(8).toString('hex'),
      maxFrameBytes: options.maxFrameBytes,
    }
    const host = options.listen.host
    const localAddress = isIP(host) && host !== '0.0.0.0' && host !== '::' ? host : undefined
    this.#localAddress = localAddress
    // Keys are derived in start(), off the event loop; links only use them once started.
    this.#security = { keys: [], encrypt: options.secret.length > 0 && !options.tls, tls: options.tls?.identity }
    this.#bindsAddress = options.verifyPeerAddress && options.secret.length > 0 && !options.tls
    this.#sockets = socketsFor(options.tls, localAddress, options.handshakeTimeout)
    this.#slots = new HandshakeSlots(
      { shared: options.maxPendingHandshakes, perHost: options.maxPendingHandshakesPerHost },
      this.#peerHosts,
    )
    for (const address of options.peers) this.#links.push(this.#createLink(address))
    this.#reservePeerHosts()
  }

  /** The port actually bound (differs from the configured one with port 0 or autoBind). */
  get port(): number {
    return this.#port
  }

  get links(): readonly PeerLink[] {
    return this.#links
  }

  /** Derives the keys, opens the replication port, then starts dialing the peers. */
  async start(): Promise<void> {
    this.#resolvePeerHosts(this.#options.peers)
    this.#security.keys.push(...(await Promise.all(this.#options.secret.map(deriveSecretKey))))
    const { server, port } = await listen(this.#options.listen, this.#options.nodeId, () =>
      this.#sockets.createServer({
        admit: (socket) => this.#admit(socket),
        accepted: (socket, release) => this.#accept(socket, release),
        rejected: (error) => {
          // stop() ends the TLS handshakes still pending: not a refusal worth reporting.
          if (!this.#stopping)
            this.#reportFailure(new HandshakeRefusedError(HandshakeRefusals.AUTH, `TLS handshake failed: ${error.message}`), 'a TLS client')
        },
      }),
    )
    this.#server = server
    this.#port = port
    debug('%s listening on %s', this.identity.nodeId, formatAddress({ host: this.#options.listen.host, port }))
    for (const link of this.#links) link.start()
  }

  members(): Member[] {
    return this.#links.map((link) => link.member())
  }

  /** Peers this node can send to now (alive or suspect), with their connection. */
  reachable(): Array<{ link: PeerLink; connection: Connection }> {
    const reachable: Array<{ link: PeerLink; connection: Connection }> = []
    for (const link of this.#links) {
      const connection = link.outbound
      if (connection) reachable.push({ link, connection })
    }
    return reachable
  }

  /**
   * Sends a change to every reachable peer, or to those of `only` (node ids) that are reachable; with
   * an ack level, one promise per peer waiting for it.
   */
  broadcast(message: OutgoingData, level: AckLevel, only?: readonly string[]): Array<{ link: PeerLink; acked: Promise<void> }> {
    const waits: Array<{ link: PeerLink; acked: Promise<void> }> = []
    for (const { link, connection } of this.reachable()) {
      if (only && !only.includes(link.nodeId ?? '')) continue
      const acked = connection.sendData(message, level)
      if (acked) waits.push({ link, acked })
    }
    return waits
  }

  /**
   * Adds a peer while the cluster runs (or before it starts): dialed at once once started, and let
   * in from then on. Throws `InvalidArgumentError` for this node's own address or id, or one a peer
   * has already; `InvalidOptionError` for a non-loopback peer of a node with no secret, TLS or
   * `insecure`; `StoreClosedError` once stopping.
   */
  addPeer(address: PeerAddress): PeerLink {
    if (this.#stopping) throw new StoreClosedError('addPeer')
    const options = this.#options
    const label = formatAddress(address)
    if (address.nodeId === this.identity.nodeId || isOwnAddress(address, options.listen.host, this.#port || options.listen.port))
      throw new InvalidArgumentError(
        'peer',
        `a peer other than this node (${this.identity.nodeId} at ${formatAddress(options.listen)})`,
        label,
      )
    const key = addressKey(address)
    const taken = this.#links.find(
      (link) => addressKey(link.address) === key || (address.nodeId !== undefined && link.nodeId === address.nodeId),
    )
    if (taken) throw new InvalidArgumentError('peer', `a peer not already in members() (${taken.name} is at ${taken.label})`, label)
    if (options.secret.length === 0 && !options.tls && !options.insecure && !isLoopback(address.host)) {
      throw new InvalidOptionError(
        'secret',
        `a cluster secret (or \`tls\`, or \`insecure: true\`) before adding ${label}, which is not loopback: this node runs without one`,
        undefined,
      )
    }
    const link = this.#createLink(address)
    this.#links.push(link)
    this.#reservePeerHosts()
    this.#resolvePeerHosts([address])
    debug('peer %s added', label)
    if (this.#server) link.start()
    return link
  }

  /**
   * Forgets a peer, named by node id or by address as `members()` shows it: no more dialing, its
   * connections closed after a goodbye (`BYE` with `reason`), its handshakes refused as an unknown
   * node from now on. Returns what it was, and a promise of the goodbye (within `timeoutMs`).
   * Throws `InvalidArgumentError` for a name no peer has.
   */
  removePeer(name: string, reason: string, timeoutMs: number): { member: Member; goodbye: Promise<void> } {
    const index = this.#links.findIndex((link) => link.nodeId === name || link.label === name)
    const link = this.#links[index]
    if (!link) {
      const known = this.#links.map((each) => each.name).join(', ') || 'none'
      throw new InvalidArgumentError('peer to remove', `the node id or address of one of this node's peers (${known})`, name)
    }
    this.#links.splice(index, 1)
    this.#removed.add(link)
    if (!this.#links.some((each) => each.address.host === link.address.host)) this.#resolvedHosts.delete(link.address.host)
    this.#reservePeerHosts()
    const member = link.member()
    const bye: Message = { type: MessageType.BYE, reason }
    const inbound = link.nodeId === undefined ? undefined : this.#inbound.get(link.nodeId)
    if (inbound) this.#inbound.delete(link.nodeId!)
    debug('peer %s removed: %s', link.name, reason)
    const goodbye = Promise.all([link.stop(timeoutMs, bye), inbound?.connection.close(timeoutMs, bye)]).then(() => {
      this.#goodbyes.delete(goodbye)
    })
    this.#goodbyes.add(goodbye)
    return { member, goodbye }
  }

  /** Stops dialing, sends what is queued and a goodbye (within `timeoutMs`), closes every socket. */
  async stop(timeoutMs: number): Promise<void> {
    if (this.#stopping) return
    this.#stopping = true
    const bye: Message = { type: MessageType.BYE, reason: 'shutting down' }
    const server = this.#server
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve()
    for (const socket of this.#pending) socket.destroy()
    await Promise.all([...this.#links.map((link) => link.stop(timeoutMs, bye)), ...this.#goodbyes])
    for (const { connection } of this.#inbound.values()) connection.destroy()
    this.#inbound.clear()
    await closed
  }

  #createLink(address: PeerAddress): PeerLink {
    const options = this.#options
    return new PeerLink(address, {
      identity: this.identity,
      timing: { intervalMs: options.heartbeatInterval, suspectAfterMs: options.suspectTimeout, deadAfterMs: options.deadTimeout },
      connectTimeoutMs: options.connectTimeout,
      handshakeTimeoutMs: options.handshakeTimeout,
      retry: options.retry,
      localAddress: this.#localAddress,
      security: this.#security,
      dial: (peerHost, peerPort) => this.#sockets.dial(peerHost, peerPort),
      wrap: (socket, label) => this.#wrap(socket, label),
      handlers: (link) => this.#outboundHandlers(link),
      stateChanged: (link, previous) => this.#events.memberChanged(link.member(), previous),
      connected: (link, connection) => this.#events.connected(link, connection),
      identified: (link, nodeId) => {
        if (nodeId === this.identity.nodeId || this.#links.some((other) => other !== link && other.nodeId === nodeId)) return false
        debug('peer %s is %s', link.label, nodeId)
        return true
      },
      dialFailed: (link, error) =>
        this.#reportFailure(
          isTlsRefusal(error) ? new HandshakeRefusedError(HandshakeRefusals.AUTH, `TLS: ${error.message}`) : error,
          link.label,
        ),
    })
  }

  #wrap(socket: Socket, label: string): Connection {
    return new Connection(
      socket,
      {
        maxFrameBytes: this.#options.maxFrameBytes,
        maxQueueBytes: this.#options.maxQueueBytes,
        limits: this.#limits,
        label,
        idleTimeoutMs: this.#options.deadTimeout,
        ackTimeoutMs: this.#options.ackTimeout,
        stats: this.stats,
      },
      { message: () => {}, closed: () => {} },
    )
  }

  /**
   * A slot for a new connection, before anything is spent on it (TLS included): each host gets at
   * most `maxPendingHandshakesPerHost`, strangers together `maxPendingHandshakes`, and configured
   * peers' hosts have slots of their own, so neither one address nor a crowd keeps the peers out.
   */
  #admit(socket: Socket): (() => void) | undefined {
    if (this.#stopping) return undefined
    const release = this.#slots.take(canonicalHost(socket.remoteAddress ?? ''))
    if (!release) {
      this.stats.rejectedConnections += 1
      return undefined
    }
    this.#pending.add(socket)
    return () => {
      this.#pending.delete(socket)
      release()
    }
  }

  #accept(socket: Socket, release: () => void): void {
    if (this.#stopping) {
      socket.destroy()
      return
    }
    const connection = this.#wrap(socket, `${this.identity.nodeId}<-${socket.remoteAddress}:${socket.remotePort}`)
    acceptHandshake(connection, {
      local: this.identity,
      security: this.#security,
      timeoutMs: this.#options.handshakeTimeout,
      helloTimeoutMs: Math.min(this.#options.handshakeTimeout, HELLO_TIMEOUT_MS),
      decide: (hello) => this.#decide(hello, canonicalHost(socket.remoteAddress ?? '')),
      next: (hello) => this.#inboundHandlers(hello, connection),
    })
      .catch((error: Error) => this.#reportFailure(error, connection.remoteAddress))
      .finally(release)
  }

  /** Configured peers given by name get their reserved slots once the name resolves; failures only cost that. */
  #resolvePeerHosts(peers: readonly PeerAddress[]): void {
    for (const { host } of peers) {
      if (isIP(host)) continue
      lookup(host, { all: true }).then(
        (addresses) => {
          // Removed while the name was being resolved: nothing to reserve for it any more.
          if (!this.#links.some((link) => link.address.host === host)) return
          this.#resolvedHosts.set(
            host,
            addresses.map(({ address }) => canonicalHost(address)),
          )
          this.#reservePeerHosts()
        },
        (error: Error) => debug('cannot resolve peer %s: %s', host, error.message),
      )
    }
  }

  /** The peer host names whose addresses are known (for tests: pruned when their last peer is removed). */
  get resolvedHostNames(): string[] {
    return [...this.#resolvedHosts.keys()]
  }

  /** The hosts with handshake slots of their own: those of the current peers. */
  #reservePeerHosts(): void {
    this.#peerHosts.clear()
    for (const { address } of this.#links) {
      if (isIP(address.host)) this.#peerHosts.add(canonicalHost(address.host))
      else for (const host of this.#resolvedHosts.get(address.host) ?? []) this.#peerHosts.add(host)
    }
  }

  /**
   * After the dialer proved the secret (or its certificate): only configured peers get in, each from
   * its configured address when the secret is all that vouches for it, and never in place of a
   * connection of that peer that is still alive.
   */
  #decide(hello: Hello, from: string): Refusal | undefined {
    if (this.#stopping) return { reason: HandshakeRefusals.SHUTTING_DOWN, detail: 'this node is shutting down' }
    const link = this.#links.find((each) => each.nodeId === hello.nodeId)
    if (!link) return { reason: HandshakeRefusals.UNKNOWN_NODE, detail: `"${hello.nodeId}" is not one of this node's peers` }
    const configured = link.address.host
    if (this.#bindsAddress && isIP(configured) && canonicalHost(configured) !== from) {
      // The secret proves membership only: any member could claim any id. The address is what binds it.
      return {
        reason: HandshakeRefusals.AUTH,
        detail:
          `"${hello.nodeId}" is configured at ${configured} but connected from ${from}; a peer must connect from its configured address ` +
          '(it dials from its listen address), or set `verifyPeerAddress: false` if peers reach each other through NAT',
      }
    }
    const existing = this.#inbound.get(hello.nodeId)
    const heardAgo = existing ? Date.now() - existing.lastHeardAt : Infinity
    if (existing && !existing.connection.closing && heardAgo < this.#options.suspectTimeout) {
      // Whatever its incarnation: a restarted peer's old connection is closed or quiet, a live one is neither.
      return { reason: HandshakeRefusals.DUPLICATE, detail: `"${hello.nodeId}" is already connected, heard from ${heardAgo} ms ago` }
    }
    return undefined
  }

  #inboundHandlers(hello: Hello, connection: Connection): ConnectionHandlers {
    const link = this.#links.find((each) => each.nodeId === hello.nodeId)
    if (!link) {
      // Removed between the decision and now.
      connection.destroy()
      return { message: () => {}, closed: () => {} }
    }
    const previous = this.#inbound.get(hello.nodeId)
    const record = { connection, incarnation: hello.incarnation, lastHeardAt: Date.now() }
    this.#inbound.set(hello.nodeId, record)
    previous?.connection.destroy()
    debug('%s connected to this node', hello.nodeId)
    link.peerIsBack()
    return {
      message: (message) => {
        record.lastHeardAt = Date.now()
        if (message.type === MessageType.PING || message.type === MessageType.PONG || this.#removed.has(link)) return
        if (message.type === MessageType.BYE) link.peerLeft()
        else this.#events.message(message, connection, link)
      },
      closed: (error) => {
        if (this.#inbound.get(hello.nodeId) === record) this.#inbound.delete(hello.nodeId)
        if (error) this.#reportFailure(error, connection.label)
      },
    }
  }

  #outboundHandlers(link: PeerLink): ConnectionHandlers {
    return {
      message: (message, connection) => {
        link.heard()
        if (message.type === MessageType.PING || message.type === MessageType.PONG || this.#removed.has(link)) return
        if (message.type === MessageType.BYE) link.peerLeft()
        else this.#events.message(message, connection, link)
      },
      closed: (error, connection) => {
        if (error) this.#reportFailure(error, connection.label)
        link.outboundClosed(connection, error)
      },
      overflow: () => {
        this.stats.queueOverflows += 1
      },
      drained: (connection) => this.#events.needsResync(link, connection),
    }
  }

  #reportFailure(error: Error, remote: string): void {
    if (error instanceof HandshakeRefusedError) {
      this.stats.refusedHandshakes += 1
      if (error.reason === HandshakeRefusals.VERSION) {
        // A peer one version ahead proposes its newest first and falls back to ours: the normal
        // course of a rolling upgrade, not a problem to report.
        if (error.versions?.proposed.every((version) => version === PROTOCOL_VERSION + 1)) {
          debug('%s proposed protocol %d, one ahead of this node: it falls back to %d', remote, PROTOCOL_VERSION + 1, PROTOCOL_VERSION)
          return
        }
        return this.#reportVersionRefusal(error, remote)
      }
    } else if (error instanceof ProtocolError || error instanceof MalformedDataError) this.stats.protocolErrors += 1
    else return // resets, timeouts and closes are membership matters, not errors
    const host = remote.replace(/:\d+$/, '')
    const suppressed = this.#reports.take(host)
    if (suppressed === false) return
    debug('%s: %s%s', remote, error.message, suppressed > 0 ? ` (${suppressed} more from ${host} not reported)` : '')
    this.#events.connectionError(error, remote)
  }

  /**
   * Two nodes with no protocol version in common (see docs/rolling-upgrades.md): counted every time,
   * reported once per remote host and proposed versions however often the peer retries (again after
   * an hour), and at most once per host every 10 s (another version within that is reported when it
   * comes again).
   */
  #reportVersionRefusal(error: HandshakeRefusedError, remote: string): void {
    this.stats.versionRefusals += 1
    const host = canonicalHost(remote.replace(/:\d+$/, ''))
    const key = `${host}|${error.versions?.proposed.join(',') ?? ''}`
    const now = Date.now()
    const last = this.#versionReports.get(key)
    if ((last !== undefined && now - last < VERSION_REPORT_MS) || this.#versionReportsPerHost.take(host) === false) return
    if (this.#versionReports.size >= MAX_VERSION_REPORTS) this.#versionReports.clear()
    this.#versionReports.set(key, now)
    debug('%s: %s', remote, error.message)
    this.#events.connectionError(error, remote)
  }
}

/** A peer's address as compared with others': canonical host and port. */
function addressKey(address: { host: string; port: number }): string {
  return `${canonicalHost(address.host)}|${address.port}`
}

/** Certificate and TLS protocol failures (as opposed to a peer that is simply down). */
function isTlsRefusal(error: Error): boolean {
  const code = (error as { code?: string }).code ?? ''
  return /^(ERR_SSL_|ERR_TLS_|CERT_|UNABLE_TO_|SELF_SIGNED|DEPTH_ZERO)/.test(code)
}

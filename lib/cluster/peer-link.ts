import type { Socket } from 'node:net'
import { debugFor } from '../base/debug.js'
import { HandshakeRefusals, HandshakeRefusedError } from '../base/errors.js'
import { PROTOCOL_VERSIONS } from '../protocol/frame.js'
import { formatAddress, type PeerAddress } from './address.js'
import type { RetryPolicy } from './backoff.js'
import type { Connection, ConnectionHandlers } from './connection.js'
import { dialHandshake, type HandshakeSecurity, type LocalIdentity } from './handshake.js'
import { Heartbeat, type HeartbeatTiming } from './heartbeat.js'
import { MessageType, type Message } from '../protocol/messages.js'

const debug = debugFor('membership')

/**
 * - `connecting`: not reached yet since this node started;
 * - `alive`: connected and answering heartbeats;
 * - `suspect`: silent for `suspectTimeout`, or its connection dropped; being verified;
 * - `dead`: verification failed or silent for `deadTimeout`; reconnecting with backoff.
 */
export type MemberState = 'connecting' | 'alive' | 'suspect' | 'dead'

/** A peer as `PeerStore.members()` reports it. */
export interface Member {
  /** The peer's node id; null until the first handshake when the configuration does not name it. */
  readonly nodeId: string | null
  /** Where this node dials it. */
  readonly address: string
  readonly state: MemberState
  /** When it entered this state. */
  readonly since: Date
  /** Bytes waiting to be sent to it. */
  readonly queuedBytes: number
  /** Completed connections since this node started (1 after the first). */
  readonly connections: number
  /** The protocol version its last connection agreed on (see docs/rolling-upgrades.md); null before the first. */
  readonly protocol: number | null
}

export interface PeerLinkContext {
  readonly identity: LocalIdentity
  readonly timing: HeartbeatTiming
  readonly connectTimeoutMs: number
  readonly handshakeTimeoutMs: number
  readonly retry: RetryPolicy
  /** Local address to dial from, so loopback aliases (127.0.0.11) show up as themselves. */
  readonly localAddress: string | undefined
  readonly security: HandshakeSecurity
  /** Opens a connection (plain TCP, or TLS); `connected` is the event that says it is ready. */
  dial(host: string, port: number): { socket: Socket; connected: 'connect' | 'secureConnect' }
  wrap(socket: Socket, label: string): Connection
  /** Handlers for the messages of an established outbound connection. */
  handlers(link: PeerLink): ConnectionHandlers
  stateChanged(link: PeerLink, previous: MemberState): void
  /** An outbound connection completed its handshake: time to synchronise with the peer. */
  connected(link: PeerLink, connection: Connection): void
  /** A peer configured without an id proved its id in a handshake; false if another peer already has it. */
  identified(link: PeerLink, nodeId: string): boolean
  /** A connection attempt failed; refusals are worth reporting, refused connections are not. */
  dialFailed(link: PeerLink, error: Error): void
}

/**
 * One configured peer: the connection this node sends on, its heartbeat, its membership state and
 * reconnects. State changes go through `#setState` only, which logs and reports them.
 */
export class PeerLink {
  readonly address: PeerAddress
  readonly label: string
  #nodeId: string | undefined
  #state: MemberState = 'connecting'
  #since = new Date()
  #outbound: Connection | undefined
  #establishedAt = 0
  #connections = 0
  #protocol: number | null = null
  #attempt = 0
  #retryTimer: NodeJS.Timeout | undefined
  #dialing = false
  #verifying = false
  #stopped = false
  readonly #context: PeerLinkContext
  readonly #heartbeat: Heartbeat

  constructor(address: PeerAddress, context: PeerLinkContext) {
    this.address = address
    this.label = formatAddress(address)
    this.#nodeId = address.nodeId
    this.#context = context
    this.#heartbeat = new Heartbeat(context.timing, {
      ping: (seq) => this.#outbound?.send({ type: MessageType.PING, seq }),
      suspect: (silentFor) => {
        debug('%s silent for %d ms', this.#name, silentFor)
        this.#setState('suspect')
        this.#verify()
      },
      recovered: () => this.#setState('alive'),
      dead: (silentFor) => {
        debug('%s silent for %d ms: dead', this.#name, silentFor)
        this.#lost()
      },
    })
  }

  get nodeId(): string | undefined {
    return this.#nodeId
  }

  /** How events and errors name this peer: its node id, or its address while the id is unknown. */
  get name(): string {
    return this.#nodeId ?? this.label
  }

  get state(): MemberState {
    return this.#state
  }

  /** The connection to send on, while there is one (alive or suspect). */
  get outbound(): Connection | undefined {
    return this.#outbound && !this.#outbound.closing ? this.#outbound : undefined
  }

  member(): Member {
    return {
      nodeId: this.#nodeId ?? null,
      address: this.label,
      state: this.#state,
      since: this.#since,
      queuedBytes: this.#outbound?.queuedBytes ?? 0,
      connections: this.#connections,
      protocol: this.#protocol,
    }
  }

  start(): void {
    this.#dial()
  }

  /** Any frame on the outbound connection is a sign of life. */
  heard(): void {
    this.#heartbeat.heard()
  }

  /**
   * The peer connected to this node: it is up. If this node had given it up, dial it now instead of
   * waiting out the backoff.
   */
  peerIsBack(): void {
    if (this.#stopped || this.#outbound || this.#dialing) return
    clearTimeout(this.#retryTimer)
    this.#retryTimer = undefined
    this.#attempt = 0
    this.#dial()
  }

  /** The peer said goodbye: it is shutting down, no verification needed. */
  peerLeft(): void {
    if (this.#stopped) return
    this.#lost()
  }

  /** Stops for good: no reconnect after this. Sends what is queued first, within `timeoutMs`. */
  async stop(timeoutMs: number, bye: Message): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#retryTimer)
    this.#heartbeat.stop()
    await this.#outbound?.close(timeoutMs, bye)
  }

  get #name(): string {
    return this.#nodeId ? `${this.#nodeId} (${this.label})` : this.label
  }

  /**
   * Dials the peer and proposes `protocol`. A peer that refuses it as a version it does not speak
   * is dialed again at once with the next lower version this node speaks: a peer one version
   * behind agrees on its own. Refused at every version, it is a failed attempt like any refusal.
   */
  #dial(protocol = PROTOCOL_VERSIONS[0]!): void {
    if (this.#stopped || this.#dialing) return
    this.#dialing = true
    const { socket, connected } = this.#context.dial(this.address.host, this.address.port)
    const connectTimer = setTimeout(
      () => socket.destroy(new Error(`connect timed out after ${this.#context.connectTimeoutMs} ms`)),
      this.#context.connectTimeoutMs,
    )
    const failEarly = (error: Error) => {
      clearTimeout(connectTimer)
      this.#dialFailed(error)
    }
    socket.once('error', failEarly)
    socket.once(connected, () => {
      clearTimeout(connectTimer)
      socket.off('error', failEarly)
      const connection = this.#context.wrap(socket, `${this.#context.identity.nodeId}->${this.#name}`)
      dialHandshake(connection, {
        local: this.#context.identity,
        security: this.#context.security,
        expectedNodeId: this.#nodeId,
        timeoutMs: this.#context.handshakeTimeoutMs,
        protocol,
        // A peer configured by address learns its id here, even if the peer then refuses this node.
        verified: (welcome) => this.#identify(welcome.nodeId),
        next: () => {
          this.#established(connection)
          return this.#context.handlers(this)
        },
      }).catch((error: Error) => {
        if (!(error instanceof HandshakeRefusedError) || error.reason !== HandshakeRefusals.VERSION) return this.#dialFailed(error)
        const lower = PROTOCOL_VERSIONS[PROTOCOL_VERSIONS.indexOf(protocol) + 1]
        if (lower === undefined) {
          const tried = PROTOCOL_VERSIONS.join(' and ')
          return this.#dialFailed(
            new HandshakeRefusedError(HandshakeRefusals.VERSION, `${this.#name} speaks none of protocols ${tried}; ${error.message}`, {
              proposed: PROTOCOL_VERSIONS,
              spoken: [],
            }),
          )
        }
        debug('%s does not speak protocol %d: proposing %d', this.#name, protocol, lower)
        this.#dialing = false
        this.#dial(lower)
      })
    })
  }

  #established(connection: Connection): void {
    this.#dialing = false
    if (this.#stopped) {
      connection.destroy()
      return
    }
    this.#outbound = connection
    this.#establishedAt = Date.now()
    this.#connections += 1
    this.#protocol = connection.protocol ?? null
    this.#heartbeat.start()
    debug('%s: connected', this.#name)
    // Start the synchronisation before announcing the peer, so whoever hears "alive" sees it running.
    this.#context.connected(this, connection)
    this.#setState('alive')
  }

  /** Called by the cluster when the outbound connection closed, for whatever reason. */
  outboundClosed(connection: Connection, error: Error | undefined): void {
    if (connection !== this.#outbound) return
    this.#outbound = undefined
    this.#heartbeat.stop()
    if (this.#stopped) return
    debug('%s: connection closed%s', this.#name, error ? `: ${error.message}` : '')
    if (Date.now() - this.#establishedAt < this.#context.timing.suspectAfterMs) {
      // It did not last: treat it as a failed attempt, so a peer that keeps dropping us gets backoff.
      this.#lost()
      return
    }
    // Verify at once by reconnecting: a dropped connection to a live peer is back in one round trip.
    this.#attempt = 0
    this.#setState('suspect')
    this.#dial()
  }

  #identify(nodeId: string): void {
    if (this.#nodeId !== undefined || !this.#context.identified(this, nodeId)) return
    this.#nodeId = nodeId
  }

  #dialFailed(error: Error): void {
    this.#dialing = false
    if (this.#stopped) return
    debug('%s: cannot connect: %s', this.#name, error.message)
    this.#context.dialFailed(this, error)
    this.#lost()
  }

  /** The peer is gone: mark it dead and reconnect with backoff. */
  #lost(): void {
    this.#heartbeat.stop()
    const outbound = this.#outbound
    this.#outbound = undefined
    outbound?.destroy()
    this.#setState('dead')
    this.#scheduleRetry()
  }

  #scheduleRetry(): void {
    if (this.#stopped || this.#retryTimer || this.#dialing) return
    this.#attempt += 1
    const delay = this.#context.retry(this.#attempt)
    if (delay === null) {
      debug('%s: retry policy gave up after %d attempts', this.#name, this.#attempt - 1)
      return
    }
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined
      this.#dial()
    }, delay)
  }

  /** TcpFailureDetector: a suspect that still accepts a fresh connection stays suspect; else it is dead. */
  #verify(): void {
    if (this.#verifying) return
    this.#verifying = true
    // The same kind of connection as the real one (TLS included), so the peer sees a normal handshake, not a reset.
    const { socket: probe, connected } = this.#context.dial(this.address.host, this.address.port)
    const timer = setTimeout(() => probe.destroy(new Error('verification timed out')), this.#context.connectTimeoutMs)
    const done = (reachable: boolean, reason?: string) => {
      clearTimeout(timer)
      probe.destroy()
      this.#verifying = false
      if (this.#stopped || this.#state !== 'suspect') return
      debug('%s: verification %s%s', this.#name, reachable ? 'reached it' : 'failed', reason ? `: ${reason}` : '')
      if (!reachable) this.#lost()
    }
    probe.once(connected, () => done(true))
    probe.once('error', (error) => done(false, error.message))
  }

  #setState(state: MemberState): void {
    if (state === this.#state) return
    const previous = this.#state
    this.#state = state
    this.#since = new Date()
    debug('%s: %s -> %s', this.#name, previous, state)
    this.#context.stateChanged(this, previous)
  }
}

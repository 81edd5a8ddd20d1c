import { debugFor } from '../base/debug.js'
import type { PeerAddress } from '../cluster/address.js'
import { ConnectionClosedError, ProtocolError, ReplicationTimeoutError } from '../base/errors.js'
import { Cluster } from '../cluster/cluster.js'
import type { ClusterConfig } from '../cluster/cluster-options.js'
import type { Connection, OutgoingData } from '../cluster/connection.js'
import type { Member, PeerLink } from '../cluster/peer-link.js'
import { applyFields } from '../codec/field-delta.js'
import type { SessionLimits } from '../codec/session-codec.js'
import { MAX_BATCH } from '../protocol/limits.js'
import {
  AckLevel,
  isDataMessage,
  MessageType,
  type ExpiryChange,
  type Message,
  type MessageLimits,
  type Upsert,
} from '../protocol/messages.js'
import type { Entry, LocalChange, RemoteResult, SessionTable } from '../table/session-table.js'
import { routeOf } from '../table/session-id.js'
import { compareVersions, sameVersion, versionOf, type Version } from '../table/version.js'
import { ExpiryBatcher } from './expiry-batcher.js'
import { BackupPlacement } from './placement.js'
import type { BackupStats, Replication, ReplicatedChange, ReplicationEvents, ReplicationStats } from './replication.js'
import type { ReplicationConfig } from './replication-options.js'
import { StateSync } from './state-sync.js'

const debug = debugFor('replication')

const ACK_LEVEL = { async: AckLevel.NONE, ack: AckLevel.RECEIVED, sync: AckLevel.APPLIED } as const

/** The messages that change the table here: each one received is a batch applied, timed as `apply`. */
const APPLIED: ReadonlySet<number> = new Set<number>([
  MessageType.UPSERT,
  MessageType.DESTROY,
  MessageType.EXPIRY,
  MessageType.RENAME,
  MessageType.FETCH_REPLY,
])

/** Membership changes that come together (a node and its connections) lead to one rebalance. */
const REBALANCE_DELAY_MS = 50
/** Entries a trim looks at before it lets the event loop breathe. */
const TRIM_SLICE = 1000
/** A trim that leaves copies unconfirmed comes back later and later, up to this (ms). */
const MAX_TRIM_DELAY_MS = 5 * 60_000

/** A lag above this is a clock that is off, not a lag: no sample is taken. */
const MAX_LAG_MS = 3_600_000

/**
 * Replication between peers, in one of two placements: every node holds every session (Tomcat's
 * DeltaManager), or each session is held by the node that wrote it and `k` backups (`placement.ts`,
 * Tomcat's BackupManager). Owns the cluster transport; turns local changes into messages for the
 * peers that hold the session, and messages from the peers into changes of the local table. Knows
 * sessions and versions; knows sockets only as `Connection`s to answer on.
 *
 * With backups, changes of a session go to its holders only; destroys, renames and clears still go
 * to every peer (small, and a tombstone everywhere is what keeps a logout final whoever holds what).
 * When the live members change, each node offers its peers, by digest, what they now hold (they
 * fetch what they lack, in bounded chunks), and once the membership has been quiet for `deadTimeout`
 * it lets go of the copies it no longer holds.
 */
export class PeerReplication implements Replication {
  readonly #table: SessionTable
  readonly #cluster: Cluster
  readonly #options: ReplicationConfig & Pick<ClusterConfig, 'peers' | 'ackTimeout' | 'maxQueueBytes' | 'nodeId' | 'deadTimeout'>
  readonly #limits: MessageLimits
  readonly #events: ReplicationEvents
  readonly #expiries: ExpiryBatcher
  readonly #sync: StateSync
  /** Backups mode: who holds what. Undefined when every peer holds every session. */
  readonly #placement: BackupPlacement | undefined
  #rebalanceTimer: NodeJS.Timeout | undefined
  #trimTimer: NodeJS.Timeout | undefined
  /** A trim pass is running; another is due after it. */
  #trimming = false
  #trimAgain = false
  /** Delay before the next trim: `deadTimeout`, doubling while copies stay unconfirmed. */
  #trimDelay = 0
  /** Moves on with every change of the live members: a trim pass that saw an older one lets nothing go. */
  #generation = 0
  /**
   * Backups mode: when each copy fetched on a miss was asked for (a fetch without a result is
   * forgotten at once). A trim leaves these alone for `deadTimeout`: the request that fetched one is
   * about to serve it, and its write makes this node a holder.
   */
  readonly #fetchedAt = new Map<string, number>()
  readonly #backupStats: BackupStats = { trims: 0, released: 0 }
  #stopped = false
  /**
   * The epoch each peer sends its changes in, per connection it sends them on: told by the
   * SYNC_REQUEST that opens the connection, moved by every CLEAR. Changes from an epoch older than
   * this node's were cleared away and are ignored.
   */
  readonly #senderEpochs = new WeakMap<Connection, Version>()
  /** The last sender timestamp measured per connection: changes stamped in the same ms are one batch, one lag sample. */
  readonly #lastSentAt = new WeakMap<Connection, number>()
  /** A first transfer has finished, or the time allowed for one has passed. */
  #transferred: boolean
  /** Resolves when the first outbound connection to a peer is up. */
  readonly #firstConnection: Promise<void>
  #connectedOnce!: () => void
  #transferDeadline: NodeJS.Timeout | undefined

  constructor(
    table: SessionTable,
    config: { cluster: ClusterConfig; replication: ReplicationConfig; session: SessionLimits },
    events: ReplicationEvents,
  ) {
    const options = {
      ...config.replication,
      peers: config.cluster.peers,
      ackTimeout: config.cluster.ackTimeout,
      maxQueueBytes: config.cluster.maxQueueBytes,
      nodeId: config.cluster.nodeId,
      deadTimeout: config.cluster.deadTimeout,
    }
    this.#table = table
    this.#options = options
    this.#limits = { session: config.session, maxBatch: MAX_BATCH }
    this.#events = events
    const mode = options.replication
    this.#placement = mode === 'all' ? undefined : new BackupPlacement(options.nodeId, mode.backups)
    this.#cluster = new Cluster(config.cluster, this.#limits, {
      message: (message, connection, peer) => this.#received(message, connection, peer),
      connected: (peer, connection) => this.#connected(peer, connection),
      needsResync: (peer, connection) => this.#sync.push(connection, peer),
      memberChanged: (member, previous) => {
        this.#membershipChanged()
        events.memberChanged(member, previous)
      },
      connectionError: (error, remote) => events.peerError(error, remote),
    })
    this.#expiries = new ExpiryBatcher(options.touchFlushInterval, options.syncChunkSize, (changes) => this.#sendExpiries(changes))
    this.#sync = new StateSync(
      table,
      {
        chunkSize: options.syncChunkSize,
        // Small replies and a short queue keep a transfer from starving everything else on both
        // nodes: a session wanted by a request now does not wait behind megabytes of bulk.
        replyBytes: 64 * 1024,
        highWaterBytes: Math.min(options.maxQueueBytes / 4, 256 * 1024),
        requestTimeoutMs: options.syncRequestTimeout,
        maxSessionBytes: config.session.maxSessionBytes,
      },
      {
        admit: (epoch) => this.#admit(epoch),
        holdsHere: this.#placement && ((sid, origin) => this.#placement!.holdsHere(sid, origin)),
        applied: (sid, destroyed, from) => this.#notify(sid, destroyed ? 'destroy' : 'upsert', from),
        progress: (peer, progress) => this.#events.syncProgress?.({ peer: peer.name, ...progress }),
        completed: (peer, fetched, durationMs) => {
          debug('sync with %s done: %d entries in %d ms', peer.name, fetched, durationMs)
          this.#endInitialSync()
          this.#events.synced(peer.name, fetched, durationMs)
          this.#events.measured?.({ kind: 'transfer', peer: peer.name, seconds: durationMs / 1000, sessions: fetched })
        },
      },
    )
    this.#firstConnection = new Promise((resolve) => (this.#connectedOnce = resolve))
    this.#transferred = (options.peers.length === 0 && !config.cluster.discovery) || options.stateTransferTimeout === 0
    if (!this.#transferred) this.#transferDeadline = setTimeout(() => this.#endInitialSync(), options.stateTransferTimeout)
  }

  /** Opens the replication port and starts reaching the peers. */
  start(): Promise<void> {
    return this.#cluster.start()
  }

  get port(): number {
    return this.#cluster.port
  }

  members(): Member[] {
    return this.#cluster.members()
  }

  stats(): Partial<ReplicationStats> {
    return { ...this.#cluster.stats, ...(this.#placement && { backups: { ...this.#backupStats } }) }
  }

  /** Sends pending expiry changes, then queued changes to live peers (within `closeTimeout`), says goodbye. */
  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#rebalanceTimer)
    clearTimeout(this.#trimTimer)
    this.#expiries.flush()
    await this.#cluster.stop(this.#options.closeTimeout)
    this.#expiries.stop()
    clearTimeout(this.#transferDeadline)
  }

  /** Adds a peer at run time: dialed at once, it gets state transfer as at start (see `#connected`). */
  addPeer(address: PeerAddress): Member {
    const link = this.#cluster.addPeer(address)
    this.#membershipChanged()
    return link.member()
  }

  /** Forgets a peer after a goodbye (within `closeTimeout`); its handshakes are refused from now on. */
  removePeer(name: string): { member: Member; goodbye: Promise<void> } {
    const removed = this.#cluster.removePeer(name, `removed from the cluster by ${this.#options.nodeId}`, this.#options.closeTimeout)
    this.#membershipChanged()
    return removed
  }

  /**
   * True while this node may lack sessions its peers have: it has not finished a first transfer,
   * and one is running or a peer is still being reached for the first time.
   */
  get syncing(): boolean {
    if (this.#transferred) return false
    return this.#sync.running || this.#cluster.links.some((link) => link.state === 'connecting')
  }

  /**
   * Sends a local change to every reachable peer. Resolves according to `sendMode`: at once, or when
   * every peer that was reachable has received (ack) or applied (sync) it.
   */
  publish(change: LocalChange): Promise<void> | undefined {
    if (change.kind === 'expiry') {
      const { entry } = change
      this.#expiries.add({ sid: change.sid, version: versionOf(entry), expiresAt: entry.expiresAt, cookieExpires: entry.cookieExpires })
      return undefined
    }
    this.#expiries.drop(change.sid)
    const peers = change.kind === 'upsert' ? this.#placement?.peersFor(change.sid, change.base.origin) : undefined
    return this.#broadcast(this.#toMessage(change), peers)
  }

  /** Tells the peers that this node cleared everything and started `epoch` (see `SessionTable.clear`). */
  publishClear(epoch: Version): Promise<void> | undefined {
    return this.#broadcast({ type: MessageType.CLEAR, epoch })
  }

  /**
   * A session this node does not have may exist on a peer: with backups, on the peers that would
   * hold it and the node its id is routed to (one round trip, done at the first answer from a
   * holder of the newest version received);
   * with every peer holding everything, only during the initial transfer, on every reachable peer.
   * Waits at most `fetchTimeout`.
   */
  async fetchMissing(sid: string): Promise<void> {
    if (!this.#placement && !this.syncing) return
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.#options.fetchTimeout)))
    // Right after start no peer may be connected yet: wait for the first connection, within the same time.
    if (this.#cluster.reachable().length === 0 && this.syncing) await Promise.race([this.#firstConnection, deadline])
    const placement = this.#placement
    const candidates = placement?.candidates(sid)
    // The node the id is routed to wrote it last, unless someone took it over: ask it too.
    const route = routeOf(sid)
    if (candidates && route !== undefined && route !== this.#options.nodeId && !candidates.includes(route)) candidates.push(route)
    if (placement) this.#fetchedAt.set(sid, Date.now())
    let found!: () => void
    // With backups, an answer from a holder of the newest version here is enough: another peer may
    // be silent (an owner cut off). A copy from a node that no longer holds it may be stale: wait on.
    const first = new Promise<void>((resolve) => (found = resolve))
    // Its own small fetch, not a share of a bulk one: that could arrive long after the timeout.
    const fetches = this.#cluster
      .reachable()
      .filter(({ link }) => !candidates || candidates.includes(link.nodeId ?? ''))
      .map(({ link, connection }) =>
        this.#sync.refetch(connection, link, [sid]).then(() => {
          const entry = this.#table.peek(sid)
          if (placement && entry?.blob && placement.holders(sid, entry.origin).includes(link.nodeId ?? '')) found()
        }),
      )
    if (fetches.length > 0) await Promise.race([Promise.all(fetches), first, deadline])
    clearTimeout(timer)
    if (!placement || this.#stopped) return
    if (!this.#table.peek(sid)?.blob) this.#fetchedAt.delete(sid)
    // A copy fetched for a request is this node's until it writes it (then it holds it) or a trim.
    else this.#scheduleTrim()
  }

  /** With backups, the holders of `sid` last written by `origin`; undefined in all-to-all mode. */
  holders(sid: string, origin: string): readonly string[] | undefined {
    return this.#placement?.holders(sid, origin)
  }

  /**
   * Whether a copy here may be served as it is: with backups, only one this node holds is kept up
   * to date; any other (fetched for a request, or left from before a change of writer or members)
   * is refreshed from the holders first.
   */
  isCurrent(sid: string, origin: string): boolean {
    return this.#placement?.holdsHere(sid, origin) ?? true
  }

  /** Every replication message from the cluster; the ones that change the table are timed (`apply`). */
  #received(message: Message, connection: Connection, peer: PeerLink): void {
    const events = this.#events
    if (!events.measured || !APPLIED.has(message.type)) return this.#handle(message, connection, peer)
    const started = performance.now()
    this.#handle(message, connection, peer)
    events.measured({ kind: 'apply', peer: peer.name, seconds: (performance.now() - started) / 1000 })
  }

  /** Called for every replication message. Throws `ProtocolError` on a misplaced one. */
  #handle(message: Message, connection: Connection, peer: PeerLink): void {
    const from = peer.name
    const now = Date.now()
    if (isDataMessage(message) && message.sentAt !== null) this.#measureLag(message.sentAt, connection, from, now)
    switch (message.type) {
      case MessageType.UPSERT:
        if (this.#senderIsCurrent(connection)) this.#applyUpsert(message, connection, peer, now)
        return
      case MessageType.DESTROY: {
        if (!this.#senderIsCurrent(connection)) return
        const killed: string[] = []
        const result = this.#table.applyDestroy(message, now, killed)
        if (result === 'applied') this.#notify(message.sid, 'destroy', from)
        for (const sid of killed) this.#notify(sid, 'destroy', from)
        return
      }
      case MessageType.EXPIRY:
        if (!this.#senderIsCurrent(connection)) return
        for (const change of message.changes) {
          if (this.#table.applyExpiry(change, now) === 'applied') {
            this.#notify(change.sid, 'expiry', from)
          }
        }
        return
      case MessageType.RENAME: {
        if (!this.#senderIsCurrent(connection)) return
        const killed: string[] = []
        const result: RemoteResult = this.#table.applyRename(message, now, killed)
        if (result !== 'stale') this.#notify(message.from, 'destroy', from)
        if (result === 'applied') this.#notify(message.to, 'upsert', from)
        else if (result === 'needs-target' && (this.#placement?.holdsHere(message.to, message.version.origin) ?? true))
          void this.#sync.refetch(connection, peer, [message.to])
        for (const sid of killed) this.#notify(sid, 'destroy', from)
        return
      }
      case MessageType.CLEAR:
        this.#senderEpochs.set(connection, message.epoch)
        this.#admit(message.epoch, from)
        return
      case MessageType.SYNC_REQUEST:
        this.#senderEpochs.set(connection, message.epoch)
        this.#admit(message.epoch, from)
        return this.#sync.handleSyncRequest(message.syncId, connection, peer)
      case MessageType.DIGEST:
        return this.#sync.handleDigest(message, connection, peer)
      case MessageType.FETCH:
        return this.#sync.handleFetch(message, connection, peer)
      case MessageType.FETCH_REPLY:
        return this.#sync.handleFetchReply(message, connection, peer)
      default:
        throw new ProtocolError(`message 0x${message.type.toString(16)} is not expected after the handshake`)
    }
  }

  /**
   * The replication lag of a batch of changes (protocol 3): from the sender's clock when it sent
   * them to this node's on arrival, 0 when the clocks disagree that way. One sample per batch: the
   * changes a peer stamped in the same millisecond.
   */
  #measureLag(sentAt: number, connection: Connection, peer: string, now: number): void {
    if (!this.#events.measured || this.#lastSentAt.get(connection) === sentAt) return
    this.#lastSentAt.set(connection, sentAt)
    // A clock far off (or a peer's nonsense) would spoil the histogram's sum for good: not a lag.
    if (now - sentAt > MAX_LAG_MS) return
    this.#events.measured({ kind: 'lag', peer, seconds: Math.max(0, now - sentAt) / 1000 })
  }

  /**
   * An outbound connection is up: fetch what the peer has that is newer, and offer what this node
   * has. (After an overflow, `needsResync` offers everything again: the peer fetches what it lacks.)
   */
  #connected(peer: PeerLink, connection: Connection): void {
    this.#sync.request(peer, connection)
    this.#sync.push(connection, peer)
    this.#connectedOnce()
  }

  /**
   * Whether data from `epoch` may be applied here. An older epoch was cleared away; a newer one
   * means a clear this node missed (it was down or cut off): it clears too, and passes the word on.
   */
  #admit(epoch: Version, from?: string): boolean {
    const order = compareVersions(epoch, false, this.#table.epoch, false)
    if (order < 0) return false
    if (order > 0) {
      debug('clear of epoch %d.%s learnt%s: clearing', epoch.counter, epoch.origin, from ? ` from ${from}` : '')
      this.#table.clear(epoch)
      this.#expiries.stop()
      this.#notify(null, 'clear', from ?? this.#options.nodeId)
      void this.publishClear(epoch)?.catch(() => undefined)
    }
    return true
  }

  /** Whether the peer sent what arrives on `connection` in this node's epoch (or a newer one). */
  #senderIsCurrent(connection: Connection): boolean {
    const epoch = this.#senderEpochs.get(connection)
    return epoch === undefined || compareVersions(epoch, false, this.#table.epoch, false) >= 0
  }

  #applyUpsert(message: Upsert, connection: Connection, peer: PeerLink, now: number): void {
    const from = peer.name
    const limits = this.#limits.session
    const result = this.#table.applyDelta(message, now, (current) => {
      const blob = applyFields(current, message)
      if (blob.length > limits.maxSessionBytes) throw new ProtocolError(`a delta grew session ${message.sid} past maxSessionBytes`)
      return blob
    })
    if (result === 'applied') this.#notify(message.sid, 'upsert', from)
    // Sent here as a holder for the previous writer: the copy is no longer this node's to keep.
    if (this.#placement && !this.#placement.holdsHere(message.sid, message.version.origin)) this.#scheduleTrim()
    // Made on a version this node lacks (a lost message, a concurrent write): fetch it whole.
    else if (result === 'needs-full') void this.#sync.refetch(connection, peer, [message.sid])
  }

  #toMessage(change: Exclude<LocalChange, { kind: 'expiry' }>): OutgoingData {
    const { entry } = change
    const version = versionOf(entry)
    if (change.kind === 'destroy') return { type: MessageType.DESTROY, sid: change.sid, version, keepUntil: entry.expiresAt }
    if (change.kind === 'rename') {
      const { rebinds } = change.entry
      return {
        type: MessageType.RENAME,
        from: change.sid,
        to: change.to,
        base: change.base,
        version,
        keepUntil: change.tombstone.expiresAt,
        rebinds,
      }
    }
    // The delta the encoder computed, its values views into the stored bytes: nothing encoded again.
    const { delta } = change
    return {
      type: MessageType.UPSERT,
      sid: change.sid,
      base: change.base,
      version,
      expiresAt: entry.expiresAt,
      cookieExpires: entry.cookieExpires,
      set: delta.set,
      remove: delta.remove,
    }
  }

  /** Sends to every reachable peer, or to those of `peers`; resolves as `sendMode` says. */
  #broadcast(message: OutgoingData, peers?: readonly string[]): Promise<void> | undefined {
    const level = ACK_LEVEL[this.#options.sendMode]
    const waits = this.#cluster.broadcast(message, level, peers)
    if (level === AckLevel.NONE) return undefined
    if (waits.length === 0) return Promise.resolve()
    const started = performance.now()
    return new Promise<void>((resolve, reject) => {
      const unconfirmed = new Set(waits.map(({ link }) => link))
      const timer = setTimeout(() => {
        reject(
          new ReplicationTimeoutError(
            [...unconfirmed].map((link) => link.name),
            this.#options.ackTimeout,
          ),
        )
      }, this.#options.ackTimeout)
      const confirmations = waits.map(({ link, acked }) =>
        acked.then(
          () => unconfirmed.delete(link),
          (error: Error) => {
            // A peer whose connection closed is no longer live: its resync will bring the change.
            if (error instanceof ConnectionClosedError) unconfirmed.delete(link)
            else throw error
          },
        ),
      )
      Promise.all(confirmations).then(
        () => {
          clearTimeout(timer)
          this.#events.measured?.({ kind: 'ack', seconds: (performance.now() - started) / 1000 })
          resolve()
        },
        (error: Error) => {
          clearTimeout(timer)
          reject(error)
        },
      )
    })
  }

  /** Expiry changes to every peer, or, with backups, each to the holders of its session. */
  #sendExpiries(changes: ExpiryChange[]): void {
    const placement = this.#placement
    if (!placement) {
      this.#cluster.broadcast({ type: MessageType.EXPIRY, changes }, AckLevel.NONE)
      return
    }
    const byPeer = new Map<string, ExpiryChange[]>()
    for (const change of changes) {
      for (const peer of placement.peersFor(change.sid, change.version.origin)) {
        let batch = byPeer.get(peer)
        if (!batch) byPeer.set(peer, (batch = []))
        batch.push(change)
      }
    }
    for (const [peer, batch] of byPeer) this.#cluster.broadcast({ type: MessageType.EXPIRY, changes: batch }, AckLevel.NONE, [peer])
  }

  /**
   * Backups mode: the live members changed (a peer came, went, was added or removed). The holders
   * follow at once; a moment later each peer is offered, by digest, what it now holds; once the
   * membership has been quiet for `deadTimeout`, copies this node no longer holds are let go.
   */
  #membershipChanged(): void {
    const placement = this.#placement
    if (!placement || this.#stopped) return
    const live = this.#cluster.links.flatMap((link) =>
      link.nodeId && (link.state === 'alive' || link.state === 'suspect') ? [link.nodeId] : [],
    )
    if (!placement.setLivePeers(live)) return
    debug('live members now %s', [this.#options.nodeId, ...live].join(', '))
    clearTimeout(this.#rebalanceTimer)
    this.#rebalanceTimer = setTimeout(() => {
      for (const { link, connection } of this.#cluster.reachable()) this.#sync.push(connection, link)
    }, REBALANCE_DELAY_MS)
    this.#generation += 1
    this.#trimDelay = 0
    clearTimeout(this.#trimTimer)
    this.#trimTimer = undefined
    this.#scheduleTrim()
  }

  /** A trim in `#trimDelay` (unless one is due already); one pass at a time, another after it if asked. */
  #scheduleTrim(): void {
    if (this.#stopped) return
    if (this.#trimming) {
      this.#trimAgain = true
      return
    }
    this.#trimDelay ||= this.#options.deadTimeout
    this.#trimTimer ??= setTimeout(() => {
      this.#trimTimer = undefined
      this.#trimming = true
      void this.#trim().finally(() => {
        this.#trimming = false
        if (this.#trimAgain) {
          this.#trimAgain = false
          this.#scheduleTrim()
        }
      })
    }, this.#trimDelay)
  }

  /**
   * Lets go of the live sessions this node no longer holds, once every one of their holders has
   * shown it has the same version or a newer one (asked with a fetch, which also brings here
   * whatever is newer there). A copy not yet confirmed is kept and looked at again later: a trim
   * never lets go of what may be the last copy, however long a handover takes.
   */
  async #trim(): Promise<void> {
    const placement = this.#placement!
    const generation = this.#generation
    const self = this.#options.nodeId
    const recent = Date.now() - this.#options.deadTimeout
    for (const [sid, at] of this.#fetchedAt) if (at <= recent) this.#fetchedAt.delete(sid)
    const letGo = (sid: string, entry: Readonly<Entry> | undefined): entry is Readonly<Entry> =>
      entry !== undefined && entry.blob !== null && !this.#fetchedAt.has(sid) && !placement.holdsHere(sid, entry.origin)
    // The copies to let go, grouped by the holders that must confirm them, with the version confirmed.
    const asks = new Map<string, string[]>()
    const pending = new Map<string, { version: Version; unconfirmed: number }>()
    let seen = 0
    for (const [sid, entry] of this.#table.entries()) {
      // The holders are computed once per copy: this node among them means the copy stays.
      const holders = entry.blob !== null && !this.#fetchedAt.has(sid) ? placement.holders(sid, entry.origin) : undefined
      if (holders && !holders.includes(self)) {
        pending.set(sid, { version: versionOf(entry), unconfirmed: holders.length })
        for (const holder of holders) {
          const sids = asks.get(holder)
          if (sids) sids.push(sid)
          else asks.set(holder, [sid])
        }
      }
      if (++seen % TRIM_SLICE === 0) await new Promise((resolve) => setImmediate(resolve))
      if (this.#stopped) return
    }
    const reachable = new Map(this.#cluster.reachable().map((each) => [each.link.nodeId, each]))
    for (const [holder, sids] of asks) {
      const peer = reachable.get(holder)
      const versions = peer && (await this.#sync.versionsAt(peer.connection, peer.link, sids))
      if (this.#stopped) return
      if (!versions) continue
      for (const sid of sids) {
        const theirs = versions.get(sid)
        const wanted = pending.get(sid)!
        if (theirs && compareVersions(theirs, false, wanted.version, false) >= 0) wanted.unconfirmed -= 1
      }
    }
    let released = 0
    // The members changed during the pass: the holders asked may not be the holders now.
    if (generation !== this.#generation) pending.clear()
    for (const [sid, { version, unconfirmed }] of pending) {
      const entry = this.#table.peek(sid)
      // Written, moved or destroyed meanwhile: held again, or no longer the copy that was confirmed.
      if (unconfirmed > 0 || !letGo(sid, entry) || !sameVersion(entry, version)) continue
      this.#table.release(sid)
      released += 1
    }
    this.#backupStats.trims += 1
    this.#backupStats.released += released
    debug('trim: let go of %d of %d sessions this node no longer holds', released, pending.size)
    // Copies not confirmed yet (later and later), or fetched too recently to let go: looked at again.
    if (released < pending.size) this.#trimDelay = Math.min(this.#trimDelay * 2, MAX_TRIM_DELAY_MS)
    if (released < pending.size || this.#fetchedAt.size > 0) this.#trimAgain = true
  }

  #notify(sid: string | null, change: ReplicatedChange, from: string): void {
    if (this.#options.notifyOnReplication) this.#events.replicated(sid, change, from)
  }

  #endInitialSync(): void {
    this.#transferred = true
    clearTimeout(this.#transferDeadline)
  }
}

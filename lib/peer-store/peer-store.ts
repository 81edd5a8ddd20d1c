import { Store, type SessionData } from 'express-session'
import type { Request } from 'express'
import type { PeerSpec } from '../cluster/address.js'
import { isPeerSource, type PeerSource } from '../cluster/discovery.js'
import { emptyTransportStats } from '../cluster/cluster.js'
import type { Member, MemberState } from '../cluster/peer-link.js'
import { applyFields } from '../codec/field-delta.js'
import { decodeSession, encodeCookie, MAX_SESSION_ID_LENGTH, type SessionLimits } from '../codec/session-codec.js'
import { MAX_PRINCIPAL_LENGTH } from '../codec/session-meta.js'
import { findField, skipTrusted } from '../codec/session-layout.js'
import { debugFor } from '../base/debug.js'
import {
  HandshakeRefusals,
  HandshakeRefusedError,
  InvalidArgumentError,
  InvalidOptionError,
  SnapshotProblems,
  StoreClosedError,
  type DiscoveryError,
  type SnapshotError,
} from '../base/errors.js'
import { resolveOptions, type PeerStoreOptions, type ResolvedOptions } from './options.js'
import { Snapshots } from '../persistence/snapshots.js'
import { createReplication } from '../replication/create-replication.js'
import type { Measurement, ReplicatedChange, Replication, ReplicationStats, SyncProgress } from '../replication/replication.js'
import { createSessionId } from '../table/session-id.js'
import { settle, type Callback } from './callback.js'
import { registerInternals } from './internals.js'
import { Membership } from './membership.js'
import { replicationSuppressed } from './replication-scope.js'
import { currentRequest } from './request-scope.js'
import { SessionTable, type LocalChange } from '../table/session-table.js'
import { SessionIndex } from '../table/session-index.js'
import { Admission } from './admission.js'
import { SessionEvents, type SessionEventMap } from './session-events.js'
import { SessionWriter } from './session-writer.js'

const debug = debugFor('store')

/** What `PeerStore.stats()` reports. */
export interface PeerStoreStats extends ReplicationStats {
  /** Sessions held, including expired ones not yet reclaimed (at most one `reapInterval` old). */
  readonly sessions: number
  /** Tombstones of destroyed sessions still remembered (see `tombstoneTtl`). */
  readonly tombstones: number
  /** True while this node is still receiving its state from a peer. */
  readonly syncing: boolean
  /** Sessions this node evicted for `maxSessions` or `maxSessionsPerPrincipal` ('evict-oldest'). */
  readonly evicted: number
  /** Sessions refused with `SessionLimitError`. */
  readonly refused: number
  /** Saves merged with a change another request stored since this one loaded the session. */
  readonly merged: number
}

/** One session of a principal, as `sessionsOf` lists it. Never its data. */
export interface PrincipalSession {
  readonly id: string
  readonly createdAt: Date
  /** When it was last read, written or touched on this node (or replicated here). */
  readonly lastAccess: Date
  /** The node that last wrote it. */
  readonly servedBy: string
  readonly expiresAt: Date
}

/** Events of a PeerStore, with their arguments. */
export interface PeerStoreEvents extends SessionEventMap {
  /** A peer became reachable (from `connecting` or `dead`). */
  'peer:up': [member: Member]
  /** A peer was verified unreachable, or said goodbye. */
  'peer:down': [member: Member]
  /** Every membership change, `suspect` included. */
  'peer:state': [member: Member, previous: MemberState]
  /** A connection was closed for a bad frame, or a handshake was refused. Never fatal. */
  'peer:error': [error: Error, remote: string]
  /** A peer was added at run time, by `addPeer()` or by discovery; it is being dialed (`state` `connecting`). */
  'peer:added': [member: Member]
  /** A peer was removed at run time, by `removePeer()` or by discovery: said goodbye to and forgotten. */
  'peer:removed': [member: Member]
  /**
   * The `peers` function or DNS name could not be read, or listed a peer that could not be added:
   * the current peers are kept, and it is asked again at the next interval. Never fatal; with no
   * listener it becomes a process warning.
   */
  'discovery:error': [error: DiscoveryError]
  /** A change from a peer was applied here (with `notifyOnReplication`). `sid` is null for a clear. */
  'session:replicated': [event: { sid: string | null; change: ReplicatedChange; from: string }]
  /** A synchronisation with a peer finished: `sessions` entries were fetched from it. */
  sync: [event: { peer: string; sessions: number; durationMs: number }]
  /**
   * A synchronisation with a peer advanced: sessions and bytes fetched so far, and what the peer's
   * digest showed to be newer there (growing while the digest streams in). At most every 100 ms
   * while it runs, then once with everything done, just before `sync`; not for a transfer that
   * brings nothing. A transfer that has to start over reports from zero again.
   */
  'sync:progress': [progress: SyncProgress]
  /** The replication port could not be opened (also rejects `ready()`). */
  error: [error: Error]
  /**
   * A snapshot was not loaded (missing, truncated, corrupt, foreign, undecryptable: the node starts
   * without it, a bad file moved aside) or not written (the previous one stays). Never fatal.
   */
  warning: [error: SnapshotError]
  /** A snapshot was written (see `persist`): `entries` sessions and tombstones. */
  snapshot: [event: { file: string; entries: number; durationMs: number }]
  /**
   * The Redis tier reached Redis (at start, and after an outage) and wrote back the `sessions` this
   * node holds, by version: a newer copy in Redis was kept and read back instead.
   */
  'redis:up': [event: { sessions: number; durationMs: number }]
  /** The Redis tier lost Redis: requests go on from memory, changes wait within `redisMaxPending`. */
  'redis:down': [event: { reason: string }]
}

type Listener<E extends keyof PeerStoreEvents> = (...args: PeerStoreEvents[E]) => void

/**
 * An express-session store that keeps sessions in this process's memory and, given peers,
 * replicates every change to them over TCP.
 *
 * Every method takes an optional express-session style callback; without one it returns a promise.
 * Callbacks are called exactly once and always asynchronously. Sessions are copied on the way in and
 * on the way out: nothing a request does to its session object changes what is stored until `set`.
 *
 * @example
 * ```ts
 * import session from 'express-session'
 * import { PeerStore } from 'connect-peer'
 *
 * const store = new PeerStore(['10.0.0.2:4055'], { nodeId: 'was1', listen: '10.0.0.1:4055', secret })
 * app.use(session({ store, secret: process.env.SESSION_SECRET!, resave: false, saveUninitialized: false }))
 * ```
 */
export class PeerStore extends Store {
  readonly #options: ResolvedOptions
  readonly #limits: SessionLimits
  readonly #table: SessionTable
  /** Sessions by principal and by recency; present with `principal`, `maxSessions` or `maxSessionsPerPrincipal`. */
  readonly #index: SessionIndex | undefined
  readonly #admission: Admission | undefined
  readonly #events: SessionEvents
  /** Every local write and destroy: merge on save, the session's facts, limits, events (`session-writer.ts`). */
  readonly #writer: SessionWriter
  readonly #reaper: NodeJS.Timeout
  readonly #replication: Replication | undefined
  readonly #snapshots: Snapshots | undefined
  readonly #membership: Membership
  readonly #started: Promise<void>
  /** Until the snapshot is loaded: every operation waits for it (a node serves only once it has its sessions). */
  #loading: Promise<void> | undefined
  #closing: Promise<void> | undefined
  /** Someone called ready(): a failed start reaches them (see the constructor). */
  #readyAwaited = false
  /** Who hears the replication's timings (`StoreInternals.observe`): the metrics entry, status pages. */
  readonly #observers = new Set<(measurement: Measurement) => void>()

  /**
   * Generates session ids routed to this node, `<random>.<nodeId>` (144 random bits): pass it as
   * express-session's `genid` (or @fastify/session's `idGenerator`) so balancers and the rebinder
   * know which node a session lives on. A store given no `nodeId` generates plain random ids.
   */
  readonly genid: (request?: object) => string
  /** Ids the Fastify adapter reserved for a request's next `genid` (see `StoreInternals.reserveId`). */
  readonly #reservedIds = new WeakMap<object, string>()

  constructor()
  constructor(options: PeerStoreOptions)
  constructor(peers: PeerSource, options?: PeerStoreOptions)
  constructor(peersOrOptions?: PeerSource | PeerStoreOptions, maybeOptions?: PeerStoreOptions) {
    super()
    if (typeof peersOrOptions === 'string') {
      throw new InvalidOptionError('peers', "an array of peers, such as ['10.0.0.2:4055']", peersOrOptions)
    }
    const given = isPeerSource(peersOrOptions)
    const peers: PeerSource = given ? peersOrOptions : []
    const options = (given ? maybeOptions : peersOrOptions) ?? {}
    this.#options = resolveOptions(peers, options)
    this.#limits = {
      maxSessionBytes: this.#options.maxSessionBytes,
      maxDepth: this.#options.maxDepth,
      maxContainerLength: this.#options.maxContainerLength,
    }
    const { principal, maxSessions, maxSessionsPerPrincipal } = this.#options
    const index = principal || maxSessions !== undefined ? new SessionIndex(this.#options.nodeId) : undefined
    this.#index = index
    this.#admission =
      index && (maxSessions !== undefined || maxSessionsPerPrincipal !== undefined) ? new Admission(this.#options, index) : undefined
    this.#events = new SessionEvents({
      nodeId: this.#options.nodeId,
      members: () => (this.#options.cluster ? this.members() : undefined),
      holders: (sid, origin) => this.#replication?.holders?.(sid, origin),
      listening: (event) => this.listenerCount(event) > 0,
      emit: (event, ...args) => this.emit(event, ...args),
    })
    this.#table = new SessionTable(
      {
        nodeId: this.#options.nodeId,
        tombstoneTtlMs: this.#options.tombstoneTtl,
        expiryResolutionMs: this.#options.reapInterval,
        maxRebinds: this.#options.maxRebinds,
        touchAfterMs: this.#options.touchAfter,
      },
      Date.now(),
      {
        stored: (sid, entry, now) => index?.stored(sid, entry, now),
        removed: (sid, entry, reason) => {
          index?.removed(sid)
          if (reason === 'expired') this.#events.expired(sid, entry)
        },
      },
    )
    this.#writer = new SessionWriter({
      options: this.#options,
      limits: this.#limits,
      table: this.#table,
      index,
      admission: this.#admission,
      events: this.#events,
      publish: (change) => this.#publish(change),
      expiryOf: (session, cookieExpires, now) => this.#expiryOf(session, cookieExpires, now),
    })
    this.#reaper = setInterval(() => this.#table.sweep(Date.now()), this.#options.reapInterval)
    this.#reaper.unref()
    const nodeId = this.#options.nodeId
    // A plain store that was never given a node id routes nowhere: its ids are MemoryStore-like.
    const route = this.#options.routed ? nodeId : undefined
    this.genid = (request) => {
      const reserved = request === undefined ? undefined : this.#reservedIds.get(request)
      if (reserved === undefined) return createSessionId(route)
      this.#reservedIds.delete(request!)
      return reserved
    }
    registerInternals(this, {
      nodeId: route,
      genid: () => createSessionId(route),
      reserveId: (request, sid) => this.#reservedIds.set(request, sid),
      rebind: (sid) => this.#rebind(sid),
      readExternal: (sid, loadedBy) => this.#readExternal(sid, loadedBy),
      writeExternal: (sid, data, cookieExpires, maxAgeMs, loadedBy) => this.#writeExternal(sid, data, cookieExpires, maxAgeMs, loadedBy),
      destroy: (sid) => this.destroy(sid),
      observe: (listener) => {
        this.#observers.add(listener)
        return () => this.#observers.delete(listener)
      },
    })
    const observers = this.#observers
    const measure = (measurement: Measurement) => {
      for (const listener of observers) listener(measurement)
    }
    this.#replication = createReplication(
      this.#table,
      { ...this.#options, session: this.#limits },
      {
        memberChanged: (member, previous) => this.#memberChanged(member, previous),
        replicated: (sid, change, from) => this.emit('session:replicated', { sid, change, from }),
        synced: (peer, sessions, durationMs) => this.emit('sync', { peer, sessions, durationMs }),
        syncProgress: (progress) => this.emit('sync:progress', progress),
        peerError: (error, remote) => this.#peerError(error, remote),
        redisUp: (sessions, durationMs) => this.emit('redis:up', { sessions, durationMs }),
        redisDown: (reason) => this.emit('redis:down', { reason }),
        // Read at each use: while nobody observes, the replication takes no timings at all.
        get measured() {
          return observers.size === 0 ? undefined : measure
        },
      },
    )
    this.#membership = new Membership(this.#replication, this.#options.cluster, {
      added: (member) => this.emit('peer:added', member),
      removed: (member) => this.emit('peer:removed', member),
      discoveryFailed: (error) => this.#discoveryFailed(error),
    })
    const persist = this.#options.persist
    if (persist) {
      const snapshots = new Snapshots(persist, {
        cluster: this.#options.clusterName,
        nodeId,
        secrets: this.#options.secrets,
        session: this.#limits,
        warn: (error) => this.#warn(error),
        written: (info) => this.emit('snapshot', info),
      })
      this.#snapshots = snapshots
      this.#loading = snapshots.load(this.#table).then(() => {
        this.#loading = undefined
        snapshots.start(this.#table)
      })
    }
    // The peers are reached once the snapshot is in: state transfer then reconciles it by version.
    const replication = this.#replication
    // A `peers` function or DNS name is asked once the port is open; ready() waits for that first answer.
    this.#started = replication
      ? (this.#loading ?? Promise.resolve()).then(() => replication.start()).then(() => this.#membership.start())
      : (this.#loading ?? Promise.resolve())
    // A port that cannot be opened is never silent: an `error` listener hears it, whoever called
    // ready() gets it; with neither, it is thrown as an uncaught error, as net.Server's own would be.
    this.#started.catch((error: Error) => {
      if (this.listenerCount('error') > 0 || !this.#readyAwaited) this.emit('error', error)
    })
  }

  /** Listens for one of the `PeerStoreEvents`, typed. */
  override on<E extends keyof PeerStoreEvents>(event: E, listener: Listener<E>): this {
    return super.on(event, listener as (...args: unknown[]) => void)
  }

  override once<E extends keyof PeerStoreEvents>(event: E, listener: Listener<E>): this {
    return super.once(event, listener as (...args: unknown[]) => void)
  }

  override off<E extends keyof PeerStoreEvents>(event: E, listener: Listener<E>): this {
    return super.off(event, listener as (...args: unknown[]) => void)
  }

  /**
   * Resolves when the store serves: its snapshot loaded (with `persist`), its replication port open
   * and, with `peers` from a function or DNS, their first answer applied (a failed one is a
   * `discovery:error`, not a rejection); at once for a plain store. Rejects with `ListenError`.
   */
  ready(): Promise<void> {
    this.#readyAwaited = true
    return this.#closing ? Promise.reject(new StoreClosedError('ready')) : this.#started
  }

  /** The replication port actually bound (useful with port 0 or `autoBind`); undefined without peers. */
  get port(): number | undefined {
    return this.#replication?.port
  }

  /** The current peers and their membership state. */
  members(): Member[] {
    return this.#replication?.members() ?? []
  }

  /**
   * Adds a peer while the store runs, given as `peers` takes it (`'10.0.0.3:4055'`,
   * `'was3@10.0.0.3:4055'` or `{ host, port, nodeId }`). Returns nothing: the peer is dialed in the
   * background (`peer:up` when reached, then `sync` once state transfer with it is done), and its
   * connections are let in from now on. Emits `peer:added`. Throws at once: `InvalidArgumentError`
   * for a bad spec, this node's own address or id, or a peer already there (same address or node
   * id); `InvalidOptionError` for a store without peers (no `nodeId`/`listen`, or a Redis tier only)
   * or a non-loopback peer of a store with no secret; `StoreClosedError` after `close()`.
   *
   * @example
   * ```ts
   * store.addPeer('was3@10.0.0.3:4055')
   * ```
   */
  addPeer(peer: PeerSpec): void {
    this.#assertOpen('addPeer')
    this.#membership.add(peer)
  }

  /**
   * Removes a peer, named by its node id or by its address as `members()` shows it: sends it a
   * goodbye (it sees this node leave), closes its connections, never dials it again and refuses its
   * handshakes from now on. `members()` leaves it out at once and `peer:removed` is emitted; the
   * promise resolves once the goodbye is sent (within `closeTimeout`). Rejects with
   * `InvalidArgumentError` for a name no peer has, `InvalidOptionError` for a store without peers,
   * `StoreClosedError` after `close()`. A peer found by discovery comes back if its source still
   * lists it at the next round.
   *
   * @example
   * ```ts
   * await store.removePeer('was3')
   * ```
   */
  async removePeer(peer: string): Promise<void> {
    this.#assertOpen('removePeer')
    await this.#membership.remove(peer)
  }

  /**
   * Fetches a session; `null` when there is none or it has expired. While this node is still
   * receiving its state, a miss asks the peers (for at most `fetchTimeout`).
   */
  get(sid: string): Promise<SessionData | null>
  get(sid: string, callback: (error: unknown, session?: SessionData | null) => void): void
  get(sid: string, callback?: Callback<SessionData | null>): Promise<SessionData | null> | undefined {
    return settle(async () => {
      this.#assertUsable('get', sid)
      if (this.#loading) await this.#loading
      const entry = await this.#find(sid)
      if (!entry?.blob) return null
      this.#index?.accessed(sid, Date.now())
      const session = decodeSession(entry.blob, entry.cookieExpires)
      this.#writer.noteRead(sid, entry.blob, session, currentRequest())
      return session
    }, callback)
  }

  /**
   * express-session builds `req.session` from what `get` returned through this method: the store
   * notes which stored version the request's session came from, so that its save merges with what
   * other requests stored since (see `set`). Nothing changes for express-session.
   */
  override createSession(req: Request, session: SessionData): ReturnType<Store['createSession']> {
    // A takeover (http/express.ts) rebuilds the request's session under its new id from a copy:
    // it was loaded as the session the request has until now (which the call below replaces).
    const previous = req.session
    const created = super.createSession(req, session)
    this.#writer.carryLoaded(created, session, previous)
    return created
  }

  /**
   * Stores a session and replicates the fields that changed. Throws `NotReplicableError` or
   * `SessionTooLargeError` (and keeps the previous version) when the session cannot be stored. A
   * session whose expiry has passed is destroyed. Writes to a destroyed id are ignored while its
   * tombstone lasts (see `tombstoneTtl`). With `sendMode` 'ack' or 'sync', resolves once the live
   * peers have received or applied the change.
   *
   * Merge on save: when `session` came from this store's `get` (through express-session) and
   * another request stored a newer version since, only the top-level keys this request changed are
   * written over it; the other request's changes are kept. A key both changed takes this save's
   * value (the later save wins that key). If the session was taken over by another node since
   * (`peerSession`'s rebind), the save follows it to its new id, merged the same way. Throws
   * `SessionLimitError` when a session limit refuses it.
   */
  set(sid: string, session: SessionData): Promise<void>
  set(sid: string, session: SessionData, callback: (error?: unknown) => void): void
  set(sid: string, session: SessionData, callback?: Callback<void>): Promise<void> | undefined {
    return settle(async () => {
      this.#assertUsable('set', sid)
      if (this.#loading) await this.#loading
      await this.#writer.save(sid, session, currentRequest())
    }, callback)
  }

  /**
   * Moves an existing session's expiry (see `touchAfter`) and stores a changed cookie. Touching an
   * unknown, expired or destroyed session does nothing. With `disableTouch` it never does anything.
   * Expiry changes are replicated in batches and never wait for the peers.
   */
  override touch(sid: string, session: SessionData): Promise<void>
  override touch(sid: string, session: SessionData, callback: (error?: unknown) => void): void
  override touch(sid: string, session: SessionData, callback?: Callback<void>): Promise<void> | undefined {
    return settle(async () => {
      this.#assertUsable('touch', sid)
      if (this.#loading) await this.#loading
      if (this.#options.disableTouch) return
      const now = Date.now()
      const entry = this.#table.get(sid, now)
      if (!entry?.blob) return
      if (typeof session !== 'object' || session === null) throw new InvalidArgumentError('session', 'an object', session)
      const cookie =
        session.cookie === undefined || session.cookie === null ? undefined : encodeCookie(session.cookie, this.#options.maxDepth)
      const cookieExpires = cookie ? cookie.expires : null
      this.#index?.accessed(sid, now)
      const expiresAt = this.#writer.touchExpiry(this.#expiryOf(session, cookieExpires, now), entry, now)
      if (expiresAt <= now) return this.#writer.expireNow(sid, entry, now)
      const start = findField(entry.blob, 'cookie')
      const same = start !== -1 && cookie !== undefined && sameBytes(entry.blob, start, skipTrusted(entry.blob, start), cookie.bytes)
      if (cookie && !same) {
        // The cookie itself changed (say, a new maxAge for "remember me"): that is a data change.
        const delta = { set: [['cookie', cookie.bytes] as const], remove: [] }
        const blob = applyFields(entry.blob, delta)
        return this.#publish(this.#table.replaceBlob(sid, entry, blob, { expiresAt, cookieExpires }, now, delta))
      }
      void this.#publish(this.#table.rewriteExpiry(sid, entry, { expiresAt, cookieExpires }, now))
    }, callback)
  }

  /** Destroys a session on every node; destroying an unknown session is not an error. */
  destroy(sid: string): Promise<void>
  destroy(sid: string, callback: (error?: unknown) => void): void
  destroy(sid: string, callback?: Callback<void>): Promise<void> | undefined {
    return settle(async () => {
      this.#assertUsable('destroy', sid)
      if (this.#loading) await this.#loading
      return this.#writer.destroy(sid, Date.now(), 'destroyed')
    }, callback)
  }

  /**
   * The live sessions of `principal` (see the `principal` option): id, creation, last access, the
   * node that last wrote it, expiry; never their data. Every node knows them all in all-to-all
   * mode; a store in backups mode or with a Redis tier refuses (`InvalidOptionError`): no node there
   * knows every session.
   *
   * @example
   * ```ts
   * const mine = await store.sessionsOf(req.session.userId)
   * ```
   */
  async sessionsOf(principal: string | number): Promise<PrincipalSession[]> {
    const index = this.#principalIndex('sessionsOf')
    if (this.#loading) await this.#loading
    const now = Date.now()
    const sessions: PrincipalSession[] = []
    for (const sid of index.sessionsOf(principalKey(principal))) {
      const entry = this.#table.get(sid, now)
      const indexed = index.get(sid)
      if (!entry || !indexed) continue
      sessions.push({
        id: sid,
        createdAt: new Date(indexed.createdAt),
        lastAccess: new Date(indexed.lastAccess),
        servedBy: entry.origin,
        expiresAt: new Date(entry.expiresAt),
      })
    }
    return sessions.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime())
  }

  /**
   * Destroys every session of `principal` on every node (tombstones: none comes back), but the ids
   * in `except` (say, the session of the request that changed the password). Resolves with how many
   * were destroyed, once the destroys were sent as `sendMode` says. Refused as `sessionsOf` is.
   *
   * @example
   * ```ts
   * await store.destroyAllOf(req.session.userId, { except: [req.sessionID] })
   * ```
   */
  async destroyAllOf(principal: string | number, options: { except?: readonly string[] } = {}): Promise<number> {
    const index = this.#principalIndex('destroyAllOf')
    if (this.#loading) await this.#loading
    const except = new Set(options.except ?? [])
    const now = Date.now()
    const victims = index.sessionsOf(principalKey(principal)).filter((sid) => !except.has(sid))
    await Promise.all(victims.map((sid) => this.#writer.destroy(sid, now, 'destroyed')))
    return victims.length
  }

  /** Every live session, as an object keyed by session id (the shape MemoryStore returns). */
  override all(): Promise<Record<string, SessionData>>
  override all(callback: (error: unknown, sessions?: Record<string, SessionData>) => void): void
  override all(callback?: Callback<Record<string, SessionData>>): Promise<Record<string, SessionData>> | undefined {
    return settle(async () => {
      this.#assertOpen('all')
      if (this.#loading) await this.#loading
      const now = Date.now()
      const sessions = Object.create(null) as Record<string, SessionData>
      for (const sid of this.#table.liveIds(now)) {
        const entry = this.#table.get(sid, now)!
        sessions[sid] = decodeSession(entry.blob!, entry.cookieExpires)
      }
      return sessions
    }, callback)
  }

  /** Ids of every live session. */
  ids(): Promise<string[]>
  ids(callback: (error: unknown, ids?: string[]) => void): void
  ids(callback?: Callback<string[]>): Promise<string[]> | undefined {
    return settle(async () => {
      this.#assertOpen('ids')
      if (this.#loading) await this.#loading
      return [...this.#table.liveIds(Date.now())]
    }, callback)
  }

  /** Number of live sessions. */
  override length(): Promise<number>
  override length(callback: (error: unknown, length?: number) => void): void
  override length(callback?: Callback<number>): Promise<number> | undefined {
    return settle(async () => {
      this.#assertOpen('length')
      if (this.#loading) await this.#loading
      let count = 0
      for (const _ of this.#table.liveIds(Date.now())) count += 1
      return count
    }, callback)
  }

  /**
   * Removes every session, here and on every peer. Final like a destroy: a peer that is unreachable
   * now clears too when it comes back, and nothing it held before the clear returns.
   */
  override clear(): Promise<void>
  override clear(callback: (error?: unknown) => void): void
  override clear(callback?: Callback<void>): Promise<void> | undefined {
    return settle(async () => {
      this.#assertOpen('clear')
      if (this.#loading) await this.#loading
      const epoch = { counter: this.#table.epoch.counter + 1, origin: this.#options.nodeId }
      this.#table.clear(epoch)
      await this.#replication?.publishClear(epoch)
    }, callback)
  }

  /** Counts for monitoring; cheap enough to call on every scrape. */
  stats(): PeerStoreStats {
    const transport = { ...emptyTransportStats(), ...this.#replication?.stats() }
    return {
      sessions: this.#table.liveCount,
      tombstones: this.#table.tombstoneCount,
      syncing: this.#replication?.syncing ?? false,
      evicted: this.#writer.evicted,
      refused: this.#admission?.refused ?? 0,
      merged: this.#writer.merged,
      ...transport,
    }
  }

  /**
   * Stops the store: sends queued changes to live peers (within `closeTimeout`), closes every socket
   * and timer, never reconnects. Idempotent; later calls return the same promise.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown()
    return this.#closing
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }

  async #shutdown(): Promise<void> {
    clearInterval(this.#reaper)
    this.#membership.stop()
    await this.#loading
    if (this.#replication) {
      await this.#started.catch(() => undefined)
      if (this.#options.replication.expireSessionsOnShutdown) {
        const now = Date.now()
        for (const sid of [...this.#table.liveIds(now)])
          void this.#replication.publish(this.#table.destroy(sid, now)!)?.catch(() => undefined)
      }
      await this.#replication.stop()
    }
    if (this.#snapshots) {
      // The last snapshot, with nothing changing any more: a restart finds every session.
      this.#snapshots.stop()
      await this.#snapshots.save(this.#table, true)
    }
    this.#table.clear()
    debug('closed')
  }

  /**
   * The live entry for `sid`. A miss asks the replication, which decides whether anyone could have it:
   * the peers while this node is still receiving its state (with backups, the holders always), the
   * Redis tier always. A copy the replication does not keep current here is asked for the same way.
   */
  async #find(sid: string) {
    const entry = this.#table.get(sid, Date.now())
    if (!this.#replication || replicationSuppressed()) return entry
    if (entry && (this.#replication.isCurrent?.(sid, entry.origin) ?? true)) return entry
    await this.#replication.fetchMissing(sid)
    return this.#table.get(sid, Date.now())
  }

  /**
   * Replicates a local change; resolves as `sendMode` says. Inside `withoutReplication` (requests
   * the static-asset filter matched) writes and touches are not sent: the next replicated change
   * carries them. Destroys and moves always travel: a logout or a takeover must reach every node.
   */
  #publish(change: LocalChange | undefined): Promise<void> | undefined {
    if (!change || !this.#replication) return undefined
    if (replicationSuppressed() && (change.kind === 'upsert' || change.kind === 'expiry')) return undefined
    return this.#replication.publish(change)
  }

  async #rebind(sid: string): Promise<string | undefined> {
    this.#assertUsable('rebind', sid)
    if (this.#loading) await this.#loading
    const now = Date.now()
    const rebinds = this.#table.get(sid, now)?.rebinds ?? 0
    if (rebinds >= this.#options.maxRebinds) {
      debug('session %s was rebound %d times already: served under its id', sid, rebinds)
      return undefined
    }
    const to = this.genid()
    const change = this.#table.rename(sid, to, now)
    if (!change) return undefined
    debug('session rebound to this node: %s -> %s', sid, to)
    await this.#publish(change)
    return to
  }

  async #readExternal(sid: string, loadedBy?: object): Promise<{ data: Record<string, unknown>; cookieExpires: number | null } | null> {
    this.#assertUsable('get', sid)
    if (this.#loading) await this.#loading
    const entry = await this.#find(sid)
    if (!entry?.blob) return null
    this.#index?.accessed(sid, Date.now())
    this.#writer.noteRead(sid, entry.blob, undefined, loadedBy)
    return { data: decodeSession(entry.blob, null) as unknown as Record<string, unknown>, cookieExpires: entry.cookieExpires }
  }

  async #writeExternal(
    sid: string,
    data: Record<string, unknown>,
    cookieExpires: number | null,
    maxAgeMs: number | undefined,
    loadedBy?: object,
  ): Promise<void> {
    this.#assertUsable('set', sid)
    if (this.#loading) await this.#loading
    // koa-session passes its maxAge plus 10 s, so the store outlives the cookie; 'session' has no end.
    await this.#writer.save(sid, data, loadedBy, { cookieExpires, maxAgeMs })
  }

  /** The principal index, for a store where this node knows every session of a principal. */
  #principalIndex(method: string): SessionIndex {
    this.#assertOpen(method)
    if (!this.#options.principal || !this.#index) {
      throw new InvalidOptionError('principal', `a function such as (s) => s.userId: ${method}() lists sessions by it`, undefined)
    }
    if (this.#options.replication.replication !== 'all' || this.#options.redis) {
      throw new InvalidOptionError(
        'replication',
        `'all' without a Redis tier for ${method}(): in backups mode or with a Redis tier no node knows every session of a user`,
        this.#options.replication.replication,
      )
    }
    return this.#index
  }

  /** A snapshot could not be loaded or written: an event if someone listens, a process warning otherwise. */
  #warn(error: SnapshotError): void {
    debug('%s', error.message)
    if (this.listenerCount('warning') > 0) this.emit('warning', error)
    else if (error.reason !== SnapshotProblems.MISSING) process.emitWarning(error.message, { code: error.code })
  }

  /**
   * A peer's connection failed. A peer with no protocol version in common (reported once per peer
   * and version) is something to act on: with no `peer:error` listener it becomes a process warning.
   */
  #peerError(error: Error, remote: string): void {
    if (this.listenerCount('peer:error') > 0) this.emit('peer:error', error, remote)
    else if (error instanceof HandshakeRefusedError && error.reason === HandshakeRefusals.VERSION)
      process.emitWarning(error.message, { code: error.code })
  }

  /** Discovery could not read its source: an event if someone listens, a process warning otherwise. */
  #discoveryFailed(error: DiscoveryError): void {
    debug('%s', error.message)
    if (this.listenerCount('discovery:error') > 0) this.emit('discovery:error', error)
    else process.emitWarning(error.message, { code: error.code })
  }

  #memberChanged(member: Member, previous: MemberState): void {
    this.#events.memberChanged(member)
    this.emit('peer:state', member, previous)
    if (member.state === 'alive' && (previous === 'connecting' || previous === 'dead')) this.emit('peer:up', member)
    if (member.state === 'dead' && (previous === 'alive' || previous === 'suspect')) this.emit('peer:down', member)
  }

  #expiryOf(session: SessionData, cookieExpires: number | null, now: number): number {
    const ttlFunction = this.#options.ttlFunction
    if (ttlFunction) {
      const seconds = ttlFunction(session)
      if (typeof seconds !== 'number' || Number.isNaN(seconds)) {
        throw new InvalidOptionError('ttl', 'a function that returns a number of seconds', seconds)
      }
      return now + seconds * 1000
    }
    return cookieExpires ?? now + this.#options.ttl
  }

  #assertOpen(method: string): void {
    if (this.#closing) throw new StoreClosedError(method)
  }

  #assertUsable(method: string, sid: unknown): void {
    this.#assertOpen(method)
    if (typeof sid !== 'string' || sid.length === 0 || sid.length > MAX_SESSION_ID_LENGTH) {
      throw new InvalidArgumentError('session id', `a string of 1 to ${MAX_SESSION_ID_LENGTH} characters`, sid)
    }
  }
}

/** Principals are kept as strings: a numeric user id and its string are the same user. */
function principalKey(principal: string | number): string {
  if ((typeof principal !== 'string' && typeof principal !== 'number') || String(principal).length > MAX_PRINCIPAL_LENGTH) {
    throw new InvalidArgumentError('principal', `a string of up to ${MAX_PRINCIPAL_LENGTH} characters or a number`, principal)
  }
  return String(principal)
}

function sameBytes(blob: Buffer, start: number, end: number, bytes: Buffer): boolean {
  return end - start === bytes.length && blob.compare(bytes, 0, bytes.length, start, end) === 0
}

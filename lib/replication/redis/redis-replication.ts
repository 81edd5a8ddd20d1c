import { debugFor } from '../../base/debug.js'
import { InvalidOptionError, ReplicationTimeoutError } from '../../base/errors.js'
import type { Member } from '../../cluster/peer-link.js'
import type { FieldDelta } from '../../codec/field-delta.js'
import type { SessionLimits } from '../../codec/session-codec.js'
import type { EntryState, LocalChange, SessionTable } from '../../table/session-table.js'
import { compareVersions, sameVersion, versionOf, type Version } from '../../table/version.js'
import type { Replication, ReplicatedChange, ReplicationEvents, ReplicationStats } from '../replication.js'
import type { ReplicationConfig } from '../replication-options.js'
import {
  changesChannel,
  decodeAnnouncement,
  encodeAnnouncement,
  EPOCH_SCRIPT,
  epochKey,
  EXPIRE_SCRIPT,
  formatEpoch,
  MAX_NOTICES,
  parseEpoch,
  readEntry,
  sessionKey,
  SWEEP_SCRIPT,
  WRITE_SCRIPT,
  writeArguments,
  deltaArguments,
  DELTA_SCRIPT,
  type Announcement,
  type Notice,
} from './redis-layout.js'
import type { RedisClient, RedisConfig } from './redis-options.js'

const debug = debugFor('redis')

/** Sessions written per round trip of writes. */
const WRITE_BATCH = 500
/** Longest wait before writing again after failures. */
const MAX_RETRY_MS = 5000
/** How a `from` names Redis in `session:replicated` events. */
const REDIS = 'redis'

/** Counters of the Redis tier, in `stats().redis`. */
export interface RedisTierStats {
  /** Whether commands go through now. */
  readonly connected: boolean
  /** Sessions whose latest change waits to be written. */
  readonly pending: number
  /** Writes Redis took. */
  readonly writes: number
  /** Writes Redis refused because it held a newer version (it is then read back). */
  readonly staleWrites: number
  /**
   * Changes written as the whole session because Redis did not hold the version their fields were
   * changed from (it had expired or evicted it, or another node wrote in between).
   */
  readonly wholeWrites: number
  /** Commands that failed (Redis down or slow); their sessions are written again later. */
  readonly failures: number
  /** Times the pending queue passed `redisMaxPending` and a whole write-back was scheduled. */
  readonly overflows: number
  /** Sessions read from Redis (misses, and changes other nodes announced). */
  readonly reads: number
}

interface Waiter {
  resolve(): void
}

type Commands = {
  cpWrite(key: string, ...args: Array<string | number | Buffer>): Promise<number>
  cpExpire(key: string, ...args: Array<string | number>): Promise<number>
  cpEpoch(key: string, counter: number, origin: string): Promise<string>
  cpSweep(key: string, counter: number, origin: string): Promise<number>
  cpDelta(key: string, ...args: Array<string | number | Buffer>): Promise<number>
}

/**
 * What a session waits to have written to Redis: all of it, only its expiry (a touch), or the
 * fields named in `names`, changed since version `base` (the version Redis holds once the writes
 * before succeeded).
 */
type Pending = 'full' | 'expiry' | { readonly base: Version; head: Version; readonly names: Set<string> }

/**
 * The Redis tier: memory stays the first tier, Redis is the second. Every local change is written
 * to Redis behind the request, through a bounded queue that keeps only each session's latest
 * change; a miss reads Redis; each batch of writes is announced on a channel every node on the same
 * Redis subscribes to, so a node with a copy of a changed session reads the new one, and nodes that
 * are not each other's peers share sessions. Redis being down is not an outage: changes wait (within
 * `redisMaxPending`), and when Redis is back this node writes back what it holds, by version, and
 * reads what changed meanwhile.
 */
export class RedisReplication implements Replication {
  readonly #table: SessionTable
  readonly #config: RedisConfig
  readonly #options: ReplicationConfig & { readonly nodeId: string; readonly ackTimeout: number; readonly session: SessionLimits }
  readonly #events: ReplicationEvents
  #client: (RedisClient & Commands) | undefined
  #subscriber: RedisClient | undefined
  /** The client was made here, from options: closed here too. */
  #owned = false
  #up = false
  #stopped = false
  /** Resolves at the first connection: a miss right after start waits for it (within `fetchTimeout`). */
  readonly #firstConnection: Promise<void>
  #connectedOnce!: () => void
  /** Sessions whose latest change is not in Redis yet; 'expiry' when only their expiry moved. */
  readonly #dirty = new Map<string, Pending>()
  readonly #waiters = new Map<string, Waiter[]>()
  /** The queue overflowed: a whole write-back replaces it once Redis is reachable. */
  #overflowed = false
  #flushScheduled = false
  #flushing: Promise<void> | undefined
  /** After failed writes, the next attempt waits (doubling up to `MAX_RETRY_MS`): Redis is in trouble. */
  #retryMs = 0
  #retryTimer: NodeJS.Timeout | undefined
  /** Pending touches are written when this fires (see `publish`). */
  #touchTimer: NodeJS.Timeout | undefined
  #reconciling: Promise<void> | undefined
  readonly #reads = new Map<string, Promise<void>>()
  /** The epoch this node knows Redis has: a newer one in the table (a clear) must be announced. */
  #redisEpoch: Version
  /** Removes what `#listen` added. */
  readonly #listeners: Array<() => void> = []
  #stats = { writes: 0, staleWrites: 0, wholeWrites: 0, failures: 0, overflows: 0, reads: 0 }

  constructor(
    table: SessionTable,
    config: { redis: RedisConfig; replication: ReplicationConfig; nodeId: string; ackTimeout: number; session: SessionLimits },
    events: ReplicationEvents,
  ) {
    this.#table = table
    this.#config = config.redis
    this.#options = { ...config.replication, nodeId: config.nodeId, ackTimeout: config.ackTimeout, session: config.session }
    this.#events = events
    this.#redisEpoch = table.epoch
    this.#firstConnection = new Promise((resolve) => (this.#connectedOnce = resolve))
  }

  get port(): undefined {
    return undefined
  }

  get syncing(): boolean {
    return false
  }

  /** Connects (or takes the given client) and subscribes. Redis being down does not fail it. */
  start(): Promise<void> {
    // An executor's throw (no ioredis to make a client with) is a rejection, as from an async method.
    return new Promise((resolve) => {
      const client = this.#connect()
      client.defineCommand('cpWrite', { numberOfKeys: 1, lua: WRITE_SCRIPT })
      client.defineCommand('cpExpire', { numberOfKeys: 1, lua: EXPIRE_SCRIPT })
      client.defineCommand('cpEpoch', { numberOfKeys: 1, lua: EPOCH_SCRIPT })
      client.defineCommand('cpSweep', { numberOfKeys: 1, lua: SWEEP_SCRIPT })
      client.defineCommand('cpDelta', { numberOfKeys: 1, lua: DELTA_SCRIPT })
      this.#client = client as RedisClient & Commands
      // The tier subscribes again itself on every 'ready'. ioredis's own resubscribe, sent while the
      // stream is not yet writable and with no offline queue, would be a rejection nobody handles.
      // (ioredis's Cluster takes startup nodes first and resubscribes its own way.)
      const subscriber = client.nodes
        ? client.duplicate()
        : (client.duplicate.bind(client) as (options: object) => RedisClient)({ autoResubscribe: false })
      this.#subscriber = subscriber
      subscriber.on('messageBuffer', (_channel, message) => {
        if (Buffer.isBuffer(message)) this.#heard(message)
      })
      subscriber.on('ready', () => void this.#subscribe())
      subscriber.on('error', (error) => debug('subscriber: %s', (error as Error).message))
      this.#listen(client, 'ready', () => this.#online())
      for (const event of ['close', 'end', 'reconnecting']) this.#listen(client, event, () => this.#offline(event))
      this.#listen(client, 'error', (error) => debug('%s', (error as Error).message))
      // A client that is up already (or a test double without a status) will not say 'ready' again.
      if (subscriber.status === undefined || subscriber.status === 'ready') void this.#subscribe()
      if (client.status === undefined || client.status === 'ready') this.#online()
      resolve()
    })
  }

  /** Listens on the client; `stop()` removes it again (a client the user passed in outlives the store). */
  #listen(client: RedisClient, event: string, listener: (...args: unknown[]) => void): void {
    client.on(event, listener)
    this.#listeners.push(() => client.removeListener?.(event, listener))
  }

  /**
   * Queues a local change for Redis; with `ack`/`sync`, resolves once Redis has it (or is down).
   * A change is written at the next turn; a touch (only the expiry moved) waits for the next
   * `touchFlushInterval`, so a busy session's touches reach Redis once per interval, not per request.
   */
  publish(change: LocalChange): Promise<void> | undefined {
    if (change.kind === 'expiry') {
      this.#mark(change.sid, 'expiry')
      this.#touchTimer ??= setTimeout(() => {
        this.#touchTimer = undefined
        this.#scheduleFlush()
      }, this.#options.touchFlushInterval)
      return undefined
    }
    if (change.kind === 'rename') this.#mark(change.to, 'full')
    if (change.kind === 'upsert' && change.previous !== null)
      this.#markFields(change.sid, change.base, versionOf(change.entry), change.delta)
    else this.#mark(change.sid, 'full')
    this.#scheduleFlush()
    if (this.#options.sendMode === 'async' || !this.#up) return undefined
    return this.#waitFor(change.kind === 'rename' ? change.to : change.sid)
  }

  /**
   * Raises the epoch in Redis and announces it: every node clears. Resolves once the keys of older
   * epochs are deleted too (as connect-redis's `clear` does), so Redis does not hold them until
   * they expire.
   */
  publishClear(epoch: Version): Promise<void> | undefined {
    this.#releaseWaiters()
    this.#dirty.clear()
    this.#overflowed = false
    if (!this.#up) return undefined
    return this.#announceEpoch(epoch).then((raised) => (raised ? this.#sweepOlderEpochs(epoch) : undefined))
  }

  /** A miss: reads the session from Redis (within `fetchTimeout`); a miss there too is fine. */
  async fetchMissing(sid: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.#options.fetchTimeout)))
    // Right after start the connection may still be coming up: wait for it, within the same time.
    if (!this.#up) await Promise.race([this.#firstConnection, deadline])
    if (this.#up) await Promise.race([this.#read(sid), deadline])
    clearTimeout(timer)
  }

  members(): Member[] {
    return []
  }

  stats(): Partial<ReplicationStats> {
    return { redis: { connected: this.#up, pending: this.#dirty.size, ...this.#stats } }
  }

  /** Writes what is pending (within `closeTimeout`), then closes what it opened. */
  async stop(): Promise<void> {
    this.#stopped = true
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.#options.closeTimeout)))
    const drained = (async () => {
      // Until the queue is empty, or writes fail (then what is left waits for the next start).
      while (this.#up && this.#dirty.size > 0 && !this.#retryTimer) await this.#flush()
      await this.#flushing
    })()
    await Promise.race([drained, deadline])
    clearTimeout(timer)
    clearTimeout(this.#touchTimer)
    clearTimeout(this.#retryTimer)
    this.#retryTimer = undefined
    this.#releaseWaiters()
    for (const remove of this.#listeners.splice(0)) remove()
    this.#subscriber?.disconnect()
    if (this.#owned) await this.#client?.quit().catch(() => this.#client?.disconnect())
  }

  // ---- writing -------------------------------------------------------------------------------------

  #mark(sid: string, pending: Pending): void {
    if (this.#overflowed) return
    const before = this.#dirty.get(sid)
    if (before === 'full') return
    // A touch does not replace fields waiting to be written: their write carries the expiry too.
    if (pending === 'expiry' && before !== undefined) return
    if (before === undefined && this.#dirty.size >= this.#config.maxPending) {
      debug('pending queue passed %d sessions: a whole write-back follows once Redis is reachable', this.#config.maxPending)
      this.#stats.overflows += 1
      this.#overflowed = true
      this.#dirty.clear()
      this.#releaseWaiters()
      if (this.#up) this.#startReconcile()
      return
    }
    this.#dirty.set(sid, pending)
  }

  /**
   * A change of some fields, from version `base` to `head`: added to what waits for the session when
   * it follows the last change waiting (`base` is that one's head); otherwise the table moved in
   * between (a peer's change was applied here), and only the whole session is right.
   */
  #markFields(sid: string, base: Version, head: Version, delta: FieldDelta): void {
    const before = this.#dirty.get(sid)
    if (before !== undefined && typeof before === 'object') {
      if (!sameVersion(base, before.head)) {
        this.#dirty.set(sid, 'full')
        return
      }
      for (const [name] of delta.set) before.names.add(name)
      for (const name of delta.remove) before.names.add(name)
      before.head = head
      return
    }
    if (before === 'full') return
    const names = new Set<string>(delta.remove)
    for (const [name] of delta.set) names.add(name)
    this.#mark(sid, { base, head, names })
  }

  #waitFor(sid: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiter.resolve = () => undefined
        reject(new ReplicationTimeoutError([REDIS], this.#options.ackTimeout))
      }, this.#options.ackTimeout)
      const waiter: Waiter = {
        resolve: () => {
          clearTimeout(timer)
          resolve()
        },
      }
      const waiters = this.#waiters.get(sid)
      if (waiters) waiters.push(waiter)
      else this.#waiters.set(sid, [waiter])
    })
  }

  /** Nobody waits for Redis while it is unreachable (as for a peer that is down). */
  #releaseWaiters(): void {
    for (const waiters of this.#waiters.values()) for (const waiter of waiters) waiter.resolve()
    this.#waiters.clear()
  }

  #settle(sid: string): void {
    const waiters = this.#waiters.get(sid)
    if (!waiters) return
    this.#waiters.delete(sid)
    for (const waiter of waiters) waiter.resolve()
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#retryTimer || !this.#up) return
    this.#flushScheduled = true
    setImmediate(() => {
      this.#flushScheduled = false
      if (!this.#flushing) void this.#flush()
    })
  }

  /** Writes the pending sessions, a batch per round trip, then announces what Redis took. */
  #flush(): Promise<void> {
    // `finally` always runs later than this assignment, even when there is nothing to write.
    this.#flushing ??= this.#drain().finally(() => (this.#flushing = undefined))
    return this.#flushing
  }

  async #drain(): Promise<void> {
    while (this.#up && this.#dirty.size > 0) {
      if (!(await this.#write(this.#takePending()))) {
        this.#retryLater()
        return
      }
    }
  }

  /** Up to a batch of pending sessions, taken off the queue. */
  #takePending(): Array<[string, Pending]> {
    const batch: Array<[string, Pending]> = []
    for (const item of this.#dirty) {
      batch.push(item)
      this.#dirty.delete(item[0])
      if (batch.length >= WRITE_BATCH) break
    }
    return batch
  }

  /** Writes failed: try again later, and later still if they keep failing. */
  #retryLater(): void {
    this.#retryMs = Math.min(MAX_RETRY_MS, this.#retryMs === 0 ? 100 : this.#retryMs * 2)
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined
      this.#scheduleFlush()
    }, this.#retryMs)
  }

  /**
   * Writes sessions as they are in the table now (by version), then announces what Redis took.
   * False when some writes failed (they are pending again).
   */
  async #write(batch: ReadonlyArray<readonly [string, Pending]>): Promise<boolean> {
    let failed = false
    await this.#announceTableEpoch()
    const now = Date.now()
    const notices: Notice[] = []
    await Promise.all(
      batch.map(async ([sid, pending]) => {
        const entry = this.#table.peek(sid)
        if (!entry || entry.expiresAt <= now) return this.#settle(sid) // gone here: it expires in Redis on its own
        const state = stateOf(entry)
        try {
          const written = await this.#writeOne(sid, state, pending, now)
          if (written === 1) {
            this.#stats.writes += 1
            // A copy held elsewhere that misses a later expiry only expires there early: the next
            // request for it reads Redis. So touches are written, not announced.
            if (pending !== 'expiry') notices.push(noticeOf(sid, state))
          } else if (written === 0 && pending !== 'expiry') {
            // Redis holds something newer (another node's concurrent write): take it.
            this.#stats.staleWrites += 1
            void this.#read(sid)
          }
          this.#settle(sid)
        } catch (error) {
          failed = true
          this.#failed(sid, pending, error as Error)
        }
      }),
    )
    if (notices.length > 0) await this.#announce({ from: this.#options.nodeId, notices })
    if (!failed) this.#retryMs = 0
    return !failed
  }

  /**
   * One session's write: its expiry, its changed fields on the version Redis holds, or (when that
   * is not the base they were changed from) all of it. The result is the script's.
   */
  async #writeOne(sid: string, state: EntryState, pending: Pending, now: number): Promise<number> {
    const client = this.#client!
    const key = sessionKey(this.#config.prefix, sid)
    const { version, blob } = state
    if (pending === 'expiry' && blob !== null)
      return client.cpExpire(key, version.counter, version.origin, state.expiresAt, state.cookieExpires ?? '')
    if (typeof pending === 'object' && blob !== null) {
      const written = await client.cpDelta(key, ...deltaArguments(pending.base, { ...state, blob }, pending.names, this.#table.epoch, now))
      if (written !== 3) return written
      this.#stats.wholeWrites += 1
    }
    return client.cpWrite(key, ...writeArguments(state, this.#table.epoch, now))
  }

  /** A write failed: the session is written whole next time (what Redis holds is not known). */
  #failed(sid: string, pending: Pending, error: Error): void {
    this.#stats.failures += 1
    debug('write of %s failed: %s', sid, error.message)
    if (!this.#dirty.has(sid)) this.#mark(sid, pending === 'expiry' ? 'expiry' : 'full')
  }

  async #announce(announcement: Announcement): Promise<void> {
    const channel = changesChannel(this.#config.prefix)
    if ('notices' in announcement && announcement.notices.length > MAX_NOTICES) {
      for (let start = 0; start < announcement.notices.length; start += MAX_NOTICES) {
        await this.#announce({ from: announcement.from, notices: announcement.notices.slice(start, start + MAX_NOTICES) })
      }
      return
    }
    await this.#client!.publish(channel, encodeAnnouncement(announcement)).catch((error: Error) =>
      debug('announcement lost: %s', error.message),
    )
  }

  /** A clear this node learnt from its peers (or made while Redis was down) must reach Redis too. */
  async #announceTableEpoch(): Promise<void> {
    const epoch = this.#table.epoch
    if (compareVersions(epoch, false, this.#redisEpoch, false) > 0 && (await this.#announceEpoch(epoch))) void this.#sweepOlderEpochs(epoch)
  }

  /** True when `epoch` is now Redis's epoch (false when a newer one was there: it is adopted). */
  async #announceEpoch(epoch: Version): Promise<boolean> {
    const client = this.#client!
    const holding = parseEpoch(await client.cpEpoch(epochKey(this.#config.prefix), epoch.counter, epoch.origin))
    if (!holding) return false
    this.#redisEpoch = holding
    if (compareVersions(holding, false, epoch, false) > 0) {
      this.#adopt(holding)
      return false
    }
    await this.#announce({ from: this.#options.nodeId, epoch })
    return true
  }

  /**
   * Deletes the keys of epochs before `epoch` (best effort: they are ignored anyway, and expire).
   * Each key is checked in Redis as it is deleted, so a session written since the clear stays. On
   * Redis Cluster every master is scanned.
   */
  async #sweepOlderEpochs(epoch: Version): Promise<void> {
    const client = this.#client!
    const scanned = client.nodes?.('master') ?? [client]
    const pattern = `${this.#config.prefix}s:*`
    try {
      for (const node of scanned) {
        let cursor = '0'
        do {
          const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
          cursor = next
          await Promise.all(keys.map((key) => client.cpSweep(key, epoch.counter, epoch.origin)))
        } while (cursor !== '0' && !this.#stopped)
      }
    } catch (error) {
      debug('sweep after a clear: %s', (error as Error).message)
    }
  }

  // ---- reading -------------------------------------------------------------------------------------

  /** Reads a session from Redis into the table (one read at a time per session). */
  #read(sid: string, follow = true): Promise<void> {
    let reading = this.#reads.get(sid)
    if (reading) return reading
    reading = (async () => {
      try {
        const fields = await this.#client!.hgetallBuffer(sessionKey(this.#config.prefix, sid))
        this.#stats.reads += 1
        const state = readEntry(fields, this.#table.epoch, this.#options.session)
        if (!state) return
        const killed: string[] = []
        const result = this.#table.applySnapshot(sid, state, Date.now(), killed)
        if (result !== 'stale') this.#notify(sid, state.blob === null ? 'destroy' : 'upsert')
        for (const each of killed) this.#notify(each, 'destroy')
        if (result === 'needs-target' && follow && state.movedTo) await this.#read(state.movedTo, false)
      } catch (error) {
        debug('read of %s failed: %s', sid, (error as Error).message)
      } finally {
        this.#reads.delete(sid)
      }
    })()
    this.#reads.set(sid, reading)
    return reading
  }

  /** An announcement from another node on the same Redis. */
  #heard(message: Buffer): void {
    const announcement = decodeAnnouncement(message)
    if (!announcement || announcement.from === this.#options.nodeId) return
    if ('epoch' in announcement) {
      if (compareVersions(announcement.epoch, false, this.#table.epoch, false) > 0) this.#adopt(announcement.epoch)
      return
    }
    const now = Date.now()
    const killed: string[] = []
    for (const notice of announcement.notices) {
      const local = this.#table.peek(notice.sid)
      if (notice.kind === 'expiry') {
        if (this.#table.applyExpiry(notice, now) === 'applied') this.#notify(notice.sid, 'expiry')
      } else if (notice.kind === 'live') {
        // Only a copy held here is refreshed; a session this node never saw is read on a miss.
        if (local && compareVersions(notice.version, false, local, local.blob === null && local.movedTo === null) > 0)
          void this.#read(notice.sid)
      } else {
        const tombstone = {
          version: notice.version,
          blob: null,
          movedTo: notice.movedTo,
          expiresAt: notice.expiresAt,
          cookieExpires: null,
          rebinds: 0,
        }
        const result = this.#table.applySnapshot(notice.sid, tombstone, now, killed)
        if (result !== 'stale') this.#notify(notice.sid, 'destroy')
        if (result === 'needs-target' && local?.blob && notice.movedTo) void this.#read(notice.movedTo)
      }
    }
    for (const sid of killed) this.#notify(sid, 'destroy')
  }

  /** A clear made elsewhere: everything from before it is gone here too. */
  #adopt(epoch: Version): void {
    debug('clear of epoch %s learnt from Redis: clearing', formatEpoch(epoch))
    this.#table.clear(epoch)
    this.#redisEpoch = epoch
    this.#dirty.clear()
    this.#overflowed = false
    this.#notify(null, 'clear')
  }

  #notify(sid: string | null, change: ReplicatedChange): void {
    if (this.#options.notifyOnReplication) this.#events.replicated(sid, change, REDIS)
  }

  // ---- connection ----------------------------------------------------------------------------------

  #connect(): RedisClient {
    const connection = this.#config.connection
    if ('client' in connection) return connection.client
    let Redis: new (...args: unknown[]) => RedisClient
    try {
      // require, not import(): connect-peer is CommonJS, and a CommonJS test runner (Jest) cannot
      // load a module through import() without experimental flags.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      Redis = (require('ioredis') as { Redis: new (...args: unknown[]) => RedisClient }).Redis
    } catch {
      // The setting may hold a password: only its shape is shown.
      throw new InvalidOptionError(
        'redis',
        'an ioredis client, or ioredis installed (npm install ioredis) to make one from a URL or options',
        connection.create,
        { sensitive: true },
      )
    }
    this.#owned = true
    // Commands fail at once while Redis is down (the tier keeps its own bounded queue), rather
    // than piling up in ioredis's offline queue.
    // Commands issued in one turn go out in one write (auto-pipelining).
    const defaults = { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: false, enableAutoPipelining: true }
    const created = connection.create
    return typeof created === 'string' ? new Redis(created, defaults) : new Redis({ ...defaults, ...created })
  }

  async #subscribe(): Promise<void> {
    await this.#subscriber?.subscribe(changesChannel(this.#config.prefix)).catch((error: Error) => debug('subscribe: %s', error.message))
  }

  #online(): void {
    if (this.#stopped) return
    this.#up = true
    this.#connectedOnce()
    debug('connected')
    this.#startReconcile()
  }

  #offline(event: string): void {
    if (!this.#up || this.#stopped) return
    this.#up = false
    this.#releaseWaiters()
    debug('connection %s: changes wait (at most %d sessions)', event, this.#config.maxPending)
    this.#events.redisDown?.(event)
  }

  #startReconcile(): void {
    if (this.#reconciling) return
    this.#reconciling = this.#reconcile().finally(() => (this.#reconciling = undefined))
  }

  /**
   * Brings Redis and this node together after a time apart (the first connection too): learns a
   * clear it missed, then writes every session it holds, in batches, by version; what Redis refuses
   * as older is read back from Redis instead.
   */
  async #reconcile(): Promise<void> {
    const started = Date.now()
    let sessions = 0
    try {
      const stored = parseEpoch(await this.#client!.get(epochKey(this.#config.prefix)))
      if (stored && compareVersions(stored, false, this.#table.epoch, false) > 0) this.#adopt(stored)
      else if (stored) this.#redisEpoch = stored
      this.#overflowed = false
      let batch: Array<[string, 'full']> = []
      for (const [sid] of this.#table.entries()) {
        // Written whole below: what waited for it is included (if the reconcile stops short, what it
        // has not reached still waits).
        this.#dirty.delete(sid)
        batch.push([sid, 'full'])
        if (batch.length >= WRITE_BATCH) {
          const written = await this.#write(batch)
          sessions += batch.length
          batch = []
          if (!written) return this.#retryLater()
          if (!this.#up || this.#stopped) return
        }
      }
      if (!(await this.#write(batch))) return this.#retryLater()
      sessions += batch.length
      this.#scheduleFlush()
      if (this.#up && !this.#stopped) this.#events.redisUp?.(sessions, Date.now() - started)
    } catch (error) {
      debug('reconcile: %s', (error as Error).message)
    }
  }
}

function stateOf(
  entry: Readonly<{
    counter: number
    origin: string
    blob: Buffer | null
    movedTo: string | null
    expiresAt: number
    cookieExpires: number | null
    rebinds: number
  }>,
): EntryState {
  return {
    version: versionOf(entry),
    blob: entry.blob,
    movedTo: entry.movedTo,
    expiresAt: entry.expiresAt,
    cookieExpires: entry.cookieExpires,
    rebinds: entry.rebinds,
  }
}

function noticeOf(sid: string, state: EntryState): Notice {
  const what = state.blob !== null ? 'live' : state.movedTo !== null ? 'moved' : 'destroyed'
  return { sid, version: state.version, kind: what, expiresAt: state.expiresAt, cookieExpires: state.cookieExpires, movedTo: state.movedTo }
}

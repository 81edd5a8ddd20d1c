import type { Connection } from '../cluster/connection.js'
import { MessageType, type Digest, type DigestEntry, type Fetch, type FetchReply, type Snapshot } from '../cluster/messages.js'
import type { PeerLink } from '../cluster/peer-link.js'
import { debugFor } from '../debug.js'
import type { SessionTable } from '../store/session-table.js'
import { compareVersions } from '../store/version.js'

const debug = debugFor('replication')

export interface StateSyncOptions {
  /** Sessions per digest chunk and per fetch. */
  readonly chunkSize: number
  /** Bytes of snapshots per reply frame, well under the frame cap. */
  readonly replyBytes: number
  /** Queued bytes past which streaming waits for the socket to drain. */
  readonly highWaterBytes: number
}

export interface StateSyncEvents {
  /** A session or tombstone from a peer was stored here. */
  applied(sid: string, destroyed: boolean, from: string): void
  /** A synchronisation this node asked for has finished: every newer entry the peer had is here. */
  completed(peer: PeerLink, fetched: number, durationMs: number): void
}

/** Fetches of at most this many ids are answered at once instead of in turn. */
const URGENT_FETCH = 16
/** Bulk fetch requests outstanding at once per connection during a synchronisation. */
const BULK_WINDOW = 4

interface BulkWindow {
  readonly queue: Array<{ sids: string[]; run: SyncRun | undefined }>
  active: number
}

/** One synchronisation this node asked a peer for. */
interface SyncRun {
  readonly syncId: number
  readonly peer: PeerLink
  readonly startedAt: number
  digestDone: boolean
  outstanding: number
  fetched: number
}

interface PendingFetch {
  readonly sids: readonly string[]
  readonly reply: Promise<void>
  readonly resolve: () => void
}

/**
 * State transfer and anti-entropy, which are one mechanism here: a node sends a digest (id, version,
 * expiry of every entry, in chunks), and the receiver fetches whatever is newer on the sender. A
 * fresh node is the case where everything is newer. Versions make it idempotent: a change that
 * arrives live during a transfer, or an entry fetched twice, is applied at most once.
 */
export class StateSync {
  readonly #table: SessionTable
  readonly #options: StateSyncOptions
  readonly #events: StateSyncEvents
  readonly #runs = new Map<number, SyncRun>()
  readonly #fetches = new Map<number, PendingFetch>()
  /** Ids being fetched right now, with the reply that brings them: two digests never fetch one entry twice. */
  readonly #inFlight = new Map<string, Promise<void>>()
  /** Replies to one connection are produced one at a time, so they cannot flood its queue. */
  readonly #replies = new WeakMap<Connection, Promise<void>>()
  readonly #bulk = new WeakMap<Connection, BulkWindow>()
  #nextId = 1

  constructor(table: SessionTable, options: StateSyncOptions, events: StateSyncEvents) {
    this.#table = table
    this.#options = options
    this.#events = events
  }

  /** True while a synchronisation this node asked for is in progress. */
  get running(): boolean {
    return this.#runs.size > 0
  }

  /** Asks `peer` for its digest; `completed` fires when everything newer there has been fetched. */
  request(peer: PeerLink, connection: Connection): void {
    const syncId = this.#nextId++
    this.#runs.set(syncId, { syncId, peer, startedAt: Date.now(), digestDone: false, outstanding: 0, fetched: 0 })
    void connection.done.then(() => this.#runs.delete(syncId))
    connection.send({ type: MessageType.SYNC_REQUEST, syncId })
  }

  /** Sends this node's digest unasked, so the peer fetches whatever it lacks (after a reconnect or an overflow). */
  push(connection: Connection): void {
    this.#serialise(connection, () => this.#streamDigest(connection, 0))
  }

  handleSyncRequest(syncId: number, connection: Connection): void {
    this.#serialise(connection, () => this.#streamDigest(connection, syncId))
  }

  handleDigest(message: Digest, connection: Connection, peer: PeerLink): void {
    const run = message.syncId === 0 ? undefined : this.#runs.get(message.syncId)
    const now = Date.now()
    const wanted: string[] = []
    for (const entry of message.entries) if (this.#wants(entry, now, peer)) wanted.push(entry.sid)
    if (wanted.length > 0) this.#queueBulk(connection, wanted, run)
    if (run && message.final) {
      run.digestDone = true
      this.#maybeComplete(run)
    }
  }

  /**
   * Fetches entries from the peer at the other end of `connection`. Resolves when the reply is in
   * (or the connection closed), including for ids another fetch was already bringing.
   */
  fetch(connection: Connection, sids: readonly string[]): Promise<void> {
    const waits = new Set<Promise<void>>()
    const fresh: string[] = []
    for (const sid of sids) {
      const inFlight = this.#inFlight.get(sid)
      if (inFlight) waits.add(inFlight)
      else fresh.push(sid)
    }
    return this.#request(connection, fresh, waits)
  }

  /**
   * Fetches entries again even if a fetch is already bringing them: that earlier reply may hold
   * an older version than the change that made this node ask (a delta on a version it lacked).
   */
  refetch(connection: Connection, sids: readonly string[]): Promise<void> {
    return this.#request(connection, sids, new Set())
  }

  /**
   * Fetches a digest's worth of entries, at most `BULK_WINDOW` requests at a time per connection:
   * the peer is never asked for a whole transfer at once, so replies for requests that cannot wait
   * (a session someone is asking for right now) are not queued behind all of it.
   */
  #queueBulk(connection: Connection, sids: string[], run: SyncRun | undefined): void {
    if (run) run.outstanding += 1
    let window = this.#bulk.get(connection)
    if (!window) this.#bulk.set(connection, (window = { queue: [], active: 0 }))
    window.queue.push({ sids, run })
    this.#pump(connection, window)
  }

  #pump(connection: Connection, window: BulkWindow): void {
    while (window.active < BULK_WINDOW && window.queue.length > 0) {
      const { sids, run } = window.queue.shift()!
      window.active += 1
      void this.fetch(connection, sids).then(() => {
        window.active -= 1
        if (run) {
          run.outstanding -= 1
          this.#maybeComplete(run)
        }
        this.#pump(connection, window)
      })
    }
  }

  #request(connection: Connection, fresh: readonly string[], waits: Set<Promise<void>>): Promise<void> {
    if (fresh.length > 0) {
      const requestId = this.#nextId++
      let resolve!: () => void
      const reply = new Promise<void>((done) => (resolve = done))
      this.#fetches.set(requestId, { sids: fresh, reply, resolve })
      for (const sid of fresh) this.#inFlight.set(sid, reply)
      waits.add(reply)
      // A reply can never come over a closed connection: give up on it then.
      void connection.done.then(() => this.#finishFetch(requestId))
      connection.send({ type: MessageType.FETCH, requestId, sids: fresh })
    }
    return Promise.all(waits).then(() => undefined)
  }

  handleFetch(message: Fetch, connection: Connection): void {
    // A few sessions (a request waiting for one) are answered at once, not behind a transfer.
    if (message.sids.length <= URGENT_FETCH) {
      void this.#reply(message, connection)
      return
    }
    this.#serialise(connection, () => this.#reply(message, connection))
  }

  async #reply(message: Fetch, connection: Connection): Promise<void> {
    const now = Date.now()
    let batch: Snapshot[] = []
    let batchBytes = 0
    for (const sid of message.sids) {
      const entry = this.#table.peek(sid)
      if (!entry || entry.expiresAt <= now) continue
      batch.push({
        sid,
        version: { counter: entry.counter, origin: entry.origin },
        expiresAt: entry.expiresAt,
        cookieExpires: entry.cookieExpires,
        blob: entry.blob,
      })
      batchBytes += (entry.blob?.length ?? 0) + sid.length + 32
      if (batchBytes >= this.#options.replyBytes) {
        connection.send({ type: MessageType.FETCH_REPLY, requestId: message.requestId, snapshots: batch, final: false })
        batch = []
        batchBytes = 0
        await this.#backpressure(connection)
        if (connection.closing) return
      }
    }
    connection.send({ type: MessageType.FETCH_REPLY, requestId: message.requestId, snapshots: batch, final: true })
  }

  handleFetchReply(message: FetchReply, peer: PeerLink): void {
    const now = Date.now()
    let applied = 0
    for (const snapshot of message.snapshots) {
      const result = this.#table.applySnapshot(snapshot.sid, snapshot.version, snapshot.blob, snapshot.expiresAt, snapshot.cookieExpires, now)
      if (result === 'applied') {
        applied += 1
        this.#events.applied(snapshot.sid, snapshot.blob === null, peer.nodeId ?? peer.label)
      }
    }
    // Count toward every run with this peer still in progress (usually exactly one).
    for (const run of this.#runs.values()) if (run.peer === peer) run.fetched += applied
    if (message.final) this.#finishFetch(message.requestId)
  }

  /** Decides from a digest entry whether the sender has something newer; merges what needs no fetch. */
  #wants(remote: DigestEntry, now: number, peer: PeerLink): boolean {
    if (remote.expiresAt <= now) return false
    const stored = this.#table.peek(remote.sid)
    const localEntry = stored && (stored.blob === null || stored.expiresAt > now) ? stored : undefined
    if (remote.destroyed) {
      // A tombstone needs no fetch: the digest entry holds all of it.
      if (this.#table.applyDestroy(remote.sid, remote.version, remote.expiresAt, now) === 'applied') {
        this.#events.applied(remote.sid, true, peer.nodeId ?? peer.label)
      }
      return false
    }
    if (!localEntry) return true
    const order = compareVersions(remote.version, false, localEntry, localEntry.blob === null)
    if (order > 0) return true
    if (order === 0 && localEntry.blob !== null) {
      // Same version, maybe a later expiry there (a touch this node missed).
      this.#table.applyExpiry(remote.sid, remote.version, remote.expiresAt, localEntry.cookieExpires, now)
    }
    return false
  }

  async #streamDigest(connection: Connection, syncId: number): Promise<void> {
    const started = Date.now()
    let batch: DigestEntry[] = []
    let sent = 0
    for (const [sid, entry] of this.#table.entries()) {
      if (entry.expiresAt <= Date.now()) continue
      batch.push({ sid, version: { counter: entry.counter, origin: entry.origin }, destroyed: entry.blob === null, expiresAt: entry.expiresAt })
      if (batch.length >= this.#options.chunkSize) {
        connection.send({ type: MessageType.DIGEST, syncId, entries: batch, final: false })
        sent += batch.length
        batch = []
        await this.#backpressure(connection)
        if (connection.closing) return
      }
    }
    connection.send({ type: MessageType.DIGEST, syncId, entries: batch, final: true })
    debug('digest of %d entries to %s in %d ms', sent + batch.length, connection.label, Date.now() - started)
  }

  #finishFetch(requestId: number): void {
    const pending = this.#fetches.get(requestId)
    if (!pending) return
    this.#fetches.delete(requestId)
    for (const sid of pending.sids) if (this.#inFlight.get(sid) === pending.reply) this.#inFlight.delete(sid)
    pending.resolve()
  }

  #maybeComplete(run: SyncRun): void {
    if (!run.digestDone || run.outstanding > 0 || this.#runs.get(run.syncId) !== run) return
    this.#runs.delete(run.syncId)
    this.#events.completed(run.peer, run.fetched, Date.now() - run.startedAt)
  }

  async #backpressure(connection: Connection): Promise<void> {
    if (connection.queuedBytes > this.#options.highWaterBytes) await connection.flushed()
  }

  #serialise(connection: Connection, work: () => Promise<void> | void): void {
    const previous = this.#replies.get(connection) ?? Promise.resolve()
    const next = previous.then(work).catch((error: Error) => debug('%s: %s', connection.label, error.message))
    this.#replies.set(connection, next)
  }
}

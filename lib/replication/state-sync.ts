import type { Connection } from '../cluster/connection.js'
import { ownedCopy } from '../codec/msgpack.js'
import { MessageType, type Digest, type DigestEntry, type Fetch, type FetchReply, type Snapshot } from '../protocol/messages.js'
import type { PeerLink } from '../cluster/peer-link.js'
import { debugFor } from '../base/debug.js'
import { ProtocolError } from '../base/errors.js'
import { isDestroyed, type SessionTable } from '../table/session-table.js'
import { compareVersions, versionOf, type Version } from '../table/version.js'

const debug = debugFor('replication')

export interface StateSyncOptions {
  /** Sessions per digest chunk and per fetch, at most (frames are also kept within the peer's cap). */
  readonly chunkSize: number
  /** Bytes of snapshots per reply frame, well under the frame cap. */
  readonly replyBytes: number
  /** Queued bytes past which streaming waits for the socket to drain. */
  readonly highWaterBytes: number
  /** How long a fetch waits for its reply before it is given up (and, in a transfer, asked again). */
  readonly requestTimeoutMs: number
  /** The largest session this node accepts: no digest entry's size is taken to be more (for progress). */
  readonly maxSessionBytes: number
}

export interface StateSyncEvents {
  /** A session or tombstone from a peer was stored here. */
  applied(sid: string, destroyed: boolean, from: string): void
  /** A synchronisation this node asked for has finished: every newer entry the peer had is here. */
  completed(peer: PeerLink, fetched: number, durationMs: number): void
  /**
   * A synchronisation this node asked for advanced (see `TransferProgress`): at most every
   * `PROGRESS_INTERVAL_MS` while it runs, and once more when it completes, with everything done.
   */
  progress?(peer: PeerLink, progress: TransferProgress): void
  /** Whether data of `epoch` may be applied here; a newer epoch is adopted first (see `Clear`). */
  admit(epoch: Version): boolean
  /**
   * Backups mode: whether this node holds the live session `sid` last written by `origin`. Digests
   * still list everything (a copy this node should no longer hold may be stale, and must hear of
   * newer versions until it is let go); from a digest, this node fetches a session it has no copy
   * of, or follows a move, only if it holds it. Absent: every node holds everything.
   */
  readonly holdsHere?: (sid: string, origin: string) => boolean
}

/**
 * How far one synchronisation has got. Expected is what the peer's digest has shown so far to be
 * newer there (it grows while the digest streams in); done is what has been fetched of it. Bytes
 * are the sizes the digest gives (protocol 3); a protocol 2 peer's digest has none, and then the
 * expected bytes are the bytes done so far.
 */
export interface TransferProgress {
  readonly sessions: number
  readonly bytes: number
  readonly expectedSessions: number
  readonly expectedBytes: number
}

/** Progress of a synchronisation is reported at most this often while it runs (plus once at the end). */
export const PROGRESS_INTERVAL_MS = 100

/** Fetches of at most this many ids are answered at once instead of in turn. */
const URGENT_FETCH = 16
/**
 * Ids per bulk fetch, at most: each reply is then one frame of about `replyBytes`, applied in well
 * under a millisecond, so a transfer never holds the receiving node's event loop for long.
 */
const BULK_FETCH_IDS = 64
/** Bulk fetch requests outstanding at once per connection during a synchronisation (small ones: see above). */
const BULK_WINDOW = 16
/** A fetch backlog past this many chunks turns into a whole resynchronisation. */
const BACKLOG_CHUNKS = 4
/** Fetch requests awaiting their reply on one connection, at most; more ids wait in its backlog. */
const MAX_OUTSTANDING = 64
/** Times a bulk fetch is sent when its reply does not come in time; then the run starts over. */
const MAX_ATTEMPTS = 3
/** Digest streams and bulk replies queued for one connection, at most: a peer asking more is flooding. */
const MAX_QUEUED_REPLIES = 32
/** Room a frame needs besides its items: header, envelope, ids, flags, epoch. */
const ENVELOPE_BYTES = 128
/** msgpack bytes of one digest entry or snapshot besides its strings and session bytes. */
const ITEM_BYTES = 48

/** One bulk fetch, queued until the connection's window has room. */
interface BulkJob {
  readonly sids: string[]
  /** The version the digest showed for each id: a reply that brings less is asked again. */
  readonly versions: ReadonlyMap<string, Version>
  /** The size the digest gave for each id (protocol 3), for the run's progress. */
  readonly sizes: ReadonlyMap<string, number>
  /** Asked again because an earlier reply brought less: not shared with a fetch in flight. */
  readonly fresh?: boolean
  readonly run: SyncRun | undefined
  readonly attempt: number
}

/** What this node keeps per connection to a peer. */
interface Channel {
  readonly peer: PeerLink
  /** Fetch requests sent and not yet answered. */
  outstanding: number
  /** Ids to fetch again once a request slot frees up (bounded: past it, a whole resync is asked). */
  readonly backlog: Set<string>
  readonly bulk: BulkJob[]
  bulkActive: number
  /** Digest streams and bulk replies to this connection run one at a time, in this chain. */
  replies: Promise<void>
  queuedReplies: number
  pushQueued: boolean
  /** A whole resync was asked for while one was running on this connection: run another after it. */
  resyncPending: boolean
}

/** One synchronisation this node asked a peer for. */
interface SyncRun {
  readonly syncId: number
  readonly peer: PeerLink
  readonly connection: Connection
  readonly startedAt: number
  digestDone: boolean
  outstanding: number
  fetched: number
  /** A fetch of this run was given up on: the run cannot complete; it starts over instead. */
  failed: boolean
  /** Progress: what the digest showed newer there (ids, bytes), what of it is here, when it was last reported. */
  expectedSessions: number
  expectedBytes: number
  doneSessions: number
  doneBytes: number
  reportedAt: number
  /** Starts the run over when its digest stops coming (a chunk lost): reset by every chunk. */
  readonly watchdog: NodeJS.Timeout
}

interface PendingFetch {
  readonly connection: Connection
  /** The ids asked for: a reply may bring those and nothing else. */
  readonly sids: ReadonlySet<string>
  /** Resolves true when the whole reply came in, false when it timed out or the connection closed. */
  readonly reply: Promise<boolean>
  readonly resolve: (complete: boolean) => void
  readonly timer: NodeJS.Timeout
  /** Filled with the version of every entry the reply brings (the peer's, whether newer or not). */
  readonly seen?: Map<string, Version>
}

/**
 * State transfer and anti-entropy, which are one mechanism here: a node sends a digest (id, version,
 * expiry of every entry, in chunks), and the receiver fetches whatever is newer on the sender. A
 * fresh node is the case where everything is newer. Versions make it idempotent: a change that
 * arrives live during a transfer, or an entry fetched twice, is applied at most once.
 *
 * Nothing waits forever: every fetch has a deadline, a transfer asks again for what did not come and
 * starts over if it still does not, and a node only accepts replies to what it asked, on the
 * connection it asked on. Every map is bounded, whatever a peer sends or withholds.
 */
export class StateSync {
  readonly #table: SessionTable
  readonly #options: StateSyncOptions
  readonly #events: StateSyncEvents
  readonly #runs = new Map<number, SyncRun>()
  readonly #fetches = new Map<number, PendingFetch>()
  /** Ids being fetched right now, with the reply that brings them: two digests never fetch one entry twice. */
  readonly #inFlight = new Map<string, Promise<boolean>>()
  readonly #channels = new WeakMap<Connection, Channel>()
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
    if (connection.closing) return
    const syncId = this.#nextId++
    this.#channel(connection, peer)
    const watchdog = setTimeout(() => this.#digestStalled(syncId), this.#options.requestTimeoutMs)
    this.#runs.set(syncId, {
      syncId,
      peer,
      connection,
      startedAt: Date.now(),
      digestDone: false,
      outstanding: 0,
      fetched: 0,
      failed: false,
      expectedSessions: 0,
      expectedBytes: 0,
      doneSessions: 0,
      doneBytes: 0,
      reportedAt: 0,
      watchdog,
    })
    void connection.done.then(() => this.#endRun(syncId))
    connection.send({ type: MessageType.SYNC_REQUEST, syncId, epoch: this.#table.epoch })
  }

  /** Sends this node's digest unasked, so the peer fetches whatever it lacks (after a reconnect or an overflow). */
  push(connection: Connection, peer: PeerLink): void {
    const channel = this.#channel(connection, peer)
    if (channel.pushQueued) return
    channel.pushQueued = true
    // Never refused: at most one push waits per connection, whatever the peer asks besides.
    this.#serialise(channel, () => {
      channel.pushQueued = false
      return this.#streamDigest(connection, 0)
    })
  }

  handleSyncRequest(syncId: number, connection: Connection, peer: PeerLink): void {
    this.#serialise(this.#limited(this.#channel(connection, peer)), () => this.#streamDigest(connection, syncId))
  }

  handleDigest(message: Digest, connection: Connection, peer: PeerLink): void {
    const run = message.syncId === 0 ? undefined : this.#runs.get(message.syncId)
    if (run && run.connection !== connection) return // an answer to a request made elsewhere: not ours
    if (this.#events.admit(message.epoch)) {
      const now = Date.now()
      const wanted: string[] = []
      const versions = new Map<string, Version>()
      const sizes = new Map<string, number>()
      const killed: string[] = []
      for (const entry of message.entries) this.#wants(entry, now, peer, wanted, killed, versions, sizes)
      for (const sid of killed) this.#events.applied(sid, true, peer.name)
      const channel = this.#channel(connection, peer)
      if (run) {
        run.expectedSessions += wanted.length
        for (const size of sizes.values()) run.expectedBytes += size
      }
      for (const sids of this.#chunks(wanted, connection, BULK_FETCH_IDS))
        this.#queueBulk(connection, channel, { sids, versions, sizes, run, attempt: 1 })
      if (run && wanted.length > 0) this.#reportProgress(run, false)
    }
    if (!run) return
    if (message.final) {
      run.digestDone = true
      clearTimeout(run.watchdog)
      this.#maybeComplete(run)
    } else {
      run.watchdog.refresh()
    }
  }

  /**
   * Fetches entries from the peer at the other end of `connection`. Resolves true when the reply is
   * in, false when it was given up (timed out, connection closed), including for ids another fetch
   * was already bringing.
   */
  fetch(connection: Connection, sids: readonly string[]): Promise<boolean> {
    const waits = new Set<Promise<boolean>>()
    const fresh: string[] = []
    for (const sid of sids) {
      const inFlight = this.#inFlight.get(sid)
      if (inFlight) waits.add(inFlight)
      else fresh.push(sid)
    }
    if (fresh.length > 0) waits.add(this.#request(connection, fresh))
    return Promise.all(waits).then((results) => results.every(Boolean))
  }

  /**
   * Fetches entries again even if a fetch is already bringing them: that earlier reply may hold
   * an older version than the change that made this node ask (a delta on a version it lacked).
   * When too many requests are already waiting on this connection, the ids wait in a backlog; a
   * backlog that overflows turns into a whole resynchronisation, which brings everything.
   */
  refetch(connection: Connection, peer: PeerLink, sids: readonly string[]): Promise<boolean> {
    const channel = this.#channel(connection, peer)
    if (channel.outstanding < MAX_OUTSTANDING) return this.#request(connection, sids)
    for (const sid of sids) channel.backlog.add(sid)
    if (channel.backlog.size > this.#options.chunkSize * BACKLOG_CHUNKS) {
      debug('%s: fetch backlog overflowed: resynchronising', connection.label)
      channel.backlog.clear()
      this.#resync(channel, connection)
    }
    return Promise.resolve(false)
  }

  /**
   * The versions `peer` holds of `sids` (a fetch: whatever it has newer is applied here too), in
   * requests of at most `BULK_FETCH_IDS`, one at a time; undefined if a reply did not come whole.
   * An id missing from the map is one the peer does not have.
   */
  async versionsAt(connection: Connection, peer: PeerLink, sids: readonly string[]): Promise<Map<string, Version> | undefined> {
    this.#channel(connection, peer)
    const seen = new Map<string, Version>()
    for (let i = 0; i < sids.length; i += BULK_FETCH_IDS) {
      if (!(await this.#request(connection, sids.slice(i, i + BULK_FETCH_IDS), seen))) return undefined
    }
    return seen
  }

  handleFetch(message: Fetch, connection: Connection, peer: PeerLink): void {
    // A few sessions (a request waiting for one) are answered at once, not behind a transfer.
    if (message.sids.length <= URGENT_FETCH) {
      void this.#reply(message, connection)
      return
    }
    this.#serialise(this.#limited(this.#channel(connection, peer)), () => this.#reply(message, connection))
  }

  handleFetchReply(message: FetchReply, connection: Connection, peer: PeerLink): void {
    const pending = this.#fetches.get(message.requestId)
    if (!pending || pending.connection !== connection) {
      debug('%s: reply to request %d, which this node did not make there: ignored', connection.label, message.requestId)
      return
    }
    if (this.#events.admit(message.epoch)) {
      const from = peer.name
      const now = Date.now()
      const killed: string[] = []
      const targets: string[] = []
      let applied = 0
      for (const snapshot of message.snapshots) {
        if (!pending.sids.has(snapshot.sid)) continue // not asked for: ignore
        pending.seen?.set(snapshot.sid, snapshot.version)
        // The blob is a view into the received frame: the table keeps a copy of its own.
        const state = snapshot.blob === null ? snapshot : { ...snapshot, blob: ownedCopy(snapshot.blob) }
        const result = this.#table.applySnapshot(snapshot.sid, state, now, killed)
        if (result === 'stale') continue
        applied += 1
        this.#events.applied(snapshot.sid, snapshot.blob === null, from)
        if (result === 'needs-target') targets.push(snapshot.movedTo!)
      }
      for (const sid of killed) this.#events.applied(sid, true, from)
      if (targets.length > 0) void this.refetch(connection, peer, targets)
      // Count toward every run with this peer still in progress (usually exactly one).
      for (const run of this.#runs.values()) if (run.peer === peer) run.fetched += applied
    }
    if (message.final) this.#finishFetch(message.requestId, true)
  }

  /**
   * Decides from a digest entry whether the sender has something newer (then its id goes into
   * `wanted`); applies what needs no fetch: tombstones, a later expiry of the same version.
   */
  #wants(
    remote: DigestEntry,
    now: number,
    peer: PeerLink,
    wanted: string[],
    killed: string[],
    versions: Map<string, Version>,
    sizes: Map<string, number>,
  ): void {
    if (remote.expiresAt <= now) return
    if (remote.tombstone) {
      // A tombstone needs no fetch: the digest entry holds all of it (a move's target is fetched on its own).
      const state = {
        version: remote.version,
        blob: null,
        movedTo: remote.movedTo,
        expiresAt: remote.expiresAt,
        cookieExpires: null,
        rebinds: 0,
      }
      const result = this.#table.applySnapshot(remote.sid, state, now, killed)
      if (result !== 'stale') this.#events.applied(remote.sid, true, peer.name)
      const holdsHere = this.#events.holdsHere
      if (result === 'needs-target' && (!holdsHere || holdsHere(remote.movedTo!, remote.version.origin))) wanted.push(remote.movedTo!)
      return
    }
    const stored = this.#table.peek(remote.sid)
    const localEntry = stored && (stored.blob === null || stored.expiresAt > now) ? stored : undefined
    if (!localEntry) {
      if (this.#events.holdsHere && !this.#events.holdsHere(remote.sid, remote.version.origin)) return
      wanted.push(remote.sid)
      versions.set(remote.sid, remote.version)
      if (remote.bytes !== null) sizes.set(remote.sid, Math.min(remote.bytes, this.#options.maxSessionBytes))
      return
    }
    const order = compareVersions(remote.version, false, localEntry, isDestroyed(localEntry))
    if (order > 0) {
      wanted.push(remote.sid)
      versions.set(remote.sid, remote.version)
      if (remote.bytes !== null) sizes.set(remote.sid, Math.min(remote.bytes, this.#options.maxSessionBytes))
    } else if (order === 0 && localEntry.blob !== null) {
      // Same version, maybe a later expiry there (a touch this node missed).
      this.#table.applyExpiry({ ...remote, cookieExpires: localEntry.cookieExpires }, now)
    }
  }

  /**
   * Fetches a digest's worth of entries, at most `BULK_WINDOW` requests at a time per connection:
   * the peer is never asked for a whole transfer at once, so replies for requests that cannot wait
   * (a session someone is asking for right now) are not queued behind all of it.
   */
  #queueBulk(connection: Connection, channel: Channel, job: BulkJob): void {
    if (job.run && job.attempt === 1) job.run.outstanding += 1
    channel.bulk.push(job)
    this.#pump(connection, channel)
  }

  #pump(connection: Connection, channel: Channel): void {
    while (channel.bulkActive < BULK_WINDOW && channel.bulk.length > 0 && !connection.closing) {
      const job = channel.bulk.shift()!
      channel.bulkActive += 1
      const fetched = job.fresh ? this.#request(connection, job.sids) : this.fetch(connection, job.sids)
      void fetched.then((complete) => {
        channel.bulkActive -= 1
        // A fetch already in flight for an id may have been answered before the version the
        // digest showed was made: what is still behind is asked for again, on its own.
        const behind = complete ? this.#behind(job) : []
        if (!complete && !connection.closing && job.attempt < MAX_ATTEMPTS) {
          debug('%s: no reply to a fetch of %d ids: asking again', connection.label, job.sids.length)
          channel.bulk.push({ ...job, attempt: job.attempt + 1 })
        } else if (behind.length > 0 && !connection.closing && job.attempt < MAX_ATTEMPTS) {
          debug('%s: %d fetched ids older than their digest: asking again', connection.label, behind.length)
          if (job.run) this.#fetched(job.run, job, new Set(behind))
          channel.bulk.push({ ...job, sids: behind, attempt: job.attempt + 1, fresh: true })
        } else {
          if (!complete && job.run) job.run.failed = true
          if (job.run) {
            if (complete) this.#fetched(job.run, job)
            job.run.outstanding -= 1
            this.#maybeComplete(job.run)
          }
        }
        this.#pump(connection, channel)
      })
    }
  }

  /** The ids of `job` (but those `except`) are here now: they count toward the run's progress. */
  #fetched(run: SyncRun, job: BulkJob, except?: ReadonlySet<string>): void {
    for (const sid of job.sids) {
      if (except?.has(sid)) continue
      run.doneSessions += 1
      // A protocol 2 digest gives no sizes: what came is counted instead (and is all that is expected).
      const size = job.sizes.get(sid)
      if (size !== undefined) run.doneBytes += size
      else {
        const bytes = this.#table.peek(sid)?.blob?.length ?? 0
        run.doneBytes += bytes
        run.expectedBytes += bytes
      }
    }
    this.#reportProgress(run, false)
  }

  /** Reports a run's progress, at most every `PROGRESS_INTERVAL_MS` unless `final`. */
  #reportProgress(run: SyncRun, final: boolean): void {
    if (!this.#events.progress) return
    const now = Date.now()
    if (!final && now - run.reportedAt < PROGRESS_INTERVAL_MS) return
    run.reportedAt = now
    this.#events.progress(run.peer, {
      sessions: run.doneSessions,
      bytes: run.doneBytes,
      expectedSessions: run.expectedSessions,
      expectedBytes: run.expectedBytes,
    })
  }

  /** Ids of `job` that this node still holds in a version older than the digest showed. */
  #behind(job: BulkJob): string[] {
    const behind: string[] = []
    for (const sid of job.sids) {
      const wanted = job.versions.get(sid)
      if (wanted === undefined) continue
      const local = this.#table.peek(sid)
      if (!local || compareVersions(wanted, false, local, isDestroyed(local)) > 0) behind.push(sid)
    }
    return behind
  }

  #request(connection: Connection, sids: readonly string[], seen?: Map<string, Version>): Promise<boolean> {
    const channel = this.#channels.get(connection)
    const requestId = this.#nextId++
    let resolve!: (complete: boolean) => void
    const reply = new Promise<boolean>((done) => (resolve = done))
    const timer = setTimeout(() => this.#finishFetch(requestId, false), this.#options.requestTimeoutMs)
    this.#fetches.set(requestId, { connection, sids: new Set(sids), reply, resolve, timer, seen })
    if (channel) channel.outstanding += 1
    for (const sid of sids) this.#inFlight.set(sid, reply)
    // A reply can never come over a closed connection: give up on it then.
    void connection.done.then(() => this.#finishFetch(requestId, false))
    if (!connection.send({ type: MessageType.FETCH, requestId, sids })) this.#finishFetch(requestId, false)
    return reply
  }

  async #reply(message: Fetch, connection: Connection): Promise<void> {
    const now = Date.now()
    const frameBytes = Math.min(this.#options.replyBytes, connection.frameBudget - ENVELOPE_BYTES)
    let batch: Snapshot[] = []
    let batchBytes = 0
    for (const sid of message.sids) {
      const entry = this.#table.peek(sid)
      if (!entry || entry.expiresAt <= now) continue
      const bytes = ITEM_BYTES + byteLength(sid) + byteLength(entry.origin) + byteLength(entry.movedTo) + (entry.blob?.length ?? 0)
      if (bytes > connection.frameBudget - ENVELOPE_BYTES) {
        debug("%s: session %s is too large for the peer's frame cap: not sent", connection.label, sid)
        continue
      }
      if (batchBytes + bytes > frameBytes && batch.length > 0) {
        if (
          !connection.send({
            type: MessageType.FETCH_REPLY,
            requestId: message.requestId,
            epoch: this.#table.epoch,
            snapshots: batch,
            final: false,
          })
        )
          return
        batch = []
        batchBytes = 0
        await this.#backpressure(connection)
        if (connection.closing) return
      }
      batch.push({
        sid,
        version: versionOf(entry),
        expiresAt: entry.expiresAt,
        cookieExpires: entry.cookieExpires,
        blob: entry.blob,
        movedTo: entry.movedTo,
        rebinds: entry.rebinds,
      })
      batchBytes += bytes
    }
    connection.send({
      type: MessageType.FETCH_REPLY,
      requestId: message.requestId,
      epoch: this.#table.epoch,
      snapshots: batch,
      final: true,
    })
  }

  async #streamDigest(connection: Connection, syncId: number): Promise<void> {
    const started = Date.now()
    const epoch = this.#table.epoch
    const frameBytes = connection.frameBudget - ENVELOPE_BYTES
    let batch: DigestEntry[] = []
    let batchBytes = 0
    let sent = 0
    for (const [sid, entry] of this.#table.entries()) {
      if (entry.expiresAt <= Date.now()) continue
      const bytes = ITEM_BYTES + byteLength(sid) + byteLength(entry.origin) + byteLength(entry.movedTo)
      if (batch.length >= this.#options.chunkSize || batchBytes + bytes > frameBytes) {
        // A send refused means the queue overflowed: the resync after it streams a digest afresh.
        if (!connection.send({ type: MessageType.DIGEST, syncId, epoch, entries: batch, final: false })) return
        sent += batch.length
        batch = []
        batchBytes = 0
        await this.#backpressure(connection)
        // A clear while streaming: what is left belongs to an epoch that is gone.
        if (connection.closing || this.#table.epoch !== epoch) return
      }
      batch.push({
        sid,
        version: versionOf(entry),
        tombstone: entry.blob === null,
        movedTo: entry.movedTo,
        expiresAt: entry.expiresAt,
        bytes: entry.blob?.length ?? 0,
      })
      batchBytes += bytes
    }
    connection.send({ type: MessageType.DIGEST, syncId, epoch, entries: batch, final: true })
    debug('digest of %d entries to %s in %d ms', sent + batch.length, connection.label, Date.now() - started)
  }

  /** Splits ids into fetch requests that fit `chunkSize`, `maxIds` and the peer's frame cap. */
  #chunks(sids: readonly string[], connection: Connection, maxIds: number): string[][] {
    const chunkSize = Math.min(this.#options.chunkSize, maxIds)
    const chunks: string[][] = []
    const frameBytes = connection.frameBudget - ENVELOPE_BYTES
    let chunk: string[] = []
    let bytes = 0
    for (const sid of sids) {
      const size = byteLength(sid) + 8
      if (chunk.length >= chunkSize || bytes + size > frameBytes) {
        chunks.push(chunk)
        chunk = []
        bytes = 0
      }
      chunk.push(sid)
      bytes += size
    }
    if (chunk.length > 0) chunks.push(chunk)
    return chunks
  }

  #finishFetch(requestId: number, complete: boolean): void {
    const pending = this.#fetches.get(requestId)
    if (!pending) return
    this.#fetches.delete(requestId)
    clearTimeout(pending.timer)
    for (const sid of pending.sids) if (this.#inFlight.get(sid) === pending.reply) this.#inFlight.delete(sid)
    pending.resolve(complete)
    const channel = this.#channels.get(pending.connection)
    if (!channel) return
    channel.outstanding -= 1
    if (channel.backlog.size > 0 && !pending.connection.closing) {
      const sids = [...channel.backlog].slice(0, this.#options.chunkSize)
      for (const sid of sids) channel.backlog.delete(sid)
      void this.#request(pending.connection, sids)
    }
  }

  /** Asks for a whole digest on `connection`, or, while one is coming, for one more after it. */
  #resync(channel: Channel, connection: Connection): void {
    for (const run of this.#runs.values()) {
      if (run.connection === connection) {
        channel.resyncPending = true
        return
      }
    }
    this.request(channel.peer, connection)
  }

  /** No digest chunk came for `requestTimeoutMs`: one was lost. Ask for the whole digest again. */
  #digestStalled(syncId: number): void {
    const run = this.#runs.get(syncId)
    if (!run || run.digestDone) return
    debug('sync with %s: no digest for %d ms: starting over', run.peer.name, this.#options.requestTimeoutMs)
    this.#endRun(syncId, true)
  }

  /** Forgets a run; starts another when asked to (`again`) or when a resync was asked for meanwhile. */
  #endRun(syncId: number, again = false): void {
    const run = this.#runs.get(syncId)
    if (!run) return
    clearTimeout(run.watchdog)
    this.#runs.delete(syncId)
    const channel = this.#channels.get(run.connection)
    if ((again || channel?.resyncPending) && !run.connection.closing) {
      if (channel) channel.resyncPending = false
      this.request(run.peer, run.connection)
    }
  }

  #maybeComplete(run: SyncRun): void {
    if (!run.digestDone || run.outstanding > 0 || this.#runs.get(run.syncId) !== run) return
    // Something not fetched in time, even asked again: start over rather than claim completion.
    if (run.failed) debug('sync with %s incomplete: starting over', run.peer.name)
    this.#endRun(run.syncId, run.failed)
    if (run.failed) return
    // The end of a transfer that brought anything is always reported: everything expected is here.
    if (run.expectedSessions > 0) this.#reportProgress(run, true)
    this.#events.completed(run.peer, run.fetched, Date.now() - run.startedAt)
  }

  async #backpressure(connection: Connection): Promise<void> {
    if (connection.queuedBytes > this.#options.highWaterBytes) await connection.flushed()
  }

  #channel(connection: Connection, peer: PeerLink): Channel {
    let channel = this.#channels.get(connection)
    if (!channel) {
      channel = {
        peer,
        outstanding: 0,
        backlog: new Set(),
        bulk: [],
        bulkActive: 0,
        replies: Promise.resolve(),
        queuedReplies: 0,
        pushQueued: false,
        resyncPending: false,
      }
      this.#channels.set(connection, channel)
    }
    return channel
  }

  /** A peer's request may queue more work only within bounds: a flood closes its connection. */
  #limited(channel: Channel): Channel {
    if (channel.queuedReplies >= MAX_QUEUED_REPLIES)
      throw new ProtocolError(`more than ${MAX_QUEUED_REPLIES} digest or fetch requests queued`)
    return channel
  }

  /** Runs `work` after the replies already queued for this connection. */
  #serialise(channel: Channel, work: () => Promise<void> | void): void {
    channel.queuedReplies += 1
    channel.replies = channel.replies
      .then(work)
      .catch((error: Error) => debug('%s', error.message))
      .finally(() => (channel.queuedReplies -= 1))
  }
}

function byteLength(text: string | null): number {
  return text === null ? 1 : Buffer.byteLength(text)
}

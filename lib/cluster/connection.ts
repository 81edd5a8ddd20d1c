import type { Socket } from 'node:net'
import { TLSSocket, type PeerCertificate } from 'node:tls'
import PQueue from 'p-queue'
import { debugFor } from '../base/debug.js'
import { ConnectionClosedError, FrameTooLargeError, ProtocolError, QueueOverflowError, ReplicationTimeoutError } from '../base/errors.js'
import { TAG_BYTES, type RecordOpener, type RecordSealer } from '../security/record.js'
import { FRAME_HEADER_BYTES, FrameDecoder, frameHeader, SEALED_RECORD, type Frame } from '../protocol/frame.js'
import {
  AckLevel,
  decodeMessage,
  encodeDataMessage,
  encodeMessage,
  isDataMessage,
  isDataType,
  MessageType,
  type DataMessage,
  type Message,
  type OutgoingData,
  type MessageLimits,
} from '../protocol/messages.js'

const debug = debugFor('transport')

/** Cap on a frame before the handshake completes: handshake messages are small, strangers get little. */
export const HANDSHAKE_MAX_FRAME_BYTES = 4096

/** How long received frames are handled in one go before the event loop gets a turn, in ms. */
const SLICE_MS = 2

/** Bytes of received frames waiting to be handled past which the socket is paused. */
const MAX_BACKLOG_BYTES = 1024 * 1024

/** Target size of an encrypted record's contents. */
const RECORD_BYTES = 128 * 1024

/** Frames queued in order; those queued after `secure()` go out as encrypted records. */
interface PendingGroup {
  readonly sealed: boolean
  readonly frames: Buffer[]
  bytes: number
}

export type { OutgoingData } from '../protocol/messages.js'

export interface ConnectionOptions {
  /** Cap on one frame, header included; a larger length prefix closes the connection. */
  readonly maxFrameBytes: number
  readonly limits: MessageLimits
  /** Cap on bytes queued for sending (ours plus the socket's); past it the queue is dropped. */
  readonly maxQueueBytes: number
  /** For logs: `was1->was2` or `was1<-127.0.0.12:51234`. */
  readonly label: string
  /** Close the connection after this long without any byte in or out. */
  readonly idleTimeoutMs: number
  /** Counters shared by every connection of the node. */
  readonly stats: ConnectionStats
  /** How long a data message waits for its ack before the wait is given up. */
  readonly ackTimeoutMs: number
}

export interface ConnectionHandlers {
  /** Every checked message, in order. A throw closes the connection as a protocol error. */
  message(message: Message, connection: Connection): void
  /** Once, when the connection is gone; `error` says why unless it was closed on purpose. */
  closed(error: Error | undefined, connection: Connection): void
  /** The send queue overflowed and was dropped; data sends are refused until `drained`. */
  overflow?(connection: Connection): void
  /** After an overflow, the socket has caught up: the peer should now be resynchronised. */
  drained?(connection: Connection): void
}

export interface ConnectionStats {
  framesIn: number
  framesOut: number
  bytesIn: number
  bytesOut: number
  /** Frames not sent because they exceed what the peer accepts (a session too large for it). */
  oversizedFrames: number
}

/**
 * Catch-up pings use sequence numbers from here on, far above any the heartbeat reaches (one a
 * second would take 136 years), so their pongs are told apart.
 */
const CATCH_UP_SEQ_BASE = 2 ** 32

/** What sealing adds around a frame: the record's own header and its authentication tag. */
const RECORD_OVERHEAD_BYTES = FRAME_HEADER_BYTES + TAG_BYTES

/**
 * One TCP connection to a peer: frames in and out, checked messages, batched writes and acks.
 * It knows nothing of sessions. Writes made in the same event-loop turn go out in one `write`,
 * through a p-queue of concurrency 1 that keeps them in order and waits for the socket to drain.
 */
export class Connection {
  readonly label: string
  readonly #stats: ConnectionStats
  readonly #socket: Socket
  readonly #options: ConnectionOptions
  readonly #decoder: FrameDecoder
  readonly #writes = new PQueue({ concurrency: 1 })
  #handlers: ConnectionHandlers
  #pending: PendingGroup[] = []
  #pendingBytes = 0
  #sealer: RecordSealer | undefined
  #opener: RecordOpener | undefined
  /** Frames inside decrypted records. */
  #inner: FrameDecoder | undefined
  #flushScheduled = false
  /**
   * This side's writing has ended: `close()` sent its FIN, or the peer's FIN made the socket end
   * ours. Nothing more may be written (a write after the end is an error, and the error a reset).
   */
  #ended = false
  /** Frames received and not yet handled (see `#work`), and where handling stands in them. */
  #received: Frame[] = []
  #receivedNext = 0
  #receivedBytes = 0
  /** Frames of the record being handled. */
  #innerFrames: Frame[] = []
  #innerNext = 0
  /** A slice of handling is scheduled. */
  #working = false
  /** The socket is paused while received frames wait. */
  #paused = false
  /**
   * Settles when the last write has been handed to the OS (its callback). Not `writableLength`
   * with 'drain': a TLS socket buffers a write it accepted while it encrypts it, and 'drain' only
   * follows a write that returned false, so waiting for it could last until the socket closed.
   */
  #written: Promise<void> = Promise.resolve()
  #overflowed = false
  #closing = false
  #closed = false
  #nextAckId = 1
  /** In ack id order, which is also the order of their deadlines. */
  readonly #ackWaiters = new Map<number, { resolve: () => void; reject: (error: Error) => void; deadline: number }>()
  #ackTimer: NodeJS.Timeout | undefined
  #ackDue = 0
  /** The largest frame the peer accepts, as it said in the handshake. */
  #peerMaxFrameBytes: number
  /** The protocol version the handshake agreed on; undefined until then (handshake frames only). */
  #protocol: number | undefined
  /** Sequence numbers of the pings that probe whether a peer caught up after an overflow (see `#catchUp`). */
  #catchUpSeq = CATCH_UP_SEQ_BASE
  #caughtUp: (() => void) | undefined
  #resolveDone!: () => void
  /** Resolves when the connection has closed, for whatever reason. */
  readonly done = new Promise<void>((resolve) => (this.#resolveDone = resolve))

  constructor(socket: Socket, options: ConnectionOptions, handlers: ConnectionHandlers) {
    this.#socket = socket
    this.#options = options
    this.label = options.label
    this.#handlers = handlers
    this.#stats = options.stats
    this.#peerMaxFrameBytes = HANDSHAKE_MAX_FRAME_BYTES
    this.#decoder = new FrameDecoder(Math.min(HANDSHAKE_MAX_FRAME_BYTES, options.maxFrameBytes))
    socket.setNoDelay(true)
    socket.setTimeout(options.idleTimeoutMs, () => this.destroy(new Error(`nothing received or sent for ${options.idleTimeoutMs} ms`)))
    socket.on('data', (chunk: Buffer) => this.#receive(chunk))
    socket.on('end', () => (this.#ended = true))
    // Frames received before the connection ended are still handled (a graceful close sends its
    // last changes just before it; a reset may follow them), all at once: nothing comes after them.
    socket.on('error', (error) => {
      if (!this.#closed && this.#hasBacklog()) this.#work(true)
      this.#finish(error)
    })
    socket.on('close', () => {
      if (!this.#closed && this.#hasBacklog()) this.#work(true)
      this.#finish(undefined)
    })
  }

  get closed(): boolean {
    return this.#closed
  }

  /** True from the moment `close()` or `destroy()` is called. */
  get closing(): boolean {
    return this.#closing || this.#closed
  }

  get remoteAddress(): string {
    return `${this.#socket.remoteAddress}:${this.#socket.remotePort}`
  }

  /** Bytes waiting to be written: queued here plus buffered in the socket. */
  get queuedBytes(): number {
    return this.#pendingBytes + this.#socket.writableLength
  }

  /** Hands the connection to a new owner (the handshake hands it over when it is done). */
  setHandlers(handlers: ConnectionHandlers): void {
    this.#handlers = handlers
  }

  /**
   * The handshake succeeded: frames up to the full size are accepted from now on, and frames sent
   * are kept within `peerMaxFrameBytes`, the cap the peer announced. Every frame from now on, in
   * and out, is in the agreed `protocol` version.
   */
  established(peerMaxFrameBytes: number, protocol: number): void {
    this.#decoder.maxFrameBytes = this.#options.maxFrameBytes
    this.#peerMaxFrameBytes = peerMaxFrameBytes
    this.#protocol = protocol
  }

  /** The protocol version agreed in the handshake; undefined while it runs. */
  get protocol(): number | undefined {
    return this.#protocol
  }

  /**
   * The largest frame that may be sent: what both sides accept, less what sealing adds around it.
   * Whoever batches items into one message sizes it to this.
   */
  get frameBudget(): number {
    return Math.min(this.#options.maxFrameBytes, this.#peerMaxFrameBytes) - RECORD_OVERHEAD_BYTES
  }

  /**
   * From now on every frame sent is encrypted into records by `sealer`, and every frame received must
   * be a record that `opener` authenticates. Frames queued before this call still go out in clear.
   */
  secure(sealer: RecordSealer, opener: RecordOpener): void {
    this.#sealer = sealer
    this.#opener = opener
    this.#inner = new FrameDecoder(this.#options.maxFrameBytes)
  }

  /** With TLS, the peer's certificate (already verified against `ca`); undefined over plain TCP. */
  peerCertificate(): PeerCertificate | undefined {
    if (!(this.#socket instanceof TLSSocket)) return undefined
    const certificate = this.#socket.getPeerCertificate()
    return certificate && Object.keys(certificate).length > 0 ? certificate : undefined
  }

  /** Queues one message. False when it was not queued: the connection is closed or overflowing. */
  send(message: Message): boolean {
    const data = isDataMessage(message)
    if (this.#closed || this.#ended || (this.#overflowed && data)) return false
    return this.#enqueue(encodeMessage(message, this.#protocol))
  }

  /**
   * Sends a data message. With an ack level, resolves once the peer acknowledged it (or anything
   * sent after it) and rejects if the connection closes or overflows first; without, returns
   * undefined and whether it was queued does not matter to the caller (resyncs repair losses).
   */
  sendData(message: OutgoingData, level: AckLevel): Promise<void> | undefined {
    if (this.#closed || this.#ended || this.#overflowed) {
      return level === AckLevel.NONE
        ? undefined
        : Promise.reject(
            this.#overflowed ? new QueueOverflowError(this.label, this.#options.maxQueueBytes) : new ConnectionClosedError(this.label),
          )
    }
    if (level === AckLevel.NONE) {
      this.#enqueue(encodeDataMessage(message, 0, AckLevel.NONE, this.#protocol))
      return undefined
    }
    const ackId = this.#nextAckId++
    const frame = encodeDataMessage(message, ackId, level, this.#protocol)
    if (frame.length > this.frameBudget) {
      this.#enqueue(frame) // counts it
      return Promise.reject(new FrameTooLargeError(this.label, frame.length, this.frameBudget))
    }
    const deadline = Date.now() + this.#options.ackTimeoutMs
    const acked = new Promise<void>((resolve, reject) => this.#ackWaiters.set(ackId, { resolve, reject, deadline }))
    this.#ackTimer ??= setTimeout(() => this.#expireAcks(), this.#options.ackTimeoutMs)
    if (!this.#enqueue(frame)) {
      this.#ackWaiters
        .get(ackId)
        ?.reject(this.#overflowed ? new QueueOverflowError(this.label, this.#options.maxQueueBytes) : new ConnectionClosedError(this.label))
      this.#ackWaiters.delete(ackId)
    }
    return acked
  }

  /**
   * Adds an encoded frame to the next write; false if it was not queued: the queue is full (which
   * starts an overflow), or the frame is larger than the peer accepts (which is counted and dropped:
   * sending it would only make the peer close the connection, again and again).
   */
  #enqueue(frame: Buffer): boolean {
    if (frame.length > this.frameBudget) {
      this.#stats.oversizedFrames += 1
      debug('%s: a frame of %d bytes exceeds the %d the peer accepts: not sent', this.label, frame.length, this.frameBudget)
      return false
    }
    if (this.queuedBytes + frame.length > this.#options.maxQueueBytes) {
      this.#overflow()
      return false
    }
    const sealed = this.#sealer !== undefined
    let group = this.#pending.at(-1)
    if (!group || group.sealed !== sealed) {
      group = { sealed, frames: [], bytes: 0 }
      this.#pending.push(group)
    }
    group.frames.push(frame)
    group.bytes += frame.length
    this.#pendingBytes += frame.length
    if (!this.#flushScheduled) {
      this.#flushScheduled = true
      // Let the rest of this turn's messages join the same write.
      setImmediate(() => void this.#writes.add(() => this.#flush()))
    }
    return true
  }

  /** Resolves when everything queued so far has been handed to the OS, or the connection closed. */
  async flushed(): Promise<void> {
    await this.#writes.onIdle()
    if (this.#flushScheduled) {
      await new Promise((resolve) => setImmediate(resolve))
      await this.#writes.onIdle()
    }
    await this.#writtenOrClosed()
  }

  /**
   * Sends what is queued, then ends the connection and waits for the peer to end its side, all
   * within `timeoutMs`. Destroying at once would be a reset whenever a byte from the peer is still
   * unread here, and a reset makes the peer's kernel drop what it received but had not delivered.
   */
  async close(timeoutMs: number, bye?: Message): Promise<void> {
    if (this.#closing || this.#closed) return
    this.#closing = true
    if (bye) this.send(bye)
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))
    await Promise.race([this.flushed(), timedOut])
    if (!this.#closed) {
      this.#ended = true
      this.#socket.end()
      await Promise.race([this.done, timedOut])
    }
    clearTimeout(timer)
    this.destroy()
  }

  /** Closes at once; queued frames are lost. `error` is reported to the owner. */
  destroy(error?: Error): void {
    this.#closing = true
    if (error) debug('%s: closing: %s', this.label, error.message)
    this.#finish(error)
    this.#socket.destroy()
  }

  #receive(chunk: Buffer): void {
    if (this.#closed) return
    this.#stats.bytesIn += chunk.length
    try {
      for (const frame of this.#decoder.push(chunk)) {
        this.#received.push(frame)
        this.#receivedBytes += frame.payload.length
      }
    } catch (error) {
      this.destroy(error as Error)
      return
    }
    if (!this.#working) this.#work()
  }

  /**
   * Handles received frames for at most `SLICE_MS`, then yields to the event loop (the socket paused
   * while more than `MAX_BACKLOG_BYTES` wait), so a peer streaming a state transfer never holds this node up for long:
   * requests are served between slices. Records are opened one at a time, as their turn comes
   * (a frame after the handshake's last message may be the first sealed one). Acks go out after
   * each slice. `all`: everything waiting, at once (the connection is ending).
   */
  #work(all = false): void {
    this.#working = false
    if (this.#closed) return
    const deadline = all ? Number.POSITIVE_INFINITY : performance.now() + SLICE_MS
    try {
      while (!this.#closed) {
        const inner = this.#innerFrames
        if (this.#innerNext < inner.length) {
          const frame = inner[this.#innerNext]!
          inner[this.#innerNext++] = undefined as unknown as Frame
          this.#stats.framesIn += 1
          this.#dispatch(decodeMessage(frame, this.#options.limits, this.#protocol))
        } else if (this.#receivedNext < this.#received.length) {
          const frame = this.#received[this.#receivedNext]!
          this.#received[this.#receivedNext++] = undefined as unknown as Frame
          this.#receivedBytes -= frame.payload.length
          if (!this.#opener) {
            this.#stats.framesIn += 1
            this.#dispatch(decodeMessage(frame, this.#options.limits, this.#protocol))
          } else {
            if (frame.type !== SEALED_RECORD)
              throw new ProtocolError(`message 0x${frame.type.toString(16)} in clear after the secure handshake`)
            const plain = this.#opener.open(frameHeader(frame.type, frame.payload.length, this.#protocol), frame.payload)
            this.#innerFrames = this.#inner!.push(plain)
            this.#innerNext = 0
            if (this.#inner!.bufferedBytes > 0) throw new ProtocolError('a record ends inside a frame')
          }
        } else {
          break
        }
        if (performance.now() >= deadline) break
      }
    } catch (error) {
      this.destroy(error as Error)
      return
    }
    if (this.#closed) return
    if (this.#ackDue > 0) {
      this.send({ type: MessageType.ACK, ackId: this.#ackDue })
      this.#ackDue = 0
    }
    if (this.#hasBacklog()) {
      // More waits: let timers and other sockets run first. Reading goes on (what is read is safe
      // from a reset that would discard it in the kernel) unless too much is waiting already.
      if (!this.#paused && this.#receivedBytes > MAX_BACKLOG_BYTES) {
        this.#paused = true
        this.#socket.pause()
      }
      this.#working = true
      setImmediate(() => this.#work())
      return
    }
    this.#received = []
    this.#receivedNext = 0
    this.#receivedBytes = 0
    this.#innerFrames = []
    this.#innerNext = 0
    if (this.#paused) {
      this.#paused = false
      this.#socket.resume()
    }
  }

  #hasBacklog(): boolean {
    return this.#innerNext < this.#innerFrames.length || this.#receivedNext < this.#received.length
  }

  #dispatch(message: Message): void {
    if (message.type === MessageType.ACK) {
      this.#settleAcks(message.ackId)
      return
    }
    // Either side may ping (the heartbeat, a catch-up probe); pongs come straight from here.
    if (message.type === MessageType.PING) this.send({ type: MessageType.PONG, seq: message.seq })
    if (message.type === MessageType.PONG && message.seq === this.#catchUpSeq) this.#caughtUp?.()
    const ack = isDataMessage(message) ? message.ackLevel : AckLevel.NONE
    if (ack === AckLevel.RECEIVED) this.#ackDue = Math.max(this.#ackDue, (message as DataMessage).ackId)
    this.#handlers.message(message, this)
    if (ack === AckLevel.APPLIED) this.#ackDue = Math.max(this.#ackDue, (message as DataMessage).ackId)
  }

  #settleAcks(upTo: number): void {
    for (const [id, waiter] of this.#ackWaiters) {
      if (id > upTo) break
      this.#ackWaiters.delete(id)
      waiter.resolve()
    }
  }

  /** Gives up on acks a peer withholds, so their waiters do not pile up while the connection lives. */
  #expireAcks(): void {
    this.#ackTimer = undefined
    const now = Date.now()
    for (const [id, waiter] of this.#ackWaiters) {
      if (waiter.deadline > now) {
        this.#ackTimer = setTimeout(() => this.#expireAcks(), waiter.deadline - now)
        return
      }
      this.#ackWaiters.delete(id)
      waiter.reject(new ReplicationTimeoutError([this.label], this.#options.ackTimeoutMs))
    }
  }

  async #flush(): Promise<void> {
    this.#flushScheduled = false
    const groups = this.#pending
    this.#pending = []
    this.#pendingBytes = 0
    if (groups.length === 0 || this.#closed || this.#ended) return
    const chunks: Buffer[] = []
    for (const group of groups) {
      this.#stats.framesOut += group.frames.length
      if (group.sealed) chunks.push(...this.#seal(group.frames))
      else chunks.push(...group.frames)
    }
    // An overflow empties the groups it leaves behind: nothing to write, and no write to wait for.
    if (chunks.length === 0) return
    let written!: () => void
    this.#written = new Promise((resolve) => (written = resolve))
    // The parts go out as they are, not joined: corked, the socket writes them in one writev.
    const socket = this.#socket
    let accepted = true
    socket.cork()
    for (let i = 0; i < chunks.length; i++) {
      const chunk = chunks[i]!
      this.#stats.bytesOut += chunk.length
      // The last callback also runs (with an error) if the socket is destroyed first.
      accepted = i === chunks.length - 1 ? socket.write(chunk, () => written()) : socket.write(chunk)
    }
    socket.uncork()
    if (!accepted) await this.#drainOrClose()
  }

  /**
   * Packs whole frames into records of up to 128 KiB (a larger frame gets a record of its own): one
   * encryption per record, not per frame, and never so much at once that the receiver stalls on it.
   */
  #seal(frames: readonly Buffer[]): Buffer[] {
    const capacity = Math.min(RECORD_BYTES, this.frameBudget)
    const records: Buffer[] = []
    let batch: Buffer[] = []
    let size = 0
    const close = () => {
      if (batch.length === 0) return
      const header = frameHeader(SEALED_RECORD, size + TAG_BYTES, this.#protocol)
      // One cipher call over the joined frames (cheaper than one per small frame); header,
      // ciphertext and tag go to the socket as they are.
      records.push(header, ...this.#sealer!.sealParts(header, batch.length === 1 ? batch[0]! : Buffer.concat(batch, size)))
      batch = []
      size = 0
    }
    for (const frame of frames) {
      if (size + frame.length > capacity) close()
      batch.push(frame)
      size += frame.length
    }
    close()
    return records
  }

  #overflow(): void {
    if (this.#overflowed) return
    this.#overflowed = true
    debug('%s: send queue passed %d bytes: dropped', this.label, this.#options.maxQueueBytes)
    // Only data is dropped: control messages queued with it (acks, pongs, replies) still go out.
    for (const group of this.#pending) {
      const kept = group.frames.filter((frame) => !isDataFrame(frame))
      group.frames.splice(0, group.frames.length, ...kept)
      group.bytes = kept.reduce((sum, frame) => sum + frame.length, 0)
    }
    this.#pendingBytes = this.#pending.reduce((sum, group) => sum + group.bytes, 0)
    const error = new QueueOverflowError(this.label, this.#options.maxQueueBytes)
    for (const waiter of this.#ackWaiters.values()) waiter.reject(error)
    this.#ackWaiters.clear()
    this.#handlers.overflow?.(this)
    void this.#catchUp()
  }

  /**
   * After an overflow: waits until the peer has read everything sent so far, then lets data through
   * again and asks for a resync. An empty socket buffer is not proof (the network can hold
   * megabytes a stalled peer has not read); a pong to a ping sent after the overflow is, since the
   * peer answers in order. A peer that never answers leaves data refused until the connection
   * closes (its heartbeat declares it dead), rather than resynchronised over and over.
   */
  async #catchUp(): Promise<void> {
    // Writes already handed over finish first.
    await this.#writes.onIdle()
    await this.#writtenOrClosed()
    if (this.#closed) return
    this.#catchUpSeq += 1
    const seq = this.#catchUpSeq
    const answered = new Promise<void>((resolve) => (this.#caughtUp = resolve))
    this.send({ type: MessageType.PING, seq })
    await Promise.race([answered, this.done])
    if (this.#closed || seq !== this.#catchUpSeq) return
    this.#overflowed = false
    debug('%s: caught up after an overflow', this.label)
    this.#handlers.drained?.(this)
  }

  #writtenOrClosed(): Promise<void> {
    return this.#closed ? Promise.resolve() : Promise.race([this.#written, this.done])
  }

  #drainOrClose(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.#socket.off('drain', done)
        this.#socket.off('close', done)
        resolve()
      }
      this.#socket.on('drain', done)
      this.#socket.on('close', done)
    })
  }

  #finish(error: Error | undefined): void {
    if (this.#closed) return
    this.#closed = true
    this.#received = []
    this.#innerFrames = []
    this.#pending = []
    this.#pendingBytes = 0
    const closedError = new ConnectionClosedError(this.label)
    for (const waiter of this.#ackWaiters.values()) waiter.reject(closedError)
    this.#ackWaiters.clear()
    clearTimeout(this.#ackTimer)
    this.#writes.clear()
    this.#socket.destroy()
    this.#resolveDone()
    this.#handlers.closed(error, this)
  }
}

function isDataFrame(frame: Buffer): boolean {
  return isDataType(frame[FRAME_HEADER_BYTES - 1] ?? -1)
}

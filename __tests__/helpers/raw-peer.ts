import { connect, createServer, type Socket } from 'node:net'
import { FrameDecoder } from '../../lib/protocol/frame.js'
import { randomBytes } from 'node:crypto'
import { encodeFrame, frameHeader, PROTOCOL_VERSION, SEALED_RECORD } from '../../lib/protocol/frame.js'
import { deriveSecretKey, proof, recordKeys } from '../../lib/security/keys.js'
import { RecordSealer } from '../../lib/security/record.js'
import { decodeMessage, encodeMessage, MessageType, type Hello, type Message } from '../../lib/protocol/messages.js'
import { pack } from './msgpack.js'

const limits = { session: { maxSessionBytes: 1 << 20, maxDepth: 32, maxContainerLength: 1 << 20 }, maxBatch: 10_000 }

/**
 * A hand-driven peer on a real socket: sends exactly the bytes a test wants and collects what the
 * node answers. For handshake, refusal and bad-input tests.
 */
export class RawPeer {
  readonly socket: Socket
  readonly received: Message[] = []
  /** The protocol version in the header of each received frame, in the order of `received`. */
  readonly frameVersions: number[] = []
  readonly closed: Promise<void>
  readonly #decoder = new FrameDecoder(1 << 24)
  #waiters: Array<() => void> = []

  private constructor(socket: Socket) {
    this.socket = socket
    socket.on('data', (chunk: Buffer) => {
      for (const frame of this.#decoder.push(chunk)) {
        this.received.push(decodeMessage(frame, limits))
        this.frameVersions.push(frame.version)
      }
      this.#wake()
    })
    this.closed = new Promise((resolve) => socket.on('close', () => resolve()))
    void this.closed.then(() => this.#wake())
    socket.on('error', () => undefined)
  }

  static connect(host: string, port: number, localAddress?: string): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port, localAddress }, () => resolve(new RawPeer(socket)))
      socket.once('error', reject)
    })
  }

  /**
   * A hand-driven listener: each connection to `host:port` is handed to `onPeer` as a RawPeer (a
   * stranger squatting on a peer's address). `close()` drops every connection and stops listening.
   */
  static async accept(host: string, port: number, onPeer: (peer: RawPeer) => void): Promise<{ close(): Promise<void> }> {
    const peers = new Set<RawPeer>()
    const server = createServer((socket) => {
      const peer = new RawPeer(socket)
      peers.add(peer)
      void peer.closed.then(() => peers.delete(peer))
      onPeer(peer)
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => resolve())
    })
    return {
      close: async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()))
        for (const peer of peers) peer.destroy()
        await closed
      },
    }
  }

  send(message: Message): void {
    this.socket.write(encodeMessage(message))
  }

  /** Sends HELLO and, once WELCOME arrives, AUTH without a proof: the handshake of a node without a secret. */
  async handshake(
    hello: Omit<Hello, 'type' | 'nonce' | 'keyId' | 'maxFrameBytes'> & Partial<Pick<Hello, 'nonce' | 'keyId' | 'maxFrameBytes'>>,
  ): Promise<Message | undefined> {
    this.send({ type: MessageType.HELLO, nonce: randomBytes(32), keyId: null, maxFrameBytes: 1 << 20, ...hello })
    const answer = await this.next((message) => message.type === MessageType.WELCOME || message.type === MessageType.REFUSE)
    if (answer?.type !== MessageType.WELCOME) return answer
    this.send({ type: MessageType.AUTH, proof: null })
    return this.next((message) => message.type === MessageType.READY || message.type === MessageType.REFUSE)
  }

  sendBytes(bytes: Uint8Array): void {
    this.socket.write(bytes)
  }

  #sealer: RecordSealer | undefined

  /**
   * The handshake of a peer that knows `secret` (an authenticated peer, possibly a malicious one).
   * Afterwards `sendSealed` sends frames in records the node accepts.
   */
  async secureHandshake(hello: { cluster: string; nodeId: string; incarnation?: string }, secret: string): Promise<Message | undefined> {
    const key = await deriveSecretKey(secret)
    const sent: Hello = {
      type: MessageType.HELLO,
      protocol: PROTOCOL_VERSION,
      incarnation: 'raw',
      maxFrameBytes: 1 << 20,
      ...hello,
      nonce: randomBytes(32),
      keyId: key.id,
    }
    this.send(sent)
    const welcome = await this.next((message) => message.type === MessageType.WELCOME || message.type === MessageType.REFUSE)
    if (welcome?.type !== MessageType.WELCOME) return welcome
    const transcript = pack([
      sent.protocol,
      sent.cluster,
      sent.nodeId,
      sent.incarnation,
      sent.maxFrameBytes,
      sent.nonce,
      welcome.nodeId,
      welcome.incarnation,
      welcome.maxFrameBytes,
      welcome.nonce,
    ])
    this.send({ type: MessageType.AUTH, proof: proof(key, 'dialer', transcript) })
    const ready = await this.next((message) => message.type === MessageType.READY || message.type === MessageType.REFUSE)
    if (ready?.type === MessageType.READY) this.#sealer = new RecordSealer(recordKeys(key, sent.nonce, welcome.nonce).dialerToAcceptor)
    return ready
  }

  /** After `secureHandshake`: sends a frame of `type` with a raw payload, inside a proper record. */
  sendSealed(type: number, payload: Uint8Array): void {
    const frame = encodeFrame(type, payload)
    const header = frameHeader(SEALED_RECORD, frame.length + 16)
    this.socket.write(Buffer.concat([header, this.#sealer!.seal(header, frame)]))
  }

  /** Resolves with the first received message of `type` (or matching), or undefined if the socket closes first. */
  async next(type: number | ((message: Message) => boolean)): Promise<Message | undefined> {
    const match = typeof type === 'number' ? (message: Message) => message.type === type : type
    for (;;) {
      const found = this.received.find(match)
      if (found) return found
      if (this.socket.destroyed) return undefined
      await new Promise<void>((resolve) => this.#waiters.push(resolve))
    }
  }

  destroy(): void {
    this.socket.destroy()
  }

  #wake(): void {
    const waiters = this.#waiters
    this.#waiters = []
    for (const wake of waiters) wake()
  }
}

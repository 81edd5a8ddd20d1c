import { connect, type Socket } from 'node:net'
import { FrameDecoder } from '../../lib/cluster/frame.js'
import { randomBytes } from 'node:crypto'
import { decodeMessage, encodeMessage, MessageType, type Hello, type Message } from '../../lib/cluster/messages.js'

const limits = { session: { maxSessionBytes: 1 << 20, maxDepth: 32, maxContainerLength: 1 << 20 }, maxBatch: 10_000 }

/**
 * A hand-driven peer on a real socket: sends exactly the bytes a test wants and collects what the
 * node answers. For handshake, refusal and bad-input tests.
 */
export class RawPeer {
  readonly socket: Socket
  readonly received: Message[] = []
  readonly closed: Promise<void>
  readonly #decoder = new FrameDecoder(1 << 24)
  #waiters: Array<() => void> = []

  private constructor(socket: Socket) {
    this.socket = socket
    socket.on('data', (chunk: Buffer) => {
      for (const frame of this.#decoder.push(chunk)) this.received.push(decodeMessage(frame, limits))
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

  send(message: Message): void {
    this.socket.write(encodeMessage(message))
  }

  /** Sends HELLO and, once WELCOME arrives, AUTH without a proof: the handshake of a node without a secret. */
  async handshake(hello: Omit<Hello, 'type' | 'nonce' | 'keyId'> & Partial<Pick<Hello, 'nonce' | 'keyId'>>): Promise<Message | undefined> {
    this.send({ type: MessageType.HELLO, nonce: randomBytes(32), keyId: null, ...hello })
    const answer = await this.next((message) => message.type === MessageType.WELCOME || message.type === MessageType.REFUSE)
    if (answer?.type !== MessageType.WELCOME) return answer
    this.send({ type: MessageType.AUTH, proof: null })
    return this.next((message) => message.type === MessageType.READY || message.type === MessageType.REFUSE)
  }

  sendBytes(bytes: Uint8Array): void {
    this.socket.write(bytes)
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

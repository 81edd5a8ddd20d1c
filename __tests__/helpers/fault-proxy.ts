import { connect, createServer, isIP, type Server, type Socket } from 'node:net'
import { FrameDecoder, FRAME_HEADER_BYTES } from '../../lib/protocol/frame.js'

/**
 * A transparent TCP proxy between two nodes (the target sees the client's address) that a test can break: `cut()` drops every connection through it
 * and refuses new ones (a network partition), `restore()` lets traffic through again, `delayMs`
 * holds every chunk toward the target that long (a slow link), and `tap` sees every chunk going to
 * the target and may rewrite or drop it.
 */
export class FaultProxy {
  readonly host: string
  readonly port: number
  readonly #target: { host: string; port: number }
  readonly #server: Server
  readonly #sockets = new Set<Socket>()
  readonly #clients = new Set<Socket>()
  #cut = false
  #paused = false
  /** Inspects (and may replace) each chunk sent toward the target; return null to drop it. */
  tap: ((chunk: Buffer) => Buffer | null) | undefined
  /** Holds each chunk toward the target this long; chunks keep their order. */
  delayMs = 0
  /**
   * Sees each whole frame toward the target (header included) and returns the frames to forward
   * instead: none to drop it, two to replay it, a changed one to tamper with it. Applies to
   * connections opened after it is set.
   */
  frameTap: ((frame: Buffer, index: number) => Buffer[]) | undefined
  /** As `frameTap`, for the frames the target sends back to the client. */
  replyFrameTap: ((frame: Buffer, index: number) => Buffer[]) | undefined

  private constructor(listen: { host: string; port: number }, target: { host: string; port: number }) {
    this.host = listen.host
    this.port = listen.port
    this.#target = target
    this.#server = createServer((client) => this.#pipe(client))
  }

  static async start(listen: { host: string; port: number }, target: { host: string; port: number }): Promise<FaultProxy> {
    const proxy = new FaultProxy(listen, target)
    await new Promise<void>((resolve, reject) => {
      proxy.#server.once('error', reject)
      proxy.#server.listen(listen.port, listen.host, () => resolve())
    })
    return proxy
  }

  /** A partition: every connection through the proxy drops, and new ones are refused at once. */
  cut(): void {
    this.#cut = true
    for (const socket of this.#sockets) socket.destroy()
    this.#sockets.clear()
  }

  restore(): void {
    this.#cut = false
  }

  /** Stops reading from the sending side: its socket buffers fill up, as with a stalled peer. */
  pause(): void {
    this.#paused = true
    for (const socket of this.#clients) socket.pause()
  }

  resume(): void {
    this.#paused = false
    for (const socket of this.#clients) socket.resume()
  }

  async close(): Promise<void> {
    this.cut()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }

  #pipe(client: Socket): void {
    if (this.#cut) {
      client.destroy()
      return
    }
    // Transparent: the target sees the client's own address, as it would without the proxy (a node
    // binds a peer's id to the address it connects from).
    const from = client.remoteAddress
    const localAddress = from && isIP(from) === isIP(this.#target.host) ? from : undefined
    const upstream = connect({ ...this.#target, localAddress })
    this.#sockets.add(client)
    this.#sockets.add(upstream)
    this.#clients.add(client)
    if (this.#paused) client.pause()
    const drop = () => {
      client.destroy()
      upstream.destroy()
      this.#sockets.delete(client)
      this.#sockets.delete(upstream)
      this.#clients.delete(client)
    }
    client.on('error', drop).on('close', drop)
    upstream.on('error', drop).on('close', drop)
    const toTarget = framesThrough(this.frameTap)
    client.on('data', (chunk: Buffer) => {
      const tapped = this.tap ? this.tap(chunk) : chunk
      const out = tapped && toTarget(tapped)
      if (!out) return
      if (this.delayMs > 0) setTimeout(() => upstream.write(out), this.delayMs)
      else upstream.write(out)
    })
    if (this.replyFrameTap) {
      const toClient = framesThrough(this.replyFrameTap)
      upstream.on('data', (chunk: Buffer) => {
        const out = toClient(chunk)
        if (out) client.write(out)
      })
    } else {
      upstream.pipe(client)
    }
  }
}

/** Passes a byte stream through `tap` frame by frame (as is, without one); null when nothing is left. */
function framesThrough(tap: ((frame: Buffer, index: number) => Buffer[]) | undefined): (chunk: Buffer) => Buffer | null {
  if (!tap) return (chunk) => chunk
  const decoder = new FrameDecoder(1 << 30)
  let index = 0
  return (chunk) => {
    const frames = decoder.push(chunk).flatMap((frame) => {
      const header = Buffer.alloc(FRAME_HEADER_BYTES)
      header.writeUInt32BE(frame.payload.length + 2, 0)
      header[4] = frame.version
      header[5] = frame.type
      return tap(Buffer.concat([header, frame.payload]), index++)
    })
    return frames.length > 0 ? Buffer.concat(frames) : null
  }
}

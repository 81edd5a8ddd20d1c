import { connect, createServer, type Server, type Socket } from 'node:net'

/**
 * A TCP proxy between two nodes that a test can break: `cut()` drops every connection through it
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
    const upstream = connect(this.#target)
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
    client.on('data', (chunk: Buffer) => {
      const out = this.tap ? this.tap(chunk) : chunk
      if (!out) return
      if (this.delayMs > 0) setTimeout(() => upstream.write(out), this.delayMs)
      else upstream.write(out)
    })
    upstream.pipe(client)
  }
}

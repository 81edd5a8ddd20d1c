import { freePort } from './child.js'
import { WatchedProcess } from './process-lines.js'

/**
 * A real redis-server of the test's own, on a free loopback port, keeping nothing on disk; never the
 * Redis some other program runs on this machine. `kill()` and `start()` again on the same port are
 * a Redis outage and its end.
 */
export class RedisServer {
  readonly host = '127.0.0.1'
  readonly port: number
  #process: WatchedProcess | undefined

  private constructor(port: number) {
    this.port = port
  }

  static async start(): Promise<RedisServer> {
    const server = new RedisServer(await freePort())
    await server.start()
    return server
  }

  get url(): string {
    return `redis://${this.host}:${this.port}`
  }

  /** Starts (again) on the same port; resolves once it accepts connections. */
  async start(): Promise<void> {
    const args = [
      '--port',
      String(this.port),
      '--bind',
      this.host,
      '--save',
      '',
      '--appendonly',
      'no',
      '--protected-mode',
      'no',
      '--loglevel',
      'notice',
    ]
    this.#process = new WatchedProcess('redis-server', args, { stdio: 'pipe' })
    await this.#process.waitFor(/Ready to accept connections/, 10_000)
  }

  /** SIGKILL: the outage a crash is. Everything it held is gone (it keeps nothing on disk). */
  async kill(): Promise<void> {
    await this.#process?.kill('SIGKILL')
    this.#process = undefined
  }

  async stop(): Promise<void> {
    await this.#process?.kill('SIGTERM')
    this.#process = undefined
  }
}

/**
 * HTTP from inside a namespace: fixtures/http-client.main.ts runs in the network's client
 * namespace and performs the requests it is sent over IPC; the cookie jar stays here, as with
 * `browse()` in web-node.ts.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import path from 'node:path'
import { FIXTURES, ROOT } from './child.js'
import type { Endpoint, NetnsNetwork } from './netns.js'
import type { CookieJar } from './web-node.js'

export interface Reply {
  status: number
  body: Record<string, unknown>
  setCookies: string[]
}

export class NetnsClient {
  readonly #child: ChildProcess
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>()
  #nextId = 1

  private constructor(network: NetnsNetwork, endpoint: Endpoint) {
    this.#child = fork(path.join(FIXTURES, 'http-client.main.ts'), [], {
      cwd: ROOT,
      ...network.forkOptions(endpoint),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    network.track(this.#child)
    this.#child.on('message', (message: { id?: number; result?: unknown; error?: string }) => {
      const pending = message.id === undefined ? undefined : this.#pending.get(message.id)
      if (!pending) return
      this.#pending.delete(message.id!)
      if (message.error !== undefined) pending.reject(new Error(message.error))
      else pending.resolve(message.result)
    })
    this.#child.once('exit', (code, signal) => {
      for (const pending of this.#pending.values()) pending.reject(new Error(`the HTTP client exited (${code ?? signal})`))
      this.#pending.clear()
    })
  }

  /** Starts the client in `endpoint`'s namespace ('client' unless told) and waits until it answers. */
  static async start(network: NetnsNetwork, endpoint: Endpoint = 'client'): Promise<NetnsClient> {
    const client = new NetnsClient(network, endpoint)
    const [message] = (await Promise.race([once(client.#child, 'message'), once(client.#child, 'exit')])) as [unknown]
    if ((message as { event?: string } | null)?.event !== 'ready') throw new Error('the HTTP client did not start in its namespace')
    return client
  }

  /** A GET through the jar (Set-Cookie taken back into it), as `browse()` does. */
  async browse(jar: CookieJar, url: string, timeoutMs = 10_000): Promise<Reply> {
    const reply = await this.#call<Reply>({ cmd: 'get', url, cookie: jar.header || undefined, timeoutMs })
    jar.take(reply.setCookies)
    return reply
  }

  /**
   * `count` GETs one after another, the i-th with the cookies of `jars[i % jars.length]` (not
   * updated): each one's duration in ms, measured inside the namespace.
   */
  time(jars: readonly CookieJar[], url: string, count: number, timeoutMs = 10_000): Promise<number[]> {
    return this.#call<number[]>({ cmd: 'time', url, cookies: jars.map((jar) => jar.header), count, timeoutMs })
  }

  async close(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return
    const exited = once(this.#child, 'exit')
    this.#child.kill('SIGKILL')
    await exited
  }

  #call<T>(request: Record<string, unknown>): Promise<T> {
    const id = this.#nextId++
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject })
      this.#child.send({ id, ...request })
    })
  }
}

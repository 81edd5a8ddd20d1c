import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import path from 'node:path'
import request from 'supertest'
import type { PeerStoreOptions } from '../../lib/index.js'
import { FIXTURES, ROOT } from './child.js'
import { EventLog } from './event-log.js'
import type { NetnsNetwork } from './netns.js'

const FIXTURE = path.join(FIXTURES, 'web-node.main.ts')

export type Framework = 'express5' | 'express4' | 'koa' | 'fastify'

/** What a web node is started with: fixtures/web-node.main.ts reads it from NODE_CONFIG (JSON). */
export interface WebNodeSpec {
  framework: Framework
  nodeId: string
  listen: string
  peers: { host: string; port: number; nodeId: string }[]
  http: { host: string; port: number }
  options?: PeerStoreOptions
  /** Express only: plain `session({ store })` instead of `peerSession` (no sticky routing, no takeover). */
  plainSession?: boolean
}

/** Where a node runs when not on this machine's own network: node `endpoint` of a namespaced network. */
export interface WebNodePlacement {
  network: NetnsNetwork
  endpoint: number
}

const running = new Set<WebNode>()

export async function stopAllWebNodes(): Promise<void> {
  await Promise.all([...running].map((node) => node.kill()))
}

/** A web server node (framework + PeerStore) in its own process: fixtures/web-node.main.ts, driven over IPC. */
export class WebNode {
  readonly spec: WebNodeSpec
  readonly #child: ChildProcess
  readonly #events = new EventLog<Record<string, unknown>>()
  readonly #exited: Promise<unknown>
  #nextId = 1

  private constructor(spec: WebNodeSpec, placement?: WebNodePlacement) {
    this.spec = spec
    this.#child = fork(FIXTURE, [], {
      cwd: ROOT,
      // In a namespace: `ip netns exec <ns> node --import tsx ...`, which keeps the IPC channel.
      ...(placement ? placement.network.forkOptions(placement.endpoint) : { execArgv: ['--import', 'tsx'] }),
      env: { ...process.env, NODE_CONFIG: JSON.stringify(spec) },
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    running.add(this)
    placement?.network.track(this.#child)
    this.#exited = once(this.#child, 'exit').then(() => running.delete(this))
    this.#child.on('message', (message: Record<string, unknown>) => this.#events.push(message))
  }

  static async start(spec: WebNodeSpec, placement?: WebNodePlacement): Promise<WebNode> {
    const node = new WebNode(spec, placement)
    await node.waitFor((event) => event.event === 'ready', 30_000)
    return node
  }

  get url(): string {
    return `http://${this.spec.http.host}:${this.spec.http.port}`
  }

  /** Every message the node has sent so far, replies to calls included. */
  get events(): readonly Record<string, unknown>[] {
    return this.#events.entries
  }

  waitFor(match: (event: Record<string, unknown>) => boolean, timeoutMs = 15_000): Promise<Record<string, unknown>> {
    return this.#events.waitFor(match, timeoutMs, 0, () => `${this.spec.nodeId}: event not seen within ${timeoutMs} ms`)
  }

  call<T>(cmd: string, arg?: string): Promise<T> {
    const id = this.#nextId++
    this.#child.send({ cmd, id, arg })
    return this.waitFor((event) => event.id === id).then((event) => event.result as T)
  }

  async kill(): Promise<void> {
    if (!running.has(this)) return
    this.#child.kill('SIGKILL')
    await this.#exited
  }
}

/** The cookies a browser would keep for one site, whichever node answers. */
export class CookieJar {
  readonly cookies = new Map<string, string>()

  constructor(initial?: Map<string, string>) {
    if (initial) for (const [name, value] of initial) this.cookies.set(name, value)
  }

  get header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ')
  }

  copy(): CookieJar {
    return new CookieJar(this.cookies)
  }

  /** Stores every Set-Cookie line of a response (an expired one removes the cookie). */
  take(setCookies: readonly string[]): void {
    for (const line of setCookies) {
      const [pair, ...attributes] = line.split(';')
      const eq = pair!.indexOf('=')
      const name = pair!.slice(0, eq).trim()
      const value = pair!.slice(eq + 1).trim()
      const expired = attributes.some((attribute) => /expires=thu, 01 jan 1970/i.test(attribute.trim())) || value === ''
      if (expired) this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
  }
}

/** A GET through the jar, with supertest against a real node's URL, as a browser would send it. */
export async function browse(
  jar: CookieJar,
  url: string,
): Promise<{ status: number; body: Record<string, unknown>; setCookies: string[] }> {
  const { origin, pathname, search } = new URL(url)
  const call = request(origin).get(pathname + search)
  if (jar.header) call.set('Cookie', jar.header)
  const response = await call
  const setCookies = (response.headers['set-cookie'] as unknown as string[] | undefined) ?? []
  jar.take(setCookies)
  const body = (response.type === 'application/json' ? response.body : { text: response.text }) as Record<string, unknown>
  return { status: response.status, body, setCookies }
}

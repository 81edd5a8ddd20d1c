import path from 'node:path'
import request from 'supertest'
import { ROOT } from './child.js'
import { WatchedProcess } from './process-lines.js'

export const EXAMPLE = path.join(ROOT, 'examples', 'express-app')
export const SECRET = 'demo test secret 0123456789abcdef'

/** One example-app node (examples/express-app/server.ts), configured as docker-compose.yml does. */
export function startAppNode(nodeId: string, host: string, httpPort: number, replicationPort: number, peer: string): WatchedProcess {
  return new WatchedProcess(process.execPath, ['--import', 'tsx', path.join(EXAMPLE, 'server.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      NODE_ID: nodeId,
      LISTEN: `${host}:${replicationPort}`,
      PEERS: peer,
      CLUSTER_SECRET: SECRET,
      HOST: host,
      PORT: String(httpPort),
    },
  })
}

/** A browser's cookies for one site: what a client behind the balancer holds. */
export class Browser {
  readonly cookies = new Map<string, string>()

  /** `timeoutMs`: how long to wait for each response (supertest's `response` timeout); none by default. */
  constructor(
    readonly base: string,
    readonly timeoutMs?: number,
  ) {}

  async post(pathname: string): Promise<Record<string, unknown>> {
    return this.#send(request(this.base).post(pathname).set('Accept', 'application/json'))
  }

  async get(pathname: string): Promise<Record<string, unknown>> {
    return this.#send(request(this.base).get(pathname))
  }

  async #send(call: request.Test): Promise<Record<string, unknown>> {
    const header = [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ')
    if (header) call.set('Cookie', header)
    if (this.timeoutMs !== undefined) void call.timeout({ response: this.timeoutMs })
    const response = await call
    for (const line of (response.headers['set-cookie'] as unknown as string[] | undefined) ?? []) {
      const [pair] = line.split(';')
      const eq = pair!.indexOf('=')
      this.cookies.set(pair!.slice(0, eq), pair!.slice(eq + 1))
    }
    if (response.status !== 200) throw new Error(`${response.status} from ${this.base}${call.url}: ${response.text}`)
    return response.body as Record<string, unknown>
  }
}

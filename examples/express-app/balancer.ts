import http, { type IncomingMessage, type ServerResponse } from 'node:http'

/**
 * The demo's load balancer: what HAProxy does with `cookie ROUTEID` in passive mode, in a few lines.
 * A request with a route cookie goes to the node it names while that node is up; otherwise to the
 * next healthy node in turn. Nodes are health-checked every `intervalMs`, and a node that refuses
 * a connection is marked down at once and the request tried on another.
 */
export interface Backend {
  readonly name: string
  readonly host: string
  readonly port: number
}

export interface Balancer {
  readonly server: http.Server
  healthy(): string[]
  /** Resolves once every node has passed a health check. */
  allHealthy(): Promise<void>
  close(): Promise<void>
}

export function startBalancer(options: {
  host: string
  port: number
  backends: Backend[]
  cookie?: string
  intervalMs?: number
  /** Told when a node goes up or down. */
  onChange?: (name: string, up: boolean) => void
}): Promise<Balancer> {
  const cookie = options.cookie ?? 'ROUTEID'
  // Nodes start up (as in HAProxy): a failed request or check takes one down at once.
  const up = new Map(options.backends.map((backend) => [backend.name, true]))
  const passed = new Set<string>()
  let allPassed: () => void
  const allHealthy = new Promise<void>((resolve) => (allPassed = resolve))
  const mark = (name: string, isUp: boolean) => {
    if (isUp && !passed.has(name)) {
      passed.add(name)
      if (passed.size === options.backends.length) allPassed()
    }
    if (up.get(name) === isUp) return
    up.set(name, isUp)
    options.onChange?.(name, isUp)
  }
  let turn = 0

  const check = (backend: Backend) => {
    const request = http.get({ host: backend.host, port: backend.port, path: '/healthz', timeout: 1000 }, (response) => {
      mark(backend.name, response.statusCode === 200)
      response.resume()
    })
    request.on('error', () => mark(backend.name, false))
    request.on('timeout', () => request.destroy(new Error('health check timed out')))
  }
  const checks = setInterval(() => options.backends.forEach(check), options.intervalMs ?? 1000)

  const choose = (req: IncomingMessage, tried: Set<string>): Backend | undefined => {
    const route = new RegExp(`(?:^|;\\s*)${cookie}=\\.?([^;]+)`).exec(req.headers.cookie ?? '')?.[1]
    const sticky = options.backends.find((backend) => backend.name === route)
    if (sticky && up.get(sticky.name) && !tried.has(sticky.name)) return sticky
    const candidates = options.backends.filter((backend) => up.get(backend.name) && !tried.has(backend.name))
    return candidates.length > 0 ? candidates[turn++ % candidates.length] : undefined
  }

  const forward = (req: IncomingMessage, res: ServerResponse, body: Buffer, tried: Set<string>) => {
    const backend = choose(req, tried)
    if (!backend) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('No node is up.\n')
      return
    }
    tried.add(backend.name)
    const upstream = http.request(
      {
        host: backend.host,
        port: backend.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, 'x-forwarded-for': req.socket.remoteAddress },
      },
      (response) => {
        res.writeHead(response.statusCode ?? 502, response.headers)
        response.pipe(res)
      },
    )
    upstream.on('error', () => {
      // The node is gone (killed): mark it down and try another, as HAProxy's redispatch does.
      mark(backend.name, false)
      if (!res.headersSent) forward(req, res, body, tried)
      else res.destroy()
    })
    upstream.end(body)
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => forward(req, res, Buffer.concat(chunks), new Set()))
  })

  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, options.host, () =>
      resolve({
        server,
        healthy: () => [...up].filter(([, isUp]) => isUp).map(([name]) => name),
        allHealthy: () => allHealthy,
        close: () =>
          new Promise<void>((done) => {
            clearInterval(checks)
            server.closeAllConnections()
            server.close(() => done())
          }),
      }),
    )
  })
}

/**
 * 1. HTTP throughput and latency of an Express app (routes that read, write, and serve a static
 * file; every request with its own session) on each session store, measured side by side in one run.
 *
 * The app runs pinned to core 0. The load generator (autocannon, in this process) runs on core 1;
 * so do the services a store needs besides the app: the PeerStore peer process, and Redis (moved to
 * core 1 for the run when it can be). The stores take turns: each of `runs` rounds starts every
 * store afresh and gives each route a warm-up and one run of `seconds`; the median run is reported.
 */
import autocannon from 'autocannon'
import { execFileSync } from 'node:child_process'
import { BenchChild } from './lib/process.js'
import { median, round } from './lib/stats.js'

export const VARIANTS = [
  'none',
  'memory-store',
  'memorystore',
  'connect-redis',
  'peer-store-bare',
  'peer-store',
  'peer-store-redis',
  'peer-2-async',
  'peer-2-sync',
] as const
export const ROUTES = ['/read', '/write', '/static/file.txt'] as const
export type Variant = (typeof VARIANTS)[number]

export interface HttpRow {
  variant: Variant
  route: string
  requestsPerSecond: number
  p50Ms: number
  p99Ms: number
  errors: number
  runs: number[]
  /**
   * CPU time the app process spent per request, in microseconds (median over the rounds). Unlike req/s, it
   * hardly moves when the machine is busy with something else: the cost of the store itself.
   */
  cpuMicrosPerRequest: number
  /** The same for the peer process (two-node stores only): the receiving end's cost. */
  peerCpuMicrosPerRequest?: number
  /** The same for redis-server (stores that use Redis), from its `INFO cpu`. */
  redisCpuMicrosPerRequest?: number
  /** Every process the store needs: app + peer process + redis-server, per request (medians added). */
  clusterCpuMicrosPerRequest?: number
}

/** One measured run of one route. */
interface Run {
  result: autocannon.Result
  cpuMicrosPerRequest: number
  peerCpuMicrosPerRequest?: number
  redisCpuMicrosPerRequest?: number
}

/** Stores that keep their sessions (or a tier of them) in Redis: its CPU counts toward theirs. */
const USES_REDIS: ReadonlySet<Variant> = new Set(['connect-redis', 'peer-store-redis'])

/** redis-server's CPU time so far (user + system), in µs, from `INFO cpu`. */
async function redisCpuMicros(): Promise<number> {
  const { Redis } = await import('ioredis')
  const client = new Redis('redis://127.0.0.1:6379', { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    await client.connect()
    const info = await client.info('cpu')
    const field = (name: string) =>
      Number(
        info
          .split('\n')
          .find((line) => line.startsWith(`${name}:`))
          ?.slice(name.length + 1) ?? Number.NaN,
      )
    return (field('used_cpu_user') + field('used_cpu_sys')) * 1e6
  } finally {
    client.disconnect()
  }
}

export interface HttpOptions {
  /** Which stores, in order (all by default). */
  variants?: readonly Variant[]
  runs: number
  seconds: number
  sessions: number
  connections: number
}

const PORT = 4700
const PEER_PORT = 4701

async function load(url: string, cookies: string[], seconds: number, connections: number): Promise<autocannon.Result> {
  let next = 0
  return autocannon({
    url,
    connections,
    duration: seconds,
    requests: [
      {
        setupRequest: (request: autocannon.Request) => ({
          ...request,
          headers: { ...request.headers, cookie: cookies[next++ % cookies.length]! },
        }),
      },
    ],
  })
}

/** Makes `count` sessions; each entry is the Cookie header a browser would then send (every cookie it got). */
async function login(base: string, count: number): Promise<string[]> {
  const cookies: string[] = []
  for (let i = 0; i < count; i++) {
    const response = await fetch(`${base}/login`)
    cookies.push(
      response.headers
        .getSetCookie()
        .map((line) => line.split(';')[0])
        .join('; '),
    )
  }
  return cookies
}

/** Moves the running redis-server to core 1 (where the load generator is), and back afterwards. */
function pinRedis(cores: string): void {
  try {
    const pid = execFileSync('pgrep', ['-x', 'redis-server']).toString().trim().split('\n')[0]
    if (pid) execFileSync('taskset', ['-pc', cores, pid], { stdio: 'ignore' })
  } catch {
    // Not running or not permitted: the result records that pinning was not verified.
  }
}

export async function runHttp(options: HttpOptions, log: (line: string) => void): Promise<HttpRow[]> {
  const variants = options.variants ?? VARIANTS
  const results = new Map<string, Run[]>(variants.flatMap((variant) => ROUTES.map((route) => [`${variant} ${route}`, []])))
  pinRedis('1')
  try {
    // Round-robin: every round measures every store once, so a machine that slows down or speeds up
    // during the run (this VM does, by up to a factor of two) weighs on every store alike.
    for (let round = 0; round < options.runs; round++) {
      for (const variant of variants) {
        const line = await measureVariant(variant, options, (route, result) => results.get(`${variant} ${route}`)!.push(result))
        log(`round ${round + 1}/${options.runs} ${variant.padEnd(15)} ${line}`)
      }
    }
  } finally {
    pinRedis('0,1')
  }
  return variants.flatMap((variant) =>
    ROUTES.map((route) => {
      const runs = results.get(`${variant} ${route}`)!
      const ordered = [...runs].sort((a, b) => a.result.requests.average - b.result.requests.average)
      const middle = ordered[Math.floor(ordered.length / 2)]!.result
      const peerCpu = runs.flatMap((run) => (run.peerCpuMicrosPerRequest === undefined ? [] : [run.peerCpuMicrosPerRequest]))
      const redisCpu = runs.flatMap((run) => (run.redisCpuMicrosPerRequest === undefined ? [] : [run.redisCpuMicrosPerRequest]))
      const appCpu = round(median(runs.map((run) => run.cpuMicrosPerRequest)), 1)
      const peerMedian = peerCpu.length > 0 ? round(median(peerCpu), 1) : undefined
      const redisMedian = redisCpu.length > 0 ? round(median(redisCpu), 1) : undefined
      const row: HttpRow = {
        variant,
        route,
        requestsPerSecond: round(median(runs.map((run) => run.result.requests.average)), 0),
        p50Ms: middle.latency.p50,
        p99Ms: middle.latency.p99,
        errors: runs.reduce((sum, run) => sum + run.result.errors + run.result.non2xx, 0),
        runs: runs.map((run) => round(run.result.requests.average, 0)),
        cpuMicrosPerRequest: appCpu,
        ...(peerMedian === undefined ? {} : { peerCpuMicrosPerRequest: peerMedian }),
        ...(redisMedian === undefined ? {} : { redisCpuMicrosPerRequest: redisMedian }),
        clusterCpuMicrosPerRequest: round(appCpu + (peerMedian ?? 0) + (redisMedian ?? 0), 1),
      }
      log(
        `${variant.padEnd(15)} ${route.padEnd(17)} ${String(row.requestsPerSecond).padStart(7)} req/s  ${row.cpuMicrosPerRequest} CPU µs/req (cluster ${row.clusterCpuMicrosPerRequest})  p50 ${row.p50Ms} ms  p99 ${row.p99Ms} ms  errors ${row.errors}`,
      )
      return row
    }),
  )
}

/** One store, freshly started: a warm-up and one measured run of every route. */
async function measureVariant(variant: Variant, options: HttpOptions, record: (route: string, run: Run) => void): Promise<string> {
  const peer = variant.startsWith('peer-2')
    ? new BenchChild('bench/nodes/peer-node.ts', { BENCH_PEER_PORT: String(PEER_PORT) }, 1)
    : undefined
  const server = new BenchChild(
    'bench/nodes/http-server.ts',
    { BENCH_VARIANT: variant, BENCH_PORT: String(PORT), BENCH_PEER_PORT: String(PEER_PORT) },
    0,
  )
  const measured: string[] = []
  try {
    if (peer) await peer.waitFor('ready')
    await server.waitFor('ready')
    const base = `http://127.0.0.101:${PORT}`
    const cookies = variant === 'none' ? [''] : await login(base, options.sessions)
    for (const route of ROUTES) {
      await load(`${base}${route}`, cookies, 1, options.connections) // warm-up
      const redis = USES_REDIS.has(variant)
      const cpuBefore = await server.call<number>('cpu')
      const peerCpuBefore = peer ? await peer.call<number>('cpu') : 0
      const redisCpuBefore = redis ? await redisCpuMicros() : 0
      const result = await load(`${base}${route}`, cookies, options.seconds, options.connections)
      const cpuMicrosPerRequest = ((await server.call<number>('cpu')) - cpuBefore) / result.requests.total
      const peerCpu = peer ? { peerCpuMicrosPerRequest: ((await peer.call<number>('cpu')) - peerCpuBefore) / result.requests.total } : {}
      const redisCpu = redis ? { redisCpuMicrosPerRequest: ((await redisCpuMicros()) - redisCpuBefore) / result.requests.total } : {}
      record(route, { result, cpuMicrosPerRequest, ...peerCpu, ...redisCpu })
      measured.push(`${route} ${round(result.requests.average, 0)} (${round(cpuMicrosPerRequest, 0)} µs)`)
    }
  } finally {
    await server.call('stop').catch(() => undefined)
    await server.stop()
    if (peer) {
      await peer.call('stop').catch(() => undefined)
      await peer.stop()
    }
  }
  return `req/s (CPU per request): ${measured.join(', ')}`
}

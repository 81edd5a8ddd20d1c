/**
 * 1. HTTP throughput and latency of an Express app (routes that read, write, and serve a static
 * file; every request with its own session) on each session store, measured side by side in one run.
 *
 * The app runs pinned to core 0. The load generator (autocannon, in this process) runs on core 1;
 * so do the services a store needs besides the app: the PeerStore peer process, and Redis (moved to
 * core 1 for the run when it can be). Each (store, route) pair gets a warm-up, then `runs` runs of
 * `seconds` each; the median run is reported.
 */
import autocannon from 'autocannon'
import { execFileSync } from 'node:child_process'
import { BenchChild } from './lib/process.js'
import { median, round } from './lib/stats.js'

export const VARIANTS = ['none', 'memory-store', 'memorystore', 'connect-redis', 'peer-store-bare', 'peer-store', 'peer-2-async', 'peer-2-sync'] as const
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
    requests: [{ setupRequest: (request: autocannon.Request) => ({ ...request, headers: { ...request.headers, cookie: cookies[next++ % cookies.length]! } }) }],
  } as autocannon.Options)
}

/** Makes `count` sessions; each entry is the Cookie header a browser would then send (every cookie it got). */
async function login(base: string, count: number): Promise<string[]> {
  const cookies: string[] = []
  for (let i = 0; i < count; i++) {
    const response = await fetch(`${base}/login`)
    cookies.push(response.headers.getSetCookie().map((line) => line.split(';')[0]).join('; '))
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
  const rows: HttpRow[] = []
  pinRedis('1')
  try {
    for (const variant of options.variants ?? VARIANTS) {
      const peer = variant.startsWith('peer-2') ? new BenchChild('bench/nodes/peer-node.ts', { BENCH_PEER_PORT: String(PEER_PORT) }, 1) : undefined
      if (peer) await peer.waitFor('ready')
      const server = new BenchChild('bench/nodes/http-server.ts', { BENCH_VARIANT: variant, BENCH_PORT: String(PORT), BENCH_PEER_PORT: String(PEER_PORT) }, 0)
      await server.waitFor('ready')
      const base = `http://127.0.0.101:${PORT}`
      const cookies = variant === 'none' ? [''] : await login(base, options.sessions)
      for (const route of ROUTES) {
        await load(`${base}${route}`, cookies, 1, options.connections) // warm-up
        const results: autocannon.Result[] = []
        for (let run = 0; run < options.runs; run++) results.push(await load(`${base}${route}`, cookies, options.seconds, options.connections))
        const ordered = [...results].sort((a, b) => a.requests.average - b.requests.average)
        const middle = ordered[Math.floor(ordered.length / 2)]!
        const row: HttpRow = {
          variant,
          route,
          requestsPerSecond: round(median(results.map((result) => result.requests.average)), 0),
          p50Ms: middle.latency.p50,
          p99Ms: middle.latency.p99,
          errors: results.reduce((sum, result) => sum + result.errors + result.non2xx, 0),
          runs: results.map((result) => round(result.requests.average, 0)),
        }
        rows.push(row)
        log(`${variant.padEnd(14)} ${route.padEnd(17)} ${String(row.requestsPerSecond).padStart(7)} req/s  p50 ${row.p50Ms} ms  p99 ${row.p99Ms} ms  errors ${row.errors}`)
      }
      await server.call('stop')
      await server.stop()
      if (peer) {
        await peer.call('stop')
        await peer.stop()
      }
    }
  } finally {
    pinRedis('0,1')
  }
  return rows
}

/**
 * 4. State transfer: how long a fresh node takes to receive every session (10k and 100k of about
 * 1 KB) from a live peer, and the latency of requests to that node while it happens.
 *
 * The fresh node (with its web server) runs on core 0; the source node and the requests (8 at a
 * time, each for a random session, from this process) on core 1. The transfer is encrypted. A
 * request for a session the fresh node has not received yet is answered by asking the peer.
 */
import signature from 'cookie-signature'
import { BenchChild } from './lib/process.js'
import { percentile, round } from './lib/stats.js'
import { SESSION_SECRET } from './lib/constants.js'

export interface TransferRow {
  sessions: number
  transferMs: number
  requests: number
  errors: number
  notFound: number
  p50Ms: number
  p99Ms: number
  maxMs: number
  /** How long the fresh node's event loop was held up at worst (p99 and max). */
  loopDelayP99Ms: number
  loopDelayMaxMs: number
}

export async function runTransfer(counts: number[], log: (line: string) => void): Promise<TransferRow[]> {
  const rows: TransferRow[] = []
  for (const count of counts) {
    const source = new BenchChild('bench/nodes/transfer-node.ts', { BENCH_ROLE: 'source' }, 1)
    await source.waitFor('ready')
    await source.call('load', count)
    const fresh = new BenchChild('bench/nodes/transfer-node.ts', { BENCH_ROLE: 'fresh' }, 0)
    const transferred = fresh.waitFor('transferred', 120_000)
    await fresh.waitFor('ready')
    let done = false
    void transferred.then(() => (done = true))
    const latencies: number[] = []
    let errors = 0
    let notFound = 0
    const worker = async () => {
      while (!done) {
        const sid = `t${Math.floor(Math.random() * count)}`
        const cookie = `connect.sid=${encodeURIComponent(`s:${signature.sign(sid, SESSION_SECRET)}`)}`
        const start = performance.now()
        try {
          const response = await fetch('http://127.0.0.152:4741/read', { headers: { cookie } })
          const body = (await response.json()) as { found: boolean }
          latencies.push(performance.now() - start)
          if (!response.ok) errors += 1
          else if (!body.found) notFound += 1
        } catch {
          errors += 1
        }
      }
    }
    await Promise.all(Array.from({ length: 8 }, worker))
    const info = await transferred
    const row: TransferRow = {
      sessions: Number(info.sessions),
      transferMs: Number(info.durationMs),
      requests: latencies.length,
      errors,
      notFound,
      p50Ms: round(percentile(latencies, 50), 2),
      p99Ms: round(percentile(latencies, 99), 2),
      maxMs: round(percentile(latencies, 100), 2),
      loopDelayP99Ms: round(Number(info.loopDelayP99Ms), 1),
      loopDelayMaxMs: round(Number(info.loopDelayMaxMs), 1),
    }
    rows.push(row)
    log(
      `transfer: ${row.sessions} sessions in ${row.transferMs} ms; ${row.requests} requests meanwhile, ${row.errors} errors, ` +
        `${row.notFound} not found, p50 ${row.p50Ms} ms, p99 ${row.p99Ms} ms, max ${row.maxMs} ms; ` +
        `event loop held up p99 ${row.loopDelayP99Ms} ms, max ${row.loopDelayMaxMs} ms`,
    )
    for (const node of [fresh, source]) {
      await node.call('stop').catch(() => undefined)
      await node.stop()
    }
  }
  return rows
}

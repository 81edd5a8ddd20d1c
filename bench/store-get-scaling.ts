/**
 * Does the number of stored sessions change the cost of a `get`? Expiry must be reclaimed without a
 * timer per session and without scanning the map, so a get among 1,000,000 sessions should cost what
 * a get among 1,000 does.
 *
 * Method: one process; for each size N, fill a PeerStore with N sessions (~200 bytes each, expiries
 * spread over the next hour so the expiry sweep has buckets to keep), then time batches of
 * 100,000 gets with process.hrtime, 7 rounds, and report the median ns/get, for two access patterns:
 * - hot: the ids of 1,000 active sessions, whatever N is (the same memory footprint for every N);
 * - spread: random ids over all N sessions. Touching N different sessions' memory costs CPU cache
 *   misses that grow with N in any in-memory store, so the same pattern is also timed on a bare
 *   baseline (a Map of msgpack buffers, decoded on each read): the ratio to it is PeerStore's cost.
 * A sweep runs every 100 ms during the measurement, as it would in production.
 *
 * Run: npm run bench:store   (QUICK=1 for a smoke run)
 */
import { writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { packr } from '../lib/codec/msgpack.js'
import { PeerStore } from '../lib/index.js'

const QUICK = process.env.QUICK === '1'
const SIZES = QUICK ? [1_000, 100_000] : [1_000, 10_000, 100_000, 1_000_000]
const ROUNDS = QUICK ? 3 : 7
const GETS_PER_ROUND = 100_000

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

function sessionData(i: number, now: number) {
  return {
    cookie: { originalMaxAge: 3_600_000, expires: new Date(now + 60_000 + (i % 3600) * 1000), httpOnly: true, path: '/' },
    user: { id: i, name: `user ${i}`, roles: ['reader', 'writer'] },
    cart: [{ sku: 'A-1', qty: 2 }],
    csrf: 'x'.repeat(32),
  }
}

function randomIds(range: number): string[] {
  return Array.from({ length: GETS_PER_ROUND }, () => `session-${Math.floor(Math.random() * range)}`)
}

async function time(read: (id: string) => unknown, ids: string[]): Promise<number> {
  const rounds: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    const start = process.hrtime.bigint()
    for (const id of ids) await read(id)
    rounds.push(Number(process.hrtime.bigint() - start) / ids.length)
  }
  return Math.round(median(rounds))
}

interface Row {
  size: number
  hot: number
  baselineHot: number
  spread: number
  baselineSpread: number
}

async function measure(size: number): Promise<Row> {
  const store = new PeerStore({ reapInterval: 100 })
  const baseline = new Map<string, Buffer>()
  const now = Date.now()
  for (let i = 0; i < size; i++) {
    await store.set(`session-${i}`, sessionData(i, now) as never)
    baseline.set(`session-${i}`, Buffer.from(packr.pack(sessionData(i, now))))
  }
  global.gc?.()
  const hotIds = randomIds(Math.min(size, 1000))
  const hot = await time((id) => store.get(id), hotIds)
  const baselineHot = await time((id) => packr.unpack(baseline.get(id)!), hotIds)
  const spreadIds = randomIds(size)
  const spread = await time((id) => store.get(id), spreadIds)
  const baselineSpread = await time((id) => packr.unpack(baseline.get(id)!), spreadIds)
  await store.close()
  return { size, hot, baselineHot, spread, baselineSpread }
}

async function main(): Promise<void> {
  const results = []
  for (const size of SIZES) {
    const result = await measure(size)
    results.push(result)
    console.log(
      `${String(size).padStart(9)} sessions: hot ${result.hot} ns/get (baseline ${result.baselineHot}), spread ${result.spread} ns/get, baseline spread ${result.baselineSpread} ns/read`,
    )
  }
  const base = results[0]!
  const machine = { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, platform: `${os.platform()} ${os.release()}` }
  const record = { benchmark: 'store-get-scaling', date: new Date().toISOString(), quick: QUICK, machine, results }
  if (!QUICK) {
    const dir = path.join(__dirname, 'results')
    writeFileSync(path.join(dir, 'store-get-scaling.json'), `${JSON.stringify(record, null, 2)}\n`)
    const rows = results.map(
      (r) =>
        `| ${r.size.toLocaleString('en-US')} | ${r.hot} | ${(r.hot / base.hot).toFixed(2)}x | ${r.baselineHot} | ${(r.baselineHot / base.baselineHot).toFixed(2)}x | ${r.spread} | ${r.baselineSpread} | ${(r.spread / r.baselineSpread).toFixed(2)}x |`,
    )
    writeFileSync(
      path.join(dir, 'store-get-scaling.md'),
      [
        '# PeerStore.get cost by number of stored sessions',
        '',
        `Measured ${record.date.slice(0, 10)} on ${machine.cpus} x ${machine.model}, Node ${machine.node}, ${machine.platform}.`,
        `Method: see bench/store-get-scaling.ts (median of ${ROUNDS} rounds of ${GETS_PER_ROUND.toLocaleString('en-US')} promise-style gets, expiry sweep every 100 ms).`,
        'hot: random ids among 1,000 active sessions; spread: random ids among all sessions;',
        'baseline: a bare Map of msgpack buffers decoded on each read, for the same ids. Run as `taskset -c 1 npm run -s bench:store`.',
        '',
        '| sessions | hot ns/get | hot vs 1,000 | baseline hot ns/read | baseline hot vs 1,000 | spread ns/get | baseline spread ns/read | spread vs baseline |',
        '|---:|---:|---:|---:|---:|---:|---:|---:|',
        ...rows,
        '',
      ].join('\n'),
    )
  }
}

void main()

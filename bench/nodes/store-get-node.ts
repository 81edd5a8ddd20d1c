/**
 * Benchmark child: does the number of stored sessions change the cost of a `get`? Expiry must be
 * reclaimed without a timer per session and without scanning the map, so a get among 1,000,000
 * sessions should cost what a get among 1,000 does.
 *
 * For each size N: fill a PeerStore with N sessions (~200 bytes, expiries spread over the next
 * hour so the expiry sweep has buckets to keep, a sweep every 100 ms), then time batches of 100,000
 * gets, `rounds` rounds, median ns/get, for two access patterns:
 * - hot: random ids among 1,000 active sessions, whatever N is (the same memory footprint for every N);
 * - spread: random ids over all N sessions. Touching N different sessions' memory costs CPU cache
 *   misses that grow with N in any in-memory store, so the same ids are also read from a bare
 *   baseline (a Map of msgpack buffers, decoded on each read): the ratio to it is PeerStore's cost.
 */
import { packr } from '../../lib/codec/msgpack.js'
import { PeerStore } from '../../lib/index.js'
import { serveParent } from '../lib/process.js'
import { median } from '../lib/stats.js'

const GETS_PER_ROUND = 100_000

export interface StoreGetRow {
  sessions: number
  hotNs: number
  baselineHotNs: number
  spreadNs: number
  baselineSpreadNs: number
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

async function time(read: (id: string) => unknown, ids: string[], rounds: number): Promise<number> {
  const samples: number[] = []
  for (let round = 0; round < rounds; round++) {
    const start = process.hrtime.bigint()
    for (const id of ids) await read(id)
    samples.push(Number(process.hrtime.bigint() - start) / ids.length)
  }
  return Math.round(median(samples))
}

async function measure(size: number, rounds: number): Promise<StoreGetRow> {
  const store = new PeerStore({ reapInterval: 100 })
  const baseline = new Map<string, Buffer>()
  const now = Date.now()
  for (let i = 0; i < size; i++) {
    await store.set(`session-${i}`, sessionData(i, now) as never)
    baseline.set(`session-${i}`, Buffer.from(packr.pack(sessionData(i, now))))
  }
  ;(globalThis as { gc?: () => void }).gc?.()
  const hotIds = randomIds(Math.min(size, 1000))
  const spreadIds = randomIds(size)
  const row = {
    sessions: size,
    hotNs: await time((id) => store.get(id), hotIds, rounds),
    baselineHotNs: await time((id) => packr.unpack(baseline.get(id)!), hotIds, rounds),
    spreadNs: await time((id) => store.get(id), spreadIds, rounds),
    baselineSpreadNs: await time((id) => packr.unpack(baseline.get(id)!), spreadIds, rounds),
  }
  await store.close()
  return row
}

serveParent({ measure: (size: number, rounds: number) => measure(size, rounds) })
process.send?.({ event: 'ready' })

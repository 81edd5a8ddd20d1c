/**
 * Benchmark child for replication: BENCH_ROLE=writer changes one key of a session per `set` at a
 * given rate; BENCH_ROLE=receiver records when each change arrives. Times are process.hrtime, which
 * is CLOCK_MONOTONIC on Linux: comparable across the two processes.
 */
import { PeerStore, type PeerStoreOptions } from '../../lib/index.js'
import { serveParent } from '../lib/process.js'

const role = process.env.BENCH_ROLE as 'writer' | 'receiver'
const port = Number(process.env.BENCH_PORT)
const peers = Number(process.env.BENCH_PEERS ?? 1)
const extra = JSON.parse(process.env.BENCH_OPTIONS ?? '{}') as PeerStoreOptions
const secret = 'bench cluster secret 0123456789'
const now = () => Number(process.hrtime.bigint()) / 1e6 // ms, monotonic, shared clock

// The writer is 127.0.0.111; receivers are 127.0.0.112, .113, ...
const index = Number(process.env.BENCH_INDEX ?? 0)
const host = (i: number) => `127.0.0.${111 + i}`
const nodeId = (i: number) => (i === 0 ? 'writer' : `receiver${i}`)
const peerList =
  role === 'writer'
    ? Array.from({ length: peers }, (_, i) => ({ host: host(i + 1), port, nodeId: nodeId(i + 1) }))
    : [{ host: host(0), port, nodeId: nodeId(0) }]
const store = new PeerStore(peerList, { nodeId: nodeId(index), listen: `${host(index)}:${port}`, secret, maxQueueBytes: 512 * 1024 * 1024, ...extra })

const received = new Map<string, number[]>()
let receivedCount = 0
if (role === 'receiver') {
  store.on('session:replicated', (event) => {
    if (event.change !== 'upsert' || event.sid === null) return
    const at = now()
    let times = received.get(event.sid)
    if (!times) received.set(event.sid, (times = []))
    times.push(at)
    receivedCount += 1
  })
}

const sent = new Map<string, number[]>()
const sessionOf = (n: number, i: number) => ({
  cookie: { originalMaxAge: 3_600_000, expires: new Date(Date.now() + 3_600_000), httpOnly: true, path: '/' },
  user: { id: i, name: `user-${i}` },
  roles: ['reader'],
  n,
})

async function prepare(count: number): Promise<number> {
  for (let i = 0; i < count; i++) await store.set(`s${i}`, sessionOf(0, i) as never)
  sent.clear()
  return count
}

/** Writes `rate` changes per second (Infinity: as fast as it can) for `seconds`; returns how many. */
async function run(count: number, rate: number, seconds: number): Promise<number> {
  const start = now()
  const end = start + seconds * 1000
  let written = 0
  for (;;) {
    const t = now()
    if (t >= end) break
    const due = Number.isFinite(rate) ? Math.floor(((t - start) / 1000) * rate) : written + 200
    while (written < due) {
      const i = written % count
      const sid = `s${i}`
      let times = sent.get(sid)
      if (!times) sent.set(sid, (times = []))
      times.push(now())
      await store.set(sid, sessionOf(written + 1, i) as never)
      written += 1
    }
    // Let the sockets (and everything else) run: like a server between requests.
    await new Promise((resolve) => setImmediate(resolve))
  }
  return written
}

void store.ready().then(() => process.send?.({ event: 'ready' }))
serveParent({
  prepare: (count: number) => prepare(count),
  run: (count: number, rate: number, seconds: number) => run(count, rate, seconds),
  sent: () => Object.fromEntries(sent),
  received: () => ({ count: receivedCount, times: Object.fromEntries(received) }),
  receivedCount: () => receivedCount,
  reset: () => {
    received.clear()
    receivedCount = 0
    sent.clear()
    return true
  },
  stats: () => store.stats(),
  members: () => store.members(),
  stop: async () => {
    await store.close()
    return true
  },
})

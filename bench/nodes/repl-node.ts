/**
 * Benchmark child for replication: BENCH_ROLE=writer changes one key of a session per `set` at a
 * given rate; BENCH_ROLE=receiver records when each change arrives. Times are process.hrtime, which
 * is CLOCK_MONOTONIC on Linux: comparable across the two processes.
 */
import { PeerStore, type PeerStoreOptions } from '../../lib/index.js'
import { allocationMeter } from '../lib/allocation.js'
import { loopDelayMonitor } from '../lib/loop-delay.js'
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
const store = new PeerStore(peerList, {
  nodeId: nodeId(index),
  listen: `${host(index)}:${port}`,
  secret,
  maxQueueBytes: 512 * 1024 * 1024,
  ...extra,
})

const loop = loopDelayMonitor()
const allocation = allocationMeter()
let cpuAtReset = process.cpuUsage()
// BENCH_SESSION_BYTES pads each session to about that size; a change still changes one key (`n`).
const sessionBytes = Number(process.env.BENCH_SESSION_BYTES ?? 0)
const padding = sessionBytes > 200 ? 'p'.repeat(sessionBytes - 200) : undefined

// When each change was made (writer) or applied (receiver), indexed by change number. Preallocated,
// so that recording does not grow the heap during a run: on this VM a young-generation collection
// that has to grow the heap takes 5 to 20 ms, and the benchmark's own bookkeeping was causing them.
// Change w is session s(w % sessions); its k-th change is change k * sessions + w % sessions.
const CAPACITY = 1 << 22
const times = new Float64Array(CAPACITY)
let sessions = 1
let perSession = new Int32Array(1)
let receivedCount = 0
let serial = 0
if (role === 'receiver') {
  store.on('session:replicated', (event) => {
    if (event.change !== 'upsert' || event.sid === null) return
    const at = now()
    const i = Number(event.sid.slice(1))
    const change = perSession[i]! * sessions + i
    perSession[i]! += 1
    if (change < CAPACITY) times[change] = at
    receivedCount += 1
  })
}

const sessionOf = (n: number, i: number) => ({
  cookie: { originalMaxAge: 3_600_000, expires: new Date(Date.now() + 3_600_000), httpOnly: true, path: '/' },
  user: { id: i, name: `user-${i}` },
  roles: ['reader'],
  ...(padding === undefined ? {} : { padding }),
  n,
})

async function prepare(count: number): Promise<number> {
  for (let i = 0; i < count; i++) await store.set(`s${i}`, sessionOf(0, i) as never)
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
      if (written < CAPACITY) times[written] = now()
      // A value never written before, so that every set is a change (runs follow each other).
      serial += 1
      await store.set(`s${i}`, sessionOf(serial, i) as never)
      written += 1
    }
    // Let the sockets (and everything else) run, like a server between requests. At a fixed rate the
    // writer sleeps until the next change is due, as a server waits for its next request: spinning
    // instead kept the core always busy and made garbage of its own, which showed up as lag.
    // At saturation a change is always due.
    if (Number.isFinite(rate) && written >= Math.floor(((now() - start) / 1000) * rate))
      await new Promise((resolve) => setTimeout(resolve, 1))
    else await new Promise((resolve) => setImmediate(resolve))
  }
  return written
}

void store.ready().then(() => process.send?.({ event: 'ready' }))
serveParent({
  prepare: (count: number) => prepare(count),
  run: (count: number, rate: number, seconds: number) => run(count, rate, seconds),
  /** The times of changes 0 to count - 1; null for a change this receiver has not applied. */
  times: (count: number) => Array.from(times.subarray(0, Math.min(count, CAPACITY)), (at) => (Number.isNaN(at) ? null : at)),
  receivedCount: () => receivedCount,
  loopDelay: () => loop.read(),
  /** Starts a new round of changes to `count` sessions. */
  /** CPU time (µs) and bytes allocated since the last reset. */
  usage: () => {
    const cpu = process.cpuUsage(cpuAtReset)
    return { cpuMicros: cpu.user + cpu.system, ...allocation.read() }
  },
  reset: (count: number) => {
    loop.reset()
    allocation.start()
    cpuAtReset = process.cpuUsage()
    sessions = count
    perSession = new Int32Array(count)
    times.fill(Number.NaN)
    receivedCount = 0
    return true
  },
  stats: () => store.stats(),
  members: () => store.members(),
  stop: async () => {
    await store.close()
    return true
  },
})

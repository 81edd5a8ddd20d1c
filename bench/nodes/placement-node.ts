/**
 * Benchmark child for the placement benchmark: one member of a full-mesh cluster of BENCH_NODES
 * nodes on 127.0.11.1, 127.0.11.2, ... (node1, node2, ...), with the replication mode of
 * BENCH_OPTIONS. Any node can write (creates, then one-field changes at a fixed rate), count the
 * changes it applies from its peers, report its CPU time, its heap after a full collection, and time
 * `get`s of the sessions it holds against those it must fetch from a peer.
 */
import { encodeSession } from '../../lib/codec/session-codec.js'
import { PeerStore, type PeerStoreOptions } from '../../lib/index.js'
import { CLUSTER_SECRET } from '../lib/constants.js'
import { serveParent } from '../lib/process.js'
import { kilobyteSession } from '../lib/sessions.js'

const gc = (globalThis as { gc?: () => void }).gc!
const index = Number(process.env.BENCH_INDEX)
const nodes = Number(process.env.BENCH_NODES)
const port = Number(process.env.BENCH_PORT)
const extra = JSON.parse(process.env.BENCH_OPTIONS ?? '{}') as PeerStoreOptions
const now = () => Number(process.hrtime.bigint()) / 1e6 // ms, monotonic

const host = (i: number) => `127.0.11.${i + 1}`
const nodeId = (i: number) => `node${i + 1}`
const peers = Array.from({ length: nodes }, (_, i) => i)
  .filter((i) => i !== index)
  .map((i) => ({ host: host(i), port, nodeId: nodeId(i) }))
const store = new PeerStore(peers, {
  nodeId: nodeId(index),
  listen: `${host(index)}:${port}`,
  secret: CLUSTER_SECRET,
  maxQueueBytes: 512 * 1024 * 1024,
  // Nothing expires during a run: the reaper would only add noise.
  reapInterval: 600_000,
  ...extra,
})

/** About 1 KB encoded (bench/lib/sessions.ts); a change changes one field, `n`. */
const sessionOf = (n: number, i: number) => ({ ...kilobyteSession(i, 700), n })
const limits = { maxSessionBytes: 1 << 20, maxDepth: 32, maxContainerLength: 1 << 20 }

let received = 0
store.on('session:replicated', (event) => {
  if (event.change === 'upsert') received += 1
})
let cpuAtReset = process.cpuUsage()
let serial = 0

const yieldToSockets = () => new Promise((resolve) => setImmediate(resolve))

/** Creates sessions `${prefix}${from}` to `${prefix}${to - 1}`, letting the sockets drain now and then. */
async function prepare(prefix: string, from: number, to: number): Promise<number> {
  for (let i = from; i < to; i++) {
    await store.set(`${prefix}${i}`, sessionOf(0, i) as never)
    if (i % 200 === 199) await yieldToSockets()
  }
  return to - from
}

/** One-field changes of sessions `${prefix}0` to `${prefix}${count - 1}` in turn, `rate` a second for `seconds`. */
async function run(prefix: string, count: number, rate: number, seconds: number): Promise<number> {
  const start = now()
  const end = start + seconds * 1000
  let written = 0
  for (;;) {
    const t = now()
    if (t >= end) break
    const due = Math.floor(((t - start) / 1000) * rate)
    while (written < due) {
      serial += 1
      await store.set(`${prefix}${written % count}`, sessionOf(serial, written % count) as never)
      written += 1
    }
    // Sleep until the next change is due, as a server waits for its next request.
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
  return written
}

/**
 * Times `get`s of sessions `${prefix}0` to `${prefix}${count - 1}`: those this node holds (a local
 * hit) and those it does not (a miss, fetched from the peers that would hold it), alternately, one
 * at a time; the first `warmUp` of each kind are not kept. A fetched session stays here, so each
 * miss is of a session never read here before.
 */
async function latency(prefix: string, count: number, samples: number, warmUp: number) {
  const held = new Set(await store.ids())
  const all = Array.from({ length: count }, (_, i) => `${prefix}${i}`)
  const hits = all.filter((sid) => held.has(sid))
  const misses = all.filter((sid) => !held.has(sid))
  const total = Math.min(samples + warmUp, misses.length)
  const hitMs: number[] = []
  const missMs: number[] = []
  let notFound = 0
  for (let i = 0; i < total; i++) {
    let t = now()
    const hit = await store.get(hits[i % hits.length]!)
    const hitTime = now() - t
    t = now()
    const miss = await store.get(misses[i]!)
    const missTime = now() - t
    if (!hit || !miss) notFound += 1
    if (i >= warmUp) {
      hitMs.push(hitTime)
      missMs.push(missTime)
    }
  }
  return { held: hits.length, notHeld: misses.length, hitMs, missMs, notFound }
}

void store.ready().then(() => process.send?.({ event: 'ready' }))
serveParent({
  members: () => store.members(),
  stats: () => store.stats(),
  reset: () => {
    cpuAtReset = process.cpuUsage()
    received = 0
    return true
  },
  /** CPU time (user + system, µs) since the last reset. */
  cpuSinceReset: () => {
    const cpu = process.cpuUsage(cpuAtReset)
    return cpu.user + cpu.system
  },
  received: () => received,
  prepare: (prefix: string, from: number, to: number) => prepare(prefix, from, to),
  run: (prefix: string, count: number, rate: number, seconds: number) => run(prefix, count, rate, seconds),
  latency: (prefix: string, count: number, samples: number, warmUp: number) => latency(prefix, count, samples, warmUp),
  /** The encoded size of one session as written here (msgpack bytes). */
  sessionBytes: () => encodeSession(sessionOf(1, 1), limits).blob.length,
  /** Heap, buffers and RSS after full collections. */
  memory: () => {
    gc()
    gc()
    const usage = process.memoryUsage()
    return { heapBytes: usage.heapUsed, arrayBufferBytes: usage.arrayBuffers, rssBytes: usage.rss }
  },
  stop: async () => {
    await store.close()
    return true
  },
})

/**
 * Benchmark child for snapshots: a node with `persist` that is filled with sessions, then writes a
 * snapshot while it serves requests (a read every millisecond, as a busy server's event loop sees
 * them), and reports how long the event loop was held up meanwhile; or, started again on the same
 * directory, how long loading took.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { PeerStore } from '../../lib/index.js'
import { CLUSTER_SECRET } from '../lib/constants.js'
import { serveParent } from '../lib/process.js'
import { kilobyteSession } from '../lib/sessions.js'

const dir = process.env.BENCH_DIR!
const started = performance.now()
// A snapshot every second: the run measures across one whole write made while the node serves.
const store = new PeerStore({ nodeId: 'bench', secret: CLUSTER_SECRET, persist: { dir, interval: 1 } })
void store.ready().then(() => process.send?.({ event: 'ready', loadMs: performance.now() - started, sessions: store.stats().sessions }))

/** Reads a session every millisecond and records how late each one ran. */
function underLoad<T>(
  count: number,
  work: () => Promise<T>,
): Promise<{ result: T; loopDelayP99Ms: number; loopDelayMaxMs: number; durationMs: number }> {
  const delay = monitorEventLoopDelay({ resolution: 1 })
  const reader = setInterval(() => void store.get(`p${Math.floor(Math.random() * count)}`).catch(() => undefined), 1)
  delay.enable()
  const begun = performance.now()
  return work().then((result) => {
    const durationMs = performance.now() - begun
    delay.disable()
    clearInterval(reader)
    // The histogram counts from the resolution: a timer exactly on time reads 1 ms.
    return { result, durationMs, loopDelayP99Ms: delay.percentile(99) / 1e6 - 1, loopDelayMaxMs: delay.max / 1e6 - 1 }
  })
}

let count = 0
serveParent({
  /** Fills the store, then waits for the snapshot that holds all of it: after that, nothing is written until a change. */
  load: async (sessions: number) => {
    count = sessions
    for (let i = 0; i < sessions; i++) await store.set(`p${i}`, kilobyteSession(i, 760) as never)
    while ((await new Promise<{ entries: number }>((resolve) => store.once('snapshot', resolve))).entries < sessions);
    return store.stats().sessions
  },
  /** The same load with no snapshot being written: what the event loop's own noise is. */
  idle: (ms: number) => underLoad(count, () => new Promise((resolve) => setTimeout(resolve, ms))),
  /**
   * From the end of one periodic snapshot to the end of the next: one whole write of the table (and
   * the idle rest of the second), while reads keep coming.
   */
  snapshot: async () => {
    const next = () => new Promise<{ entries: number; durationMs: number }>((resolve) => store.once('snapshot', resolve))
    await store.set('p0', kilobyteSession(0, 761) as never) // a change, so the next one is written
    return underLoad(count, next)
  },
  close: () => store.close(),
})

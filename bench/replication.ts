/**
 * 2. Replication: single-key changes per second from one node applied on a peer, and the lag from
 * `set` on the writer to the change being applied on the receiver (p50/p99/max), at fixed rates and
 * at saturation. The writer runs on core 0, the receiver on core 1; encrypted with a secret, as in
 * production. Each run follows a warm-up at the same rate. Beside the lag, how late each process's
 * timers fired, and the same for processes that do nothing: the machine's own scheduling noise.
 * Also used by the scaling benchmark (more sessions, more peers).
 */
import type { LoopDelay } from './lib/loop-delay.js'
import { BenchChild } from './lib/process.js'
import { percentile, round } from './lib/stats.js'

export interface ReplicationRow {
  sessions: number
  peers: number
  targetRate: number | 'max'
  written: number
  appliedPerSecond: number
  lagP50Ms: number
  lagP99Ms: number
  lagMaxMs: number
  /** Bytes the writer sent per change and peer (framing, encryption and heartbeats included). */
  bytesPerChange: number
  /** Size of each session, in bytes of msgpack (about). */
  sessionBytes?: number
  /** CPU time per change on the writer, and on the (average) receiver to apply it, in µs. */
  writerCpuMicrosPerChange?: number
  receiverCpuMicrosPerChange?: number
  /** Bytes allocated per change (heap + external), on the writer and the (average) receiver. */
  writerAllocBytesPerChange?: number
  receiverAllocBytesPerChange?: number
  /** Of which external (Buffer contents), on the receiver. */
  receiverExternalBytesPerChange?: number
  /** How late the writer's and the (worst) receiver's timers fired during the run. */
  writerLoop: LoopDelay
  receiverLoop: LoopDelay
}

export interface Cluster {
  writer: BenchChild
  receivers: BenchChild[]
}

const PORT = 4710
const WARM_UP_SECONDS = 1

export async function startCluster(peers: number, options: Record<string, unknown> = {}, sessionBytes = 0): Promise<Cluster> {
  const env = (role: string, index: number) => ({
    BENCH_SESSION_BYTES: String(sessionBytes),
    BENCH_ROLE: role,
    BENCH_PORT: String(PORT),
    BENCH_PEERS: String(peers),
    BENCH_INDEX: String(index),
    BENCH_OPTIONS: JSON.stringify(options),
  })
  const receivers = Array.from({ length: peers }, (_, i) => new BenchChild('bench/nodes/repl-node.ts', env('receiver', i + 1), 1))
  const writer = new BenchChild('bench/nodes/repl-node.ts', env('writer', 0), 0)
  await Promise.all([writer, ...receivers].map((node) => node.waitFor('ready')))
  // Wait until the writer has a live connection to every receiver.
  for (;;) {
    const members = await writer.call<{ state: string }[]>('members')
    if (members.every((member) => member.state === 'alive')) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return { writer, receivers }
}

export async function stopCluster(cluster: Cluster): Promise<void> {
  for (const node of [cluster.writer, ...cluster.receivers]) {
    await node.call('stop').catch(() => undefined)
    await node.stop()
  }
}

/** Every receiver has applied `count` changes since the last reset. */
async function drained(cluster: Cluster, count: number, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const counts = await Promise.all(cluster.receivers.map((node) => node.call<number>('receivedCount')))
    if (counts.every((each) => each >= count)) return
    if (Date.now() > deadline) throw new Error(`receivers applied ${counts.join(', ')} of ${count}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

export async function measure(cluster: Cluster, sessions: number, rate: number, seconds: number): Promise<ReplicationRow> {
  const nodes = [cluster.writer, ...cluster.receivers]
  // The sessions written once (as creates, or as changes of a previous round), then a second of
  // changes at the rate to warm up (compiled code, heap sizes); only when every receiver has it all
  // does the measured run start, with every counter at zero.
  await Promise.all(nodes.map((node) => node.call('reset', sessions)))
  await cluster.writer.call('prepare', sessions)
  await drained(cluster, sessions)
  await Promise.all(nodes.map((node) => node.call('reset', sessions)))
  await drained(cluster, await cluster.writer.call<number>('run', sessions, rate, WARM_UP_SECONDS))
  await Promise.all(nodes.map((node) => node.call('reset', sessions)))
  const bytesBefore = (await cluster.writer.call<{ bytesOut: number }>('stats')).bytesOut
  const written = await cluster.writer.call<number>('run', sessions, rate, seconds)
  await drained(cluster, written)
  const bytesAfter = (await cluster.writer.call<{ bytesOut: number }>('stats')).bytesOut
  const writerUsage = await cluster.writer.call<Usage>('usage')
  const receiverUsages = await Promise.all(cluster.receivers.map((node) => node.call<Usage>('usage')))
  const perReceiver = (pick: (usage: Usage) => number) =>
    round(receiverUsages.reduce((sum, usage) => sum + pick(usage), 0) / receiverUsages.length / written, 1)
  const writerLoop = await cluster.writer.call<LoopDelay>('loopDelay')
  const receiverLoops = await Promise.all(cluster.receivers.map((node) => node.call<LoopDelay>('loopDelay')))
  const sentAt = await cluster.writer.call<number[]>('times', written)
  const lags: number[] = []
  let first = Number.POSITIVE_INFINITY
  let last = 0
  for (const receiver of cluster.receivers) {
    const appliedAt = await receiver.call<(number | null)[]>('times', written)
    for (let change = 0; change < sentAt.length; change++) {
      const applied = appliedAt[change]
      if (applied === null || applied === undefined) continue
      lags.push(applied - sentAt[change]!)
      first = Math.min(first, sentAt[change]!)
      last = Math.max(last, applied)
    }
  }
  return {
    sessions,
    peers: cluster.receivers.length,
    targetRate: Number.isFinite(rate) ? rate : 'max',
    written,
    appliedPerSecond: round(lags.length / cluster.receivers.length / ((last - first) / 1000), 0),
    lagP50Ms: round(percentile(lags, 50), 3),
    lagP99Ms: round(percentile(lags, 99), 3),
    lagMaxMs: round(percentile(lags, 100), 3),
    bytesPerChange: round((bytesAfter - bytesBefore) / written / cluster.receivers.length, 1),
    writerCpuMicrosPerChange: round(writerUsage.cpuMicros / written, 1),
    receiverCpuMicrosPerChange: perReceiver((usage) => usage.cpuMicros),
    writerAllocBytesPerChange: round((writerUsage.heapBytes + writerUsage.externalBytes) / written, 0),
    receiverAllocBytesPerChange: round(
      perReceiver((usage) => usage.heapBytes + usage.externalBytes),
      0,
    ),
    receiverExternalBytesPerChange: round(
      perReceiver((usage) => usage.externalBytes),
      0,
    ),
    writerLoop,
    receiverLoop: receiverLoops.reduce((worst, each) => (each.lateP99Ms > worst.lateP99Ms ? each : worst)),
  }
}

interface Usage {
  cpuMicros: number
  heapBytes: number
  externalBytes: number
}

/** Sessions of about 1 KB for the change-cost row: what one single-key change costs the peer to apply. */
const KILOBYTE = 1024

export async function runReplication(
  options: { seconds: number; rates: number[] },
  log: (line: string) => void,
): Promise<ReplicationRow[]> {
  const cluster = await startCluster(1)
  const rows: ReplicationRow[] = []
  try {
    for (const rate of [...options.rates, Number.POSITIVE_INFINITY]) {
      const row = await measure(cluster, 1000, rate, options.seconds)
      rows.push(row)
      log(describe('replication', row))
    }
  } finally {
    await stopCluster(cluster)
  }
  // The change-cost row: 1 KB sessions, one key changed per write, as fast as they go: the fixed
  // cost of a process (timers, heartbeats, this benchmark's polling) spread over the most changes.
  const kilobyte = await startCluster(1, {}, KILOBYTE)
  try {
    const row = { ...(await measure(kilobyte, 1000, Number.POSITIVE_INFINITY, options.seconds)), sessionBytes: KILOBYTE }
    rows.push(row)
    log(describe('replication, 1 KB sessions', row))
  } finally {
    await stopCluster(kilobyte)
  }
  return rows
}

/**
 * The machine's own noise: two processes that do nothing, one per core, for as long as a run. Their
 * late timers are what any lag measurement here includes whatever the code does.
 */
export async function runIdleBaseline(seconds: number, log: (line: string) => void): Promise<{ core0: LoopDelay; core1: LoopDelay }> {
  const idle = [new BenchChild('bench/nodes/idle-node.ts', {}, 0), new BenchChild('bench/nodes/idle-node.ts', {}, 1)]
  try {
    await Promise.all(idle.map((node) => node.waitFor('ready')))
    const [core0, core1] = await Promise.all(idle.map((node) => node.call<LoopDelay>('measure', seconds)))
    log(
      `idle process timers late by: core 0 p99 ${core0!.lateP99Ms} ms, max ${core0!.lateMaxMs} ms; core 1 p99 ${core1!.lateP99Ms} ms, max ${core1!.lateMaxMs} ms`,
    )
    return { core0: core0!, core1: core1! }
  } finally {
    await Promise.all(idle.map((node) => node.stop()))
  }
}

export function describe(label: string, row: ReplicationRow): string {
  return (
    `${label}: ${row.sessions} sessions, ${row.peers} peer(s), ${String(row.targetRate)}/s: applied ${row.appliedPerSecond}/s, ` +
    `lag p50 ${row.lagP50Ms} ms, p99 ${row.lagP99Ms} ms, max ${row.lagMaxMs} ms, ${row.bytesPerChange} B/change; ` +
    `CPU µs/change writer ${row.writerCpuMicrosPerChange}, receiver ${row.receiverCpuMicrosPerChange}; ` +
    `allocated B/change writer ${row.writerAllocBytesPerChange}, receiver ${row.receiverAllocBytesPerChange} (external ${row.receiverExternalBytesPerChange}); ` +
    `timers late p99/max: writer ${row.writerLoop.lateP99Ms}/${row.writerLoop.lateMaxMs} ms, receiver ${row.receiverLoop.lateP99Ms}/${row.receiverLoop.lateMaxMs} ms`
  )
}

/**
 * 7. Scaling: the lag at 10,000 changes/s and the bytes per change, as the number of sessions grows
 * (1,000 to 1,000,000) and as the number of peers grows (1 to 4). All receivers share core 1.
 */
export async function runScaling(options: { sessionCounts: number[]; peerCounts: number[]; seconds: number }, log: (line: string) => void) {
  const bySessions: ReplicationRow[] = []
  const byPeers: ReplicationRow[] = []
  let cluster = await startCluster(1)
  try {
    for (const sessions of options.sessionCounts) {
      const row = await measure(cluster, sessions, 10_000, options.seconds)
      bySessions.push(row)
      log(describe('scaling', row))
      // A fresh cluster for the next size, so each starts with exactly its own sessions.
      await stopCluster(cluster)
      cluster = await startCluster(1)
    }
  } finally {
    await stopCluster(cluster)
  }
  for (const peers of options.peerCounts) {
    const withPeers = await startCluster(peers)
    try {
      const row = await measure(withPeers, 10_000, 10_000, options.seconds)
      byPeers.push(row)
      log(describe('scaling', row))
    } finally {
      await stopCluster(withPeers)
    }
  }
  return { bySessions, byPeers }
}

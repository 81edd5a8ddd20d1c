/**
 * 8. Placement: every node holding every session (`replication: 'all'`) against each session on its
 * writer and one backup (`replication: { backups: 1 }`), side by side in one run, on full-mesh
 * clusters on 127.0.11.1 to 127.0.11.12 (node 1 on core 0, the others on core 1):
 *
 * - Cost per write as the cluster grows from 2 to 6 nodes: node 1 changes one field of ~1 KB
 *   sessions at a fixed rate; bytes and frames it sent per write (its `stats()` deltas), its CPU per
 *   write, and the CPU of every node per write (each process's `process.cpuUsage` delta, summed).
 *   For each size the two modes run one after the other.
 * - Memory per node for a number of ~1 KB sessions written evenly by all nodes at 2, 4 and 6 nodes:
 *   heap (+ array buffers) and RSS after full collections, and the live sessions each node holds.
 * - Latency of a miss served by the holders (one round trip) against a local hit, on 3 nodes with
 *   backups: `get`s on node 1, one at a time, of sessions node 2 wrote, alternately one node 1
 *   holds and one it must fetch.
 */
import { BenchChild } from './lib/process.js'
import { median, percentile, round } from './lib/stats.js'

export type PlacementMode = 'all' | 'backups'

export interface PlacementCostRow {
  nodes: number
  mode: PlacementMode
  rate: number
  /** Writes in one measured run (the median run). */
  written: number
  /** Writes per second node 1 achieved (written / seconds). */
  writesPerSecond: number
  sessionBytes: number
  /** Bytes and frames node 1 sent per write (framing, encryption, heartbeats included). */
  bytesPerWrite: number
  framesPerWrite: number
  /** Changes applied by the peers per write: how many copies each write updated. */
  copiesPerWrite: number
  /** CPU time per write, µs: node 1's, the peers' on average, and every node's added up. */
  writerCpuMicrosPerWrite: number
  peerCpuMicrosPerWrite: number
  /** The peers' CPU time over the changes they applied: what one delivered copy costs its peer. */
  peerCpuMicrosPerCopy: number
  clusterCpuMicrosPerWrite: number
  /**
   * CPU time the whole cluster spends per second with nothing written (heartbeats, timers, this
   * benchmark's polling), in µs: the share of the cluster CPU per write that is not the writes'.
   */
  idleClusterCpuMicrosPerSecond: number
  /** Every number above is the median of these rounds (the two modes alternate, a fresh cluster each). */
  rounds: number
  /** Cluster CPU µs per write of each round, in order. */
  clusterCpuRuns: number[]
}

export interface PlacementMemoryRow {
  nodes: number
  mode: PlacementMode
  /** Sessions written, in all (each node wrote its share). */
  sessions: number
  sessionBytes: number
  /** Per node, in node order: live sessions held (`stats().sessions`). */
  sessionsPerNode: number[]
  /** Per node: heap used + array buffers after full collections, with the sessions and before any. */
  heapBytesPerNode: number[]
  emptyHeapBytesPerNode: number[]
  rssBytesPerNode: number[]
  emptyRssBytesPerNode: number[]
}

export interface PlacementLatencyRow {
  nodes: number
  backups: number
  /** Of the sessions node 2 wrote: how many node 1 held, and how many it did not. */
  held: number
  notHeld: number
  samples: number
  hitP50Ms: number
  hitP99Ms: number
  missP50Ms: number
  missP99Ms: number
  missMaxMs: number
  /** Gets that found nothing (a fetch that timed out, or a lost session): should be 0. */
  notFound: number
}

export interface PlacementResults {
  cost: PlacementCostRow[]
  memory: PlacementMemoryRow[]
  latency?: PlacementLatencyRow
}

export interface PlacementPlan {
  nodeCounts: number[]
  /**
   * Writes per second of node 1, each measured at every cluster size. At 1,000/s each write goes out
   * in an event-loop turn of its own (as a request's does); at higher rates several share one.
   */
  rates: number[]
  seconds: number
  /** Rounds of each cost measurement (the median is reported). */
  rounds: number
  /** Sessions node 1 changes in turn in the cost runs. */
  sessions: number
  memory: { sessions: number; nodeCounts: number[] }
  latency: { sessions: number; samples: number }
}

const PORT = 4711
const WARM_UP_SECONDS = 1
const BACKUPS = { backups: 1 } as const
const optionsOf = (mode: PlacementMode) => ({ replication: mode === 'all' ? 'all' : BACKUPS })

interface Cluster {
  nodes: BenchChild[]
}

async function startCluster(count: number, mode: PlacementMode): Promise<Cluster> {
  const nodes = Array.from(
    { length: count },
    (_, i) =>
      new BenchChild(
        'bench/nodes/placement-node.ts',
        {
          BENCH_INDEX: String(i),
          BENCH_NODES: String(count),
          BENCH_PORT: String(PORT),
          BENCH_OPTIONS: JSON.stringify(optionsOf(mode)),
        },
        i === 0 ? 0 : 1,
      ),
  )
  const cluster = { nodes }
  try {
    await Promise.all(nodes.map((node) => node.waitFor('ready')))
    // Every node sees every other alive: only then do all agree on who holds what.
    await until(async () => {
      const views = await Promise.all(nodes.map((node) => node.call<{ state: string }[]>('members')))
      return views.every((members) => members.length === count - 1 && members.every((member) => member.state === 'alive'))
    }, 30_000)
  } catch (error) {
    await stopCluster(cluster)
    throw error
  }
  return cluster
}

async function stopCluster(cluster: Cluster): Promise<void> {
  await Promise.all(cluster.nodes.map((node) => node.call('stop').catch(() => undefined)))
  await Promise.all(cluster.nodes.map((node) => node.stop()))
}

async function until(condition: () => Promise<boolean>, timeoutMs: number, describe?: () => Promise<string>): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await condition()) return
    if (Date.now() > deadline) throw new Error(`placement: not settled within ${timeoutMs} ms${describe ? `: ${await describe()}` : ''}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** Copies of a session on the peers of its writer: every peer, or its backups. */
const fanOut = (mode: PlacementMode, nodes: number) => (mode === 'all' ? nodes - 1 : Math.min(BACKUPS.backups, nodes - 1))

/** The peers of `writer` (an index) together applied at least `count` changes since the last reset. */
async function drained(cluster: Cluster, count: number, writer = 0): Promise<number> {
  const peers = cluster.nodes.filter((_, i) => i !== writer)
  let total = 0
  await until(
    async () => {
      total = (await Promise.all(peers.map((node) => node.call<number>('received')))).reduce((a, b) => a + b, 0)
      return total >= count
    },
    120_000,
    () => Promise.resolve(`peers applied ${total} of ${count}`),
  )
  return total
}

type CostRound = Omit<PlacementCostRow, 'rounds' | 'clusterCpuRuns'>

const IDLE_SECONDS = 2

async function measureCost(nodes: number, mode: PlacementMode, plan: PlacementPlan & { rate: number }): Promise<CostRound> {
  const cluster = await startCluster(nodes, mode)
  try {
    const [writer] = cluster.nodes as [BenchChild]
    const all = cluster.nodes
    const fan = fanOut(mode, nodes)
    const sessionBytes = await writer.call<number>('sessionBytes')
    await Promise.all(all.map((node) => node.call('reset')))
    await writer.call('prepare', 'c', 0, plan.sessions)
    await drained(cluster, plan.sessions * fan)
    // A second of changes at the rate to warm up (compiled code, heap sizes), then the measured run.
    await Promise.all(all.map((node) => node.call('reset')))
    await drained(cluster, (await writer.call<number>('run', 'c', plan.sessions, plan.rate, WARM_UP_SECONDS)) * fan)
    await Promise.all(all.map((node) => node.call('reset')))
    const before = await writer.call<{ bytesOut: number; framesOut: number }>('stats')
    const written = await writer.call<number>('run', 'c', plan.sessions, plan.rate, plan.seconds)
    const applied = await drained(cluster, written * fan)
    const after = await writer.call<{ bytesOut: number; framesOut: number }>('stats')
    const cpus = await Promise.all(all.map((node) => node.call<number>('cpuSinceReset')))
    // The same cluster with nothing written, for as long: what it costs just to be a cluster.
    await Promise.all(all.map((node) => node.call('reset')))
    await new Promise((resolve) => setTimeout(resolve, IDLE_SECONDS * 1000))
    const idle = await Promise.all(all.map((node) => node.call<number>('cpuSinceReset')))
    const peerCpus = cpus.slice(1)
    return {
      nodes,
      mode,
      rate: plan.rate,
      written,
      writesPerSecond: round(written / plan.seconds, 0),
      sessionBytes,
      bytesPerWrite: round((after.bytesOut - before.bytesOut) / written, 1),
      framesPerWrite: round((after.framesOut - before.framesOut) / written, 3),
      copiesPerWrite: round(applied / written, 3),
      writerCpuMicrosPerWrite: round(cpus[0]! / written, 1),
      peerCpuMicrosPerWrite: round(mean(peerCpus) / written, 1),
      peerCpuMicrosPerCopy: round(peerCpus.reduce((a, b) => a + b, 0) / applied, 1),
      clusterCpuMicrosPerWrite: round(cpus.reduce((a, b) => a + b, 0) / written, 1),
      idleClusterCpuMicrosPerSecond: round(idle.reduce((a, b) => a + b, 0) / IDLE_SECONDS, 0),
    }
  } finally {
    await stopCluster(cluster)
  }
}

/** The median of each number over the rounds; the round with the median cluster CPU gives the rest. */
function medianRow(rounds: CostRound[]): PlacementCostRow {
  const pick = (key: keyof CostRound) => median(rounds.map((row) => row[key] as number))
  const clusterCpuRuns = rounds.map((row) => row.clusterCpuMicrosPerWrite)
  return {
    ...rounds[0]!,
    written: pick('written'),
    writesPerSecond: pick('writesPerSecond'),
    bytesPerWrite: pick('bytesPerWrite'),
    framesPerWrite: pick('framesPerWrite'),
    copiesPerWrite: pick('copiesPerWrite'),
    writerCpuMicrosPerWrite: pick('writerCpuMicrosPerWrite'),
    peerCpuMicrosPerWrite: pick('peerCpuMicrosPerWrite'),
    peerCpuMicrosPerCopy: pick('peerCpuMicrosPerCopy'),
    clusterCpuMicrosPerWrite: pick('clusterCpuMicrosPerWrite'),
    idleClusterCpuMicrosPerSecond: pick('idleClusterCpuMicrosPerSecond'),
    rounds: rounds.length,
    clusterCpuRuns,
  }
}

async function measureMemory(nodes: number, mode: PlacementMode, sessions: number): Promise<PlacementMemoryRow> {
  const cluster = await startCluster(nodes, mode)
  try {
    const all = cluster.nodes
    const sessionBytes = await all[0]!.call<number>('sessionBytes')
    const empty = await Promise.all(all.map((node) => node.call<MemoryUsage>('memory')))
    // Each node writes its share, all at once.
    const share = Math.ceil(sessions / nodes)
    await Promise.all(all.map((node, i) => node.call('prepare', `m${i}-`, 0, Math.min(share, sessions - i * share))))
    // Settled: every copy is in place (each session on every node, or on its writer and its backups).
    const copies = sessions * (1 + fanOut(mode, nodes))
    let held: number[] = []
    await until(
      async () => {
        held = (await Promise.all(all.map((node) => node.call<{ sessions: number }>('stats')))).map((stats) => stats.sessions)
        return held.reduce((a, b) => a + b, 0) === copies
      },
      300_000,
      () => Promise.resolve(`nodes hold ${held.join(', ')}; expected ${copies} copies in all`),
    )
    const full = await Promise.all(all.map((node) => node.call<MemoryUsage>('memory')))
    return {
      nodes,
      mode,
      sessions,
      sessionBytes,
      sessionsPerNode: held,
      heapBytesPerNode: full.map((usage) => usage.heapBytes + usage.arrayBufferBytes),
      emptyHeapBytesPerNode: empty.map((usage) => usage.heapBytes + usage.arrayBufferBytes),
      rssBytesPerNode: full.map((usage) => usage.rssBytes),
      emptyRssBytesPerNode: empty.map((usage) => usage.rssBytes),
    }
  } finally {
    await stopCluster(cluster)
  }
}

interface MemoryUsage {
  heapBytes: number
  arrayBufferBytes: number
  rssBytes: number
}

async function measureLatency(plan: PlacementPlan): Promise<PlacementLatencyRow> {
  const nodes = 3
  const cluster = await startCluster(nodes, 'backups')
  try {
    const [reader, writer] = cluster.nodes as [BenchChild, BenchChild]
    await Promise.all(cluster.nodes.map((node) => node.call('reset')))
    await writer.call('prepare', 'l', 0, plan.latency.sessions)
    await drained(cluster, plan.latency.sessions * BACKUPS.backups, 1)
    const warmUp = Math.min(500, Math.floor(plan.latency.samples / 4))
    const result = await reader.call<{ held: number; notHeld: number; hitMs: number[]; missMs: number[]; notFound: number }>(
      'latency',
      'l',
      plan.latency.sessions,
      plan.latency.samples,
      warmUp,
    )
    return {
      nodes,
      backups: BACKUPS.backups,
      held: result.held,
      notHeld: result.notHeld,
      samples: result.missMs.length,
      hitP50Ms: round(percentile(result.hitMs, 50), 3),
      hitP99Ms: round(percentile(result.hitMs, 99), 3),
      missP50Ms: round(percentile(result.missMs, 50), 3),
      missP99Ms: round(percentile(result.missMs, 99), 3),
      missMaxMs: round(percentile(result.missMs, 100), 3),
      notFound: result.notFound,
    }
  } finally {
    await stopCluster(cluster)
  }
}

const mib = (bytes: number) => round(bytes / 2 ** 20, 1)
const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length

export async function runPlacement(plan: PlacementPlan, log: (line: string) => void): Promise<PlacementResults> {
  const cost: PlacementCostRow[] = []
  for (const rate of plan.rates) {
    for (const nodes of plan.nodeCounts) {
      const rounds: Record<PlacementMode, CostRound[]> = { all: [], backups: [] }
      for (let i = 0; i < plan.rounds; i++) {
        // The two modes alternate, so that a slow stretch of the machine falls on both.
        for (const mode of ['all', 'backups'] as const) {
          const row = await measureCost(nodes, mode, { ...plan, rate })
          rounds[mode].push(row)
          log(
            `placement, cost per write: ${nodes} nodes, ${mode}, round ${i + 1}: ${row.writesPerSecond}/s of ${row.sessionBytes} B sessions, ` +
              `${row.bytesPerWrite} B and ${row.framesPerWrite} frames sent per write, ${row.copiesPerWrite} copies updated; ` +
              `CPU µs/write writer ${row.writerCpuMicrosPerWrite}, peer ${row.peerCpuMicrosPerWrite} (${row.peerCpuMicrosPerCopy} per copy applied), cluster ${row.clusterCpuMicrosPerWrite}; ` +
              `idle cluster ${row.idleClusterCpuMicrosPerSecond} µs/s`,
          )
        }
      }
      cost.push(medianRow(rounds.all), medianRow(rounds.backups))
    }
  }
  const memory: PlacementMemoryRow[] = []
  for (const nodes of plan.memory.nodeCounts) {
    for (const mode of ['all', 'backups'] as const) {
      const row = await measureMemory(nodes, mode, plan.memory.sessions)
      memory.push(row)
      const over = row.heapBytesPerNode.map((heap, i) => heap - row.emptyHeapBytesPerNode[i]!)
      log(
        `placement, memory: ${row.sessions} sessions on ${nodes} nodes, ${mode}: sessions per node ${row.sessionsPerNode.join(', ')}; ` +
          `heap + buffers per node ${row.heapBytesPerNode.map(mib).join(', ')} MiB (mean +${mib(mean(over))} MiB over an empty node), ` +
          `RSS ${row.rssBytesPerNode.map(mib).join(', ')} MiB`,
      )
    }
  }
  const latency = await measureLatency(plan)
  log(
    `placement, get latency on 3 nodes with backups: local hit p50 ${latency.hitP50Ms} ms, p99 ${latency.hitP99Ms} ms; ` +
      `miss fetched from the holders p50 ${latency.missP50Ms} ms, p99 ${latency.missP99Ms} ms, max ${latency.missMaxMs} ms ` +
      `(${latency.samples} of each; ${latency.notFound} not found)`,
  )
  return { cost, memory, latency }
}

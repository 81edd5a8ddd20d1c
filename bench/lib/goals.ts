/**
 * The goals of the current round (issue 15), each read the same way from a run's results: the
 * report shows the previous round's value ("last round", from bench/results/previous.json) beside
 * this run's, and whether this run meets the goal. A result a run did not measure reads "n/a".
 */
import type { HttpRow } from '../http.js'
import type { ReplicationRow } from '../replication.js'
import type { TransferRow } from '../transfer.js'
import type { LoopDelay } from './loop-delay.js'
import { round } from './stats.js'

/** What goals read from a run (a subset of its results). */
export interface GoalResults {
  /** When the run was made (for the "last round" heading). */
  readonly date?: string
  readonly http?: readonly HttpRow[]
  readonly replication?: readonly ReplicationRow[]
  readonly idle?: { readonly core0: LoopDelay; readonly core1: LoopDelay }
  readonly transfer?: readonly TransferRow[]
}

export interface Goal {
  readonly name: string
  /** The goal as text, e.g. "<= 1.08x". */
  readonly target: string
  /** The measured value, or undefined when the run did not measure it. */
  measure(results: GoalResults): number | undefined
  /** How the value reads, e.g. "1.05x". */
  format(value: number): string
  met(value: number): boolean
}

const httpRow = (results: GoalResults, variant: string, route: string) =>
  results.http?.find((row) => row.variant === variant && row.route === route)

/** App CPU per request of `variant` over `base`'s, on `route`. */
function cpuRatio(results: GoalResults, variant: string, base: string, route: string): number | undefined {
  const a = httpRow(results, variant, route)?.cpuMicrosPerRequest
  const b = httpRow(results, base, route)?.cpuMicrosPerRequest
  return a === undefined || b === undefined || b === 0 ? undefined : a / b
}

/** App, peer process and Redis CPU per request (whatever the store needs), in µs. */
export function clusterCpu(row: HttpRow | undefined): number | undefined {
  if (row?.cpuMicrosPerRequest === undefined) return undefined
  return row.cpuMicrosPerRequest + (row.peerCpuMicrosPerRequest ?? 0) + (row.redisCpuMicrosPerRequest ?? 0)
}

const tenThousand = (results: GoalResults) =>
  results.replication?.find((row) => row.targetRate === 10_000 && row.sessionBytes === undefined)
/** The saturation row of the small sessions (the 1 KB row runs at saturation too). */
const saturated = (results: GoalResults) => results.replication?.find((row) => row.targetRate === 'max' && row.sessionBytes === undefined)
const kilobyte = (results: GoalResults) => results.replication?.find((row) => row.sessionBytes !== undefined)
const bigTransfer = (results: GoalResults) => results.transfer?.find((row) => row.sessions >= 100_000)

const ratio = (value: number) => `${round(value, 3)}x`
const micros = (value: number) => `${round(value, 1)} µs`
const ms = (value: number) => `${round(value, 2)} ms`

export const GOALS: readonly Goal[] = [
  {
    name: 'App CPU per /write, 2 nodes async encrypted, vs MemoryStore',
    target: '<= 1.08x',
    measure: (results) => cpuRatio(results, 'peer-2-async', 'memory-store', '/write'),
    format: ratio,
    met: (value) => value <= 1.08,
  },
  {
    name: 'App CPU per /write, PeerStore alone, vs MemoryStore',
    target: '<= 1.02x',
    measure: (results) => cpuRatio(results, 'peer-store', 'memory-store', '/write'),
    format: ratio,
    met: (value) => value <= 1.02,
  },
  {
    name: 'App CPU per /read, 2 nodes async encrypted, vs MemoryStore',
    target: '<= 1.0x',
    measure: (results) => cpuRatio(results, 'peer-2-async', 'memory-store', '/read'),
    format: ratio,
    met: (value) => value <= 1.0,
  },
  {
    name: 'Whole-cluster CPU per /write (app + peer) vs connect-redis (app + redis-server)',
    target: '< 1.0x',
    measure: (results) => {
      const peer = clusterCpu(httpRow(results, 'peer-2-async', '/write'))
      const redis = httpRow(results, 'connect-redis', '/write')
      // Runs before Redis's CPU was measured cannot say.
      if (peer === undefined || redis?.redisCpuMicrosPerRequest === undefined) return undefined
      return peer / clusterCpu(redis)!
    },
    format: ratio,
    met: (value) => value < 1,
  },
  {
    name: 'Peer CPU to apply one single-key change of a 1 KB session (at saturation)',
    target: '<= 8 µs',
    measure: (results) => kilobyte(results)?.receiverCpuMicrosPerChange,
    format: micros,
    met: (value) => value <= 8,
  },
  {
    name: 'Single-key changes/s to one peer',
    target: '>= 300,000/s',
    measure: (results) => saturated(results)?.appliedPerSecond,
    format: (value) => `${value.toLocaleString('en-US')}/s`,
    met: (value) => value >= 300_000,
  },
  {
    name: "p99 lag at 10,000/s (beside it: the idle processes' timer lateness p99, core 0 / core 1)",
    target: '< 2 ms',
    measure: (results) => tenThousand(results)?.lagP99Ms,
    format: (value) => `${value} ms`,
    met: (value) => value < 2,
  },
  {
    name: 'Heap and external bytes allocated per replicated change, on the receiver (at 10,000/s)',
    target: '<= 1 KB',
    measure: (results) => tenThousand(results)?.receiverAllocBytesPerChange,
    format: (value) => `${Math.round(value)} B`,
    met: (value) => value <= 1024,
  },
  {
    name: 'peerSession over bare express-session + PeerStore, app CPU per /read',
    target: '<= 1.03x',
    measure: (results) => cpuRatio(results, 'peer-store', 'peer-store-bare', '/read'),
    format: ratio,
    met: (value) => value <= 1.03,
  },
  {
    name: 'State transfer 100k x 1 KB: longest event-loop stall on the receiving node',
    target: '<= 20 ms',
    measure: (results) => bigTransfer(results)?.loopDelayMaxMs,
    format: ms,
    met: (value) => value <= 20,
  },
  {
    name: 'State transfer 100k x 1 KB: p99 of requests meanwhile',
    target: '<= 50 ms',
    measure: (results) => bigTransfer(results)?.p99Ms,
    format: ms,
    met: (value) => value <= 50,
  },
  {
    name: 'State transfer 100k x 1 KB: duration',
    target: '<= 1.5 s',
    measure: (results) => bigTransfer(results)?.transferMs,
    format: (value) => `${(value / 1000).toFixed(2)} s`,
    met: (value) => value <= 1500,
  },
]

/** The goals table: goal, target, last round, this run, met or missed. */
export function goalRows(current: GoalResults, previous: GoalResults | undefined): string[][] {
  return GOALS.map((goal) => {
    const show = (results: GoalResults | undefined) => {
      const value = results && goal.measure(results)
      if (value === undefined || Number.isNaN(value)) return { text: 'n/a', value: undefined }
      let text = goal.format(value)
      if (goal.name.startsWith('p99 lag') && results?.idle)
        text += ` (timers ${results.idle.core0.lateP99Ms} / ${results.idle.core1.lateP99Ms} ms)`
      return { text, value }
    }
    const last = show(previous)
    const now = show(current)
    const verdict = now.value === undefined ? 'not measured' : goal.met(now.value) ? 'met' : '**missed**'
    return [goal.name, goal.target, last.text, now.text, verdict]
  })
}

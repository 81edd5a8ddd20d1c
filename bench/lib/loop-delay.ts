/**
 * How late a process's timers fire: a 1 ms timer that runs late means the process was not running
 * (another task had its core, the VM did not schedule it, or a garbage collection). Recorded beside
 * the replication lag, so a tail that the machine causes can be told from one that PeerStore causes.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { round } from './stats.js'

export interface LoopDelay {
  /** How late the 99th percentile of 1 ms timers fired, in ms. */
  lateP99Ms: number
  /** The latest a timer fired, in ms. */
  lateMaxMs: number
}

const RESOLUTION_MS = 1

export function loopDelayMonitor(): { reset(): void; read(): LoopDelay } {
  const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
  histogram.enable()
  const late = (ns: number) => round(Math.max(0, ns / 1e6 - RESOLUTION_MS), 3)
  return {
    reset: () => histogram.reset(),
    read: () => ({ lateP99Ms: late(histogram.percentile(99)), lateMaxMs: late(histogram.max) }),
  }
}

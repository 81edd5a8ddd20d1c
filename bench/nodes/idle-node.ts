/**
 * Benchmark child that does nothing but measure how late its own timers fire: the scheduling noise
 * of the machine, against which the replication lag is read.
 */
import { loopDelayMonitor } from '../lib/loop-delay.js'
import { serveParent } from '../lib/process.js'

const loop = loopDelayMonitor()

serveParent({
  measure: async (seconds: number) => {
    loop.reset()
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000))
    return loop.read()
  },
})
process.send?.({ event: 'ready' })

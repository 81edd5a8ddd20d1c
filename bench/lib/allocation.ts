/**
 * How many bytes a process allocates over a stretch of work: what was freed by every collection in
 * between (V8's GCProfiler reports the heap before and after each) plus what is still held at the
 * end. Both the JavaScript heap and external memory (Buffer contents) are counted. Divided by the
 * number of changes, it is the garbage each change leaves behind.
 */
import { GCProfiler } from 'node:v8'

export interface Allocation {
  /** Bytes allocated on the JavaScript heap. */
  readonly heapBytes: number
  /** Bytes allocated outside it (Buffer and ArrayBuffer contents). */
  readonly externalBytes: number
}

export interface AllocationMeter {
  /** Starts counting from zero. */
  start(): void
  /** What was allocated since `start`. */
  read(): Allocation
}

interface HeapStatistics {
  readonly usedHeapSize: number
  readonly externalMemory: number
}

export function allocationMeter(): AllocationMeter {
  let profiler: GCProfiler | undefined
  let heapStart = 0
  let externalStart = 0
  const now = () => {
    const usage = process.memoryUsage()
    return { heap: usage.heapUsed, external: usage.external }
  }
  return {
    start() {
      profiler?.stop()
      profiler = new GCProfiler()
      profiler.start()
      const at = now()
      heapStart = at.heap
      externalStart = at.external
    },
    read() {
      const statistics = (profiler?.stop()?.statistics ?? []) as unknown as Array<{
        beforeGC: { heapStatistics: HeapStatistics }
        afterGC: { heapStatistics: HeapStatistics }
      }>
      profiler = undefined
      let heapFreed = 0
      let externalFreed = 0
      for (const gc of statistics) {
        heapFreed += gc.beforeGC.heapStatistics.usedHeapSize - gc.afterGC.heapStatistics.usedHeapSize
        externalFreed += gc.beforeGC.heapStatistics.externalMemory - gc.afterGC.heapStatistics.externalMemory
      }
      const at = now()
      return { heapBytes: at.heap - heapStart + heapFreed, externalBytes: at.external - externalStart + externalFreed }
    },
  }
}

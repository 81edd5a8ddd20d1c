/**
 * 5. Memory for 100,000 sessions of about 1 KB on one node: heap and RSS after a full garbage
 * collection, against the raw payload (the sum of the sessions' encoded sizes). Run in a process of
 * its own so nothing else is on the heap.
 */
import { BenchChild } from './lib/process.js'

export interface MemoryRow {
  sessions: number
  payloadBytes: number
  heapBytes: number
  arrayBufferBytes: number
  rssBytes: number
  /** (heap + array buffers) / payload: everything the sessions cost, over what they hold. */
  ratio: number
}

export async function runMemory(sessions: number, log: (line: string) => void): Promise<MemoryRow> {
  const child = new BenchChild('bench/nodes/memory-node.ts', {}, 0)
  await child.waitFor('ready')
  const row = await child.call<MemoryRow>('measure', sessions)
  await child.stop()
  log(
    `memory: ${sessions} sessions, payload ${(row.payloadBytes / 2 ** 20).toFixed(1)} MiB, heap +${(row.heapBytes / 2 ** 20).toFixed(1)} MiB, ` +
      `buffers +${(row.arrayBufferBytes / 2 ** 20).toFixed(1)} MiB, RSS +${(row.rssBytes / 2 ** 20).toFixed(1)} MiB: ${row.ratio.toFixed(2)}x the payload`,
  )
  return row
}

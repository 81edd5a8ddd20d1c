/**
 * 9. Snapshots: how long a node holding 100,000 sessions of about 1 KB takes to write its snapshot,
 * how long the event loop is held up meanwhile while it serves reads (the goal: under 5 ms at worst),
 * beside the same measure with no snapshot being written, and how long loading the snapshot takes
 * when the node starts again. The node runs pinned to core 0; the file is sealed with the secret.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { BenchChild } from './lib/process.js'
import { round } from './lib/stats.js'

export interface PersistenceRow {
  sessions: number
  fileMiB: number
  writeMs: number
  /** The event loop's worst and 99th-percentile lateness while the snapshot was written under reads. */
  writeLoopDelayMaxMs: number
  writeLoopDelayP99Ms: number
  /** The same, for as long, with no snapshot being written. */
  idleLoopDelayMaxMs: number
  idleLoopDelayP99Ms: number
  loadMs: number
}

interface UnderLoad<T> {
  result: T
  durationMs: number
  loopDelayP99Ms: number
  loopDelayMaxMs: number
}

export async function runPersistence(counts: number[], log: (line: string) => void): Promise<PersistenceRow[]> {
  const rows: PersistenceRow[] = []
  for (const sessions of counts) {
    const dir = await mkdtemp(path.join(tmpdir(), 'connect-peer-bench-snapshot-'))
    try {
      const writer = new BenchChild('bench/nodes/persist-node.ts', { BENCH_DIR: dir }, 0)
      await writer.waitFor('ready')
      await writer.call('load', sessions)
      const idle = await writer.call<UnderLoad<undefined>>('idle', 1000)
      const written = await writer.call<UnderLoad<{ entries: number; durationMs: number }>>('snapshot')
      await writer.call('close')
      await writer.stop()
      const { size } = await stat(path.join(dir, 'bench.snapshot'))
      const reader = new BenchChild('bench/nodes/persist-node.ts', { BENCH_DIR: dir }, 0)
      const ready = await reader.waitFor('ready', 120_000)
      await reader.stop()
      const row: PersistenceRow = {
        sessions,
        fileMiB: round(size / 2 ** 20, 1),
        writeMs: round(written.result.durationMs, 0),
        writeLoopDelayMaxMs: round(written.loopDelayMaxMs, 2),
        writeLoopDelayP99Ms: round(written.loopDelayP99Ms, 2),
        idleLoopDelayMaxMs: round(idle.loopDelayMaxMs, 2),
        idleLoopDelayP99Ms: round(idle.loopDelayP99Ms, 2),
        loadMs: round(Number(ready.loadMs), 0),
      }
      log(`snapshot of ${sessions}: ${JSON.stringify(row)}`)
      rows.push(row)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }
  return rows
}

/** Runs the store-get scaling measurement (see nodes/store-get-node.ts) in a child on core 0. */
import { BenchChild } from './lib/process.js'
import type { StoreGetRow } from './nodes/store-get-node.js'

export type { StoreGetRow }

export async function runStoreGet(sizes: number[], rounds: number, log: (line: string) => void): Promise<StoreGetRow[]> {
  const rows: StoreGetRow[] = []
  for (const size of sizes) {
    // A fresh process per size, so one size's garbage does not weigh on the next.
    const child = new BenchChild('bench/nodes/store-get-node.ts', {}, 0)
    await child.waitFor('ready')
    const row = await child.call<StoreGetRow>('measure', size, rounds)
    await child.stop()
    rows.push(row)
    log(
      `get: ${size} sessions: hot ${row.hotNs} ns (bare Map ${row.baselineHotNs} ns), spread ${row.spreadNs} ns (bare Map ${row.baselineSpreadNs} ns)`,
    )
  }
  return rows
}

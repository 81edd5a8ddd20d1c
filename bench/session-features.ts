/**
 * What the session features of this round (sessions by user, merge on save, session events, limits)
 * cost a store's own calls, side by side in one run:
 *
 *   node --import tsx bench/session-features.ts [--baseline=<git revision>] [--rounds=N]
 *
 * Each variant runs in a child process of its own (bench/nodes/session-features-node.ts), pinned to
 * core 0, one after another, the same workload: 1,000 sessions of about 1 KB; `get`, `set` changing
 * one key, `touch`; the median of `rounds` rounds of 100,000 calls each, in microseconds per call.
 *
 * - `MemoryStore`: express-session's own, the floor;
 * - `PeerStore`: no option (what a user who sets none of the new options pays);
 * - `PeerStore + features`: `principal`, `maxSessions` (never reached), `maxSessionsPerPrincipal`,
 *   `absoluteTimeout`, and listeners on the three `session:*` events;
 * - with `--baseline`, `PeerStore` at that revision (extracted with `git archive`): the same calls
 *   before this round's changes.
 *
 * Results go to bench/results/partial/session-features/ (results.json, RESULTS.md).
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { BenchChild, canPin, ROOT } from './lib/process.js'
import { machine } from './lib/stats.js'
import type { FeatureRow, Variant } from './nodes/session-features-node.js'

const argument = (name: string) =>
  process.argv
    .find((arg) => arg.startsWith(`--${name}=`))
    ?.split('=')
    .slice(1)
    .join('=')
const baseline = argument('baseline')
const rounds = Number(argument('rounds') ?? 7)

async function measure(variant: Variant, root: string): Promise<FeatureRow> {
  const child = new BenchChild('bench/nodes/session-features-node.ts', { FEATURES_VARIANT: variant, FEATURES_ROOT: root }, 0)
  await child.waitFor('ready')
  const row = await child.call<FeatureRow>('measure', rounds)
  await child.stop()
  console.log(`${row.label}: get ${row.getUs} µs, set ${row.setUs} µs, touch ${row.touchUs} µs`)
  return row
}

/** The library as it was at `revision`, extracted beside this checkout's node_modules. */
function extract(revision: string): string {
  const folder = mkdtempSync(path.join(tmpdir(), 'connect-peer-baseline-'))
  execFileSync('bash', ['-c', `git -C "${ROOT}" archive "${revision}" lib | tar -x -C "${folder}"`])
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(folder, 'node_modules'))
  return folder
}

async function main(): Promise<void> {
  const rows: FeatureRow[] = []
  rows.push(await measure('memory-store', ROOT))
  const old = baseline ? extract(baseline) : undefined
  try {
    if (old) rows.push({ ...(await measure('plain', old)), label: `PeerStore at ${baseline}` })
    rows.push(await measure('plain', ROOT))
    rows.push(await measure('features', ROOT))
  } finally {
    if (old) rmSync(old, { recursive: true, force: true })
  }
  const floor = rows[0]!
  const ratio = (value: number, base: number) => (value / base).toFixed(2)
  const table = [
    '| variant | get (µs) | set (µs) | touch (µs) | get / MemoryStore | set / MemoryStore |',
    '|---|---|---|---|---|---|',
    ...rows.map(
      (row) =>
        `| ${row.label} | ${row.getUs} | ${row.setUs} | ${row.touchUs} | ${ratio(row.getUs, floor.getUs)} | ${ratio(row.setUs, floor.setUs)} |`,
    ),
  ]
  const info = { when: new Date().toISOString(), machine: machine(), pinned: canPin, rounds, baseline: baseline ?? null }
  const folder = path.join(ROOT, 'bench', 'results', 'partial', 'session-features')
  mkdirSync(folder, { recursive: true })
  writeFileSync(path.join(folder, 'results.json'), `${JSON.stringify({ ...info, rows }, null, 2)}\n`)
  writeFileSync(
    path.join(folder, 'RESULTS.md'),
    [
      '# Session features: cost per store call',
      '',
      `\`node --import tsx bench/session-features.ts${baseline ? ` --baseline=${baseline}` : ''}\`, ${info.when}, ` +
        `${info.machine.cpus} × ${info.machine.model}, Node ${info.machine.node}; median of ${rounds} rounds of 100,000 calls, ` +
        `each variant in a child process${canPin ? ' pinned to core 0' : ''}. 1,000 sessions of about 1 KB; \`set\` changes one key.`,
      '',
      ...table,
      '',
    ].join('\n'),
  )
  console.log(table.join('\n'))
}

void main()

/**
 * `npm run bench` (full, for the README) and `npm run bench:quick` (a smoke run): every benchmark in
 * one run, side by side, written to bench/results/ (quick runs to bench/results/quick/) as JSON, a
 * Markdown report and an SVG chart. This process (the load generator) moves itself to core 1; each
 * benchmark pins the systems under test to core 0.
 *
 * `netns` (sync write latency on a namespaced network) needs root: elsewhere it is skipped, saying why.
 *
 * Flags: `--quick`, `--only=http,replication,...` (one or more of the sections below: http, replication,
 * wire, transfer, memory, touch, scaling, get, persistence, placement, netns), `--report`
 * (rebuild RESULTS.md and http.svg from an existing results.json, measuring nothing). Environment:
 * BENCH_PROFILE=<dir> writes a CPU profile of every child; BENCH_NODE_ARGS="--trace-gc ..." passes
 * flags to every child; BENCH_PLAINTEXT=1 runs the two-node HTTP variants without a secret, to see
 * what encryption costs.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { runHttp, type HttpRow, type Variant } from './http.js'
import { barChart } from './lib/chart.js'
import { canPin, coreSpeeds, ROOT } from './lib/process.js'
import { report, type Machine } from './lib/report.js'
import { machine, round } from './lib/stats.js'
import { runMemory } from './memory.js'
import { runNetnsSyncLatency } from './netns-sync-latency.js'
import { runIdleBaseline, runReplication, runScaling } from './replication.js'
import { runStoreGet } from './store-get.js'
import { runTouch } from './touch.js'
import { runPersistence } from './persistence.js'
import { runPlacement } from './placement.js'
import { runTransfer } from './transfer.js'
import { runWire } from './wire.js'

const quick = process.argv.includes('--quick') || process.env.BENCH_QUICK === '1'
const only = process.argv
  .find((arg) => arg.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',')
// --variants=a,b picks HTTP stores (all by default): a partial run, written beside the full results.
const variants = process.argv
  .find((arg) => arg.startsWith('--variants='))
  ?.slice('--variants='.length)
  .split(',') as Variant[] | undefined
const PLACEMENTS: ('all' | { backups: number })[] = ['all', { backups: 1 }]
const plan = quick
  ? {
      http: { runs: 1, seconds: 2, sessions: 200, connections: 32 },
      replication: { seconds: 2, rates: [1000, 10_000] },
      transfer: [10_000],
      memory: 20_000,
      touch: { rate: 2000, sessions: 500, seconds: 2 },
      scaling: { sessionCounts: [1000, 10_000], peerCounts: [1, 2], seconds: 2 },
      storeGet: { sizes: [1000, 100_000], rounds: 3 },
      persistence: [10_000],
      placement: {
        nodeCounts: [2, 4, 6],
        rates: [1000, 5000],
        seconds: 2,
        rounds: 1,
        sessions: 1000,
        memory: { sessions: 20_000, nodeCounts: [2, 4, 6] },
        latency: { sessions: 4000, samples: 1000 },
      },
      netns: { delays: [0.25, 1], placements: PLACEMENTS, sessions: 20, requests: 300, warmUp: 50 },
    }
  : {
      http: { runs: 5, seconds: 5, sessions: 1000, connections: 32 },
      replication: { seconds: 5, rates: [1000, 10_000] },
      transfer: [10_000, 100_000],
      memory: 100_000,
      touch: { rate: 5000, sessions: 1000, seconds: 5 },
      scaling: { sessionCounts: [1000, 10_000, 100_000, 1_000_000], peerCounts: [1, 2, 3, 4], seconds: 5 },
      storeGet: { sizes: [1000, 10_000, 100_000, 1_000_000], rounds: 7 },
      persistence: [100_000],
      placement: {
        nodeCounts: [2, 3, 4, 5, 6],
        rates: [1000, 5000],
        seconds: 5,
        rounds: 3,
        sessions: 1000,
        memory: { sessions: 100_000, nodeCounts: [2, 4, 6] },
        latency: { sessions: 20_000, samples: 5000 },
      },
      netns: { delays: [0.25, 1], placements: PLACEMENTS, sessions: 20, requests: 2000, warmUp: 200 },
    }

const log = (line: string) => console.log(line)

// This process generates load: it belongs on core 1, away from the systems under test on core 0.
if (canPin) execFileSync('taskset', ['-pc', '1', String(process.pid)], { stdio: 'ignore' })
const wanted = (name: string) => !only || only.includes(name)

const reportOnly = process.argv.includes('--report')
// A full run replaces bench/results/; a quick one, or one of only some sections, goes beside it.
const partial = only ?? (variants ? ['http'] : undefined)
const resultsDir = path.join(
  ROOT,
  'bench',
  'results',
  ...(quick ? ['quick'] : partial ? ['partial', [...partial, ...(variants ?? [])].join('+')] : []),
)

/** The previous round's results (bench/results/previous.json), for the goals' "last round" column. */
function previousResults(): Parameters<typeof report>[1] {
  try {
    const previous = JSON.parse(readFileSync(path.join(ROOT, 'bench', 'results', 'previous.json'), 'utf8')) as {
      date: string
      results: NonNullable<Parameters<typeof report>[1]>
    }
    return { ...previous.results, date: previous.date }
  } catch {
    return undefined
  }
}

function writeReport(record: Parameters<typeof report>[0] & { date: string }): void {
  const http = record.results.http
  if (http) writeFileSync(path.join(resultsDir, 'http.svg'), httpChart(http, record))
  writeFileSync(path.join(resultsDir, 'RESULTS.md'), report(record, previousResults()))
}

async function main(): Promise<void> {
  if (reportOnly) {
    writeReport(JSON.parse(readFileSync(path.join(resultsDir, 'results.json'), 'utf8')) as Parameters<typeof writeReport>[0])
    log(`report rebuilt in ${path.relative(ROOT, resultsDir)}/`)
    return
  }
  const started = new Date()
  const speedsAtStart = coreSpeeds()
  const results: Record<string, unknown> = {}
  if (wanted('http')) results.http = await runHttp({ ...plan.http, ...(variants ? { variants } : {}) }, log)
  if (wanted('replication')) {
    results.idle = await runIdleBaseline(plan.replication.seconds, log)
    results.replication = await runReplication(plan.replication, log)
  }
  if (wanted('wire')) results.wire = await runWire(log)
  if (wanted('transfer')) results.transfer = await runTransfer(plan.transfer, log)
  if (wanted('memory')) results.memory = await runMemory(plan.memory, log)
  if (wanted('touch')) results.touch = await runTouch(plan.touch, log)
  if (wanted('scaling')) results.scaling = await runScaling(plan.scaling, log)
  if (wanted('get')) results.get = await runStoreGet(plan.storeGet.sizes, plan.storeGet.rounds, log)
  if (wanted('persistence')) results.persistence = await runPersistence(plan.persistence, log)
  if (wanted('placement')) results.placement = await runPlacement(plan.placement, log)
  if (wanted('netns')) results.netns = await runNetnsSyncLatency(plan.netns, log)

  const record = {
    date: started.toISOString(),
    mode: quick ? 'quick' : partial ? `partial: ${[...partial, ...(variants ?? [])].join(', ')}` : 'full',
    machine: { ...machine(), coreSpeeds: speedsAtStart && { start: speedsAtStart, end: coreSpeeds() } },
    pinned: canPin ? 'systems under test on core 0; load generators, peers and Redis on core 1' : 'not pinned (no taskset)',
    plan,
    results,
  }
  mkdirSync(resultsDir, { recursive: true })
  writeFileSync(path.join(resultsDir, 'results.json'), `${JSON.stringify(record, null, 2)}\n`)
  writeReport(record)
  log(`written to ${path.relative(ROOT, resultsDir)}/`)
}

function httpChart(rows: HttpRow[], record: { date: string; machine: Machine }): string {
  const names: Record<string, string> = {
    none: 'no sessions',
    'memory-store': 'MemoryStore',
    memorystore: 'memorystore',
    'connect-redis': 'connect-redis',
    'peer-store-bare': 'PeerStore, bare',
    'peer-store': 'PeerStore alone',
    'peer-2-async': 'PeerStore, 2 nodes',
    'peer-2-sync': 'PeerStore, 2 nodes, sync',
  }
  const variants = [...new Set(rows.map((row) => row.variant))]
  const groups = variants.map((variant) => ({
    label: names[variant] ?? variant,
    bars: rows
      .filter((row) => row.variant === variant)
      .map((row) => ({ label: row.route.replace('/static/file.txt', '/static'), value: round(row.requestsPerSecond, 0) })),
  }))
  const m = record.machine
  return barChart(
    'Express requests per second, by session store (higher is better)',
    '',
    groups,
    `${record.date.slice(0, 10)}, ${m.cpus} x ${m.model}, Node ${m.node}; median of runs; bench/http.ts`,
  )
}

void main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  },
)

/**
 * The Markdown report of a benchmark run: every table, and the targets with what was measured
 * against each. Nothing here decides a number; it only lays out what the run measured.
 */
import type { PersistenceRow } from '../persistence.js'
import type { PlacementCostRow, PlacementResults } from '../placement.js'
import type { HttpRow } from '../http.js'
import type { MemoryRow } from '../memory.js'
import type { NetnsSyncRow } from '../netns-sync-latency.js'
import type { StoreGetRow } from '../nodes/store-get-node.js'
import type { ReplicationRow } from '../replication.js'
import type { LoopDelay } from './loop-delay.js'
import type { TouchRow } from '../touch.js'
import type { TransferRow } from '../transfer.js'
import type { WireRow } from '../wire.js'
import { clusterCpu, goalRows, type GoalResults } from './goals.js'
import { median, round } from './stats.js'

interface Record {
  date: string
  mode: string
  machine: Machine
  pinned: string
  results: {
    http?: HttpRow[]
    replication?: ReplicationRow[]
    idle?: { core0: LoopDelay; core1: LoopDelay }
    wire?: WireRow
    transfer?: TransferRow[]
    memory?: MemoryRow
    touch?: TouchRow[]
    scaling?: { bySessions: ReplicationRow[]; byPeers: ReplicationRow[] }
    get?: StoreGetRow[]
    persistence?: PersistenceRow[]
    placement?: PlacementResults
    netns?: NetnsSyncRow[] | { skipped: string }
  }
}

// Numbers align right, words align left: a column is numeric when every cell in it reads as a number.
const numeric = (cell: string | number) => typeof cell === 'number' || /^([\d.,-]+( \/ [\d.,-]+)? ?(%|x|ms|MiB)?|n\/a|-)$/.test(cell)
const table = (header: string[], rows: (string | number)[][]) =>
  [
    `| ${header.join(' | ')} |`,
    `|${header.map((_, column) => (rows.every((row) => numeric(row[column] ?? '')) ? '---:' : '---')).join('|')}|`,
    ...rows.map((row) => `| ${row.join(' | ')} |`),
  ].join('\n')

const n = (value: number) => value.toLocaleString('en-US')
// Runs recorded before timers were measured have no loop delay.
const late = (loop: LoopDelay | undefined) => (loop ? `${loop.lateP99Ms} / ${loop.lateMaxMs}` : 'n/a')
const pct = (value: number) => (Number.isNaN(value) ? '-' : `${round(value * 100, 1)}%`)

/** What a run says of the machine it ran on (see \`machine()\` in bench/lib/process.ts). */
export interface Machine {
  readonly cpus: number
  readonly model: string
  readonly memoryGiB: number
  readonly platform: string
  readonly node: string
  readonly [key: string]: unknown
}

/** `previous`: the previous round's results, for the goals table's "last round" column. */
export function report(record: Record, previous?: GoalResults): string {
  const { results } = record
  const m = record.machine
  const out: string[] = [
    `# Benchmark results (${record.mode} run)`,
    '',
    `Measured ${record.date.slice(0, 16).replace('T', ' ')} UTC on ${m.cpus} x ${m.model}, ${m.memoryGiB} GiB, ${m.platform}, Node ${m.node}.`,
    `Processes: ${record.pinned}. Method: see each script in bench/ (run with \`npm run bench\`).`,
    '',
  ]
  type Speeds = { core0: number; core1: number }
  const speeds = m.coreSpeeds as { start: Speeds; end: Speeds } | Speeds | undefined
  // Runs recorded before speeds were taken at both ends have one reading, taken at the end.
  if (speeds && 'core0' in speeds) {
    out.splice(
      -1,
      0,
      `Core speeds at the end of the run, one core at a time (sha256 digests of 100 bytes per second): core 0 ${n(speeds.core0)}, core 1 ${n(speeds.core1)}.`,
    )
  } else if (speeds) {
    out.splice(
      -1,
      0,
      `Core speeds, one core at a time (sha256 digests of 100 bytes per second), at the start and at the end of the run: ` +
        `core 0 ${n(speeds.start.core0)} and ${n(speeds.end.core0)}, core 1 ${n(speeds.start.core1)} and ${n(speeds.end.core1)}.`,
    )
  }
  const headerLength = out.length
  const targets: string[][] = []
  const verdict = (met: boolean) => (met ? 'met' : '**missed**')

  if (results.http) {
    const rows = results.http
    const find = (variant: string, route: string) => rows.find((row) => row.variant === variant && row.route === route)
    const rps = (variant: string, route: string) => find(variant, route)?.requestsPerSecond ?? Number.NaN
    // Runs recorded before CPU time was measured have none.
    const cpu = (variant: string, route: string) => find(variant, route)?.cpuMicrosPerRequest ?? Number.NaN
    const cpuCells = (row: HttpRow) =>
      row.cpuMicrosPerRequest === undefined
        ? ['n/a', 'n/a', 'n/a', 'n/a', 'n/a']
        : [
            row.cpuMicrosPerRequest,
            Number.isNaN(cpu('memory-store', row.route)) ? '-' : `${round(row.cpuMicrosPerRequest / cpu('memory-store', row.route), 2)}x`,
            row.peerCpuMicrosPerRequest ?? '-',
            row.redisCpuMicrosPerRequest ?? '-',
            clusterCpu(row) ?? 'n/a',
          ]
    out.push('## 1. HTTP throughput and latency', '')
    out.push(
      'Express app, every request with its own session (rotating through the sessions made first), autocannon with 32 connections. ' +
        'The stores take turns: each round starts every store afresh and runs each route once after a warm-up; the median round is reported, and "runs" lists every round in order. ' +
        'App CPU µs/req is the CPU time (user + system) the app process spent per request, the median over the rounds: it moves far less than req/s when the machine is noisy. ' +
        "Peer CPU is the two-node stores' other process; Redis CPU is redis-server's (from `INFO cpu`) for the stores that use Redis; " +
        'cluster CPU adds up every process the store needs (app + peer + Redis) per request.',
      '',
    )
    out.push(
      table(
        [
          'store',
          'route',
          'req/s',
          'vs MemoryStore',
          'app CPU µs/req',
          'CPU vs MemoryStore',
          'peer CPU µs/req',
          'Redis CPU µs/req',
          'cluster CPU µs/req',
          'p50 ms',
          'p99 ms',
          'errors',
          'runs (req/s)',
        ],
        rows.map((row) => [
          row.variant,
          row.route,
          n(row.requestsPerSecond),
          pct(row.requestsPerSecond / rps('memory-store', row.route)),
          ...cpuCells(row),
          row.p50Ms,
          row.p99Ms,
          row.errors,
          row.runs.join(', '),
        ]),
      ),
      '',
      '![req/s by store](http.svg)',
      '',
    )
    for (const route of ['/read', '/write']) {
      const tier = rps('peer-store-redis', route)
      const alone = rps('peer-store', route)
      const redis = rps('connect-redis', route)
      if (Number.isNaN(tier)) continue
      const goal =
        route === '/read' ? 'reads at PeerStore speed (no Redis round trip on a hit)' : 'writes within 10% of PeerStore without Redis'
      targets.push([
        `PeerStore with its Redis tier ${route}: ${goal}`,
        `${n(tier)} req/s = ${pct(tier / alone)} of PeerStore alone (${n(alone)}), ${pct(tier / redis)} of connect-redis on the same Redis (${n(redis)})` +
          `; app CPU per request ${round(cpu('peer-store-redis', route) / cpu('peer-store', route), 2)}x PeerStore alone's, ${round(cpu('peer-store-redis', route) / cpu('connect-redis', route), 2)}x connect-redis's`,
        verdict(tier >= (route === '/read' ? 0.95 : 0.9) * alone),
      ])
    }
    for (const route of ['/read', '/write']) {
      const peer = rps('peer-2-async', route)
      if (Number.isNaN(peer)) continue
      const memory = rps('memory-store', route)
      const redis = rps('connect-redis', route)
      targets.push([
        `PeerStore 2-node ${route}: at least 95% of MemoryStore's req/s and at least connect-redis's`,
        `${n(peer)} req/s = ${pct(peer / memory)} of MemoryStore (${n(memory)}), ${pct(peer / redis)} of connect-redis (${n(redis)})` +
          (Number.isNaN(cpu('peer-2-async', route))
            ? ''
            : `; app CPU per request ${round(cpu('peer-2-async', route) / cpu('memory-store', route), 2)}x MemoryStore's, ${round(cpu('peer-2-async', route) / cpu('connect-redis', route), 2)}x connect-redis's`),
        verdict(peer >= 0.95 * memory && peer >= redis),
      ])
    }
  }

  if (results.replication) {
    out.push('## 2. Replication throughput and lag', '')
    out.push(
      'Single-key changes from one node (core 0) applied on its peer (core 1), encrypted; lag from `set` on the writer to the change applied on the peer. ' +
        'Each run follows a one-second warm-up at the same rate; at a fixed rate the writer sleeps until its next change is due, as a server waits for requests.',
      '',
    )
    out.push(
      table(
        [
          'rate',
          'written',
          'applied/s',
          'lag p50 ms',
          'lag p99 ms',
          'lag max ms',
          'session B',
          'B/change',
          'writer CPU µs/change',
          'receiver CPU µs/change',
          'writer alloc B/change',
          'receiver alloc B/change (external)',
          'writer timers late p99 / max ms',
          'receiver timers late p99 / max ms',
        ],
        results.replication.map((row) => [
          String(row.targetRate),
          n(row.written),
          n(row.appliedPerSecond),
          row.lagP50Ms,
          row.lagP99Ms,
          row.lagMaxMs,
          row.sessionBytes ?? '~150',
          row.bytesPerChange,
          row.writerCpuMicrosPerChange ?? 'n/a',
          row.receiverCpuMicrosPerChange ?? 'n/a',
          row.writerAllocBytesPerChange ?? 'n/a',
          row.receiverAllocBytesPerChange === undefined
            ? 'n/a'
            : `${row.receiverAllocBytesPerChange} (${row.receiverExternalBytesPerChange})`,
          late(row.writerLoop),
          late(row.receiverLoop),
        ]),
      ),
      '',
    )
    out.push(
      'Timers late: how late a 1 ms timer fired in that process during the run, i.e. how long it was kept from running (by its own work, a garbage collection, or the machine). ' +
        (results.idle
          ? `For comparison, a process doing nothing at all on this machine saw its timers late by p99 ${results.idle.core0.lateP99Ms} ms (max ${results.idle.core0.lateMaxMs} ms) on core 0 and p99 ${results.idle.core1.lateP99Ms} ms (max ${results.idle.core1.lateMaxMs} ms) on core 1.`
          : ''),
      '',
    )
    const max = results.replication.find((row) => row.targetRate === 'max' && row.sessionBytes === undefined)
    const tenK = results.replication.find((row) => row.targetRate === 10_000 && row.sessionBytes === undefined)
    if (max)
      targets.push([
        'Replication: at least 100,000 single-key changes/s to one peer',
        `${n(max.appliedPerSecond)}/s`,
        verdict(max.appliedPerSecond >= 100_000),
      ])
    // The scaling benchmark measures the same rate with one peer several more times: the verdict is
    // the median of every such run, not the luckiest one.
    const scaling = results.scaling ? [...results.scaling.bySessions, ...results.scaling.byPeers] : []
    const lags = [tenK, ...scaling.filter((row) => row.peers === 1 && row.targetRate === 10_000)].flatMap((row) =>
      row ? [row.lagP99Ms] : [],
    )
    if (lags.length === 1) targets.push(['Replication: p99 lag under 5 ms at 10,000/s', `${lags[0]} ms`, verdict(lags[0]! < 5)])
    if (lags.length > 1) {
      const typical = round(median(lags), 3)
      const measured = `median ${typical} ms over ${lags.length} runs (${Math.min(...lags)} to ${Math.max(...lags)} ms; sections 2 and 7)`
      targets.push(['Replication: p99 lag under 5 ms at 10,000/s', measured, verdict(typical < 5)])
    }
  }

  if (results.wire) {
    const w = results.wire
    out.push('## 3. Bytes on the wire', '')
    out.push(`A session of ${n(w.sessionBytes)} bytes (msgpack), replicated encrypted, each change a write of its own:`, '')
    out.push(
      table(
        ['change', 'bytes on the wire'],
        [
          ['whole session (create)', n(w.fullChangeBytes)],
          ['one key changed', n(w.oneKeyChangeBytes)],
        ],
      ),
      '',
    )
    targets.push([
      'One changed key in a 4 KB session: under 5% of the whole session',
      `${n(w.oneKeyChangeBytes)} of ${n(w.fullChangeBytes)} bytes = ${pct(w.ratio)}`,
      verdict(w.ratio < 0.05),
    ])
  }

  if (results.transfer) {
    out.push('## 4. State transfer', '')
    out.push(
      'A fresh node (core 0) receives every session (about 1 KB each) from a live peer, while requests for random sessions keep arriving (8 at a time).',
      '',
    )
    out.push(
      table(
        [
          'sessions',
          'transfer ms',
          'requests meanwhile',
          'errors',
          'not found',
          'p50 ms',
          'p99 ms',
          'max ms',
          'event loop held up, max ms',
        ],
        results.transfer.map((row) => [
          n(row.sessions),
          n(row.transferMs),
          row.requests,
          row.errors,
          row.notFound,
          row.p50Ms,
          row.p99Ms,
          row.maxMs,
          row.loopDelayMaxMs,
        ]),
      ),
      '',
    )
    const big = results.transfer.find((row) => row.sessions >= 100_000)
    if (big) {
      targets.push([
        'State transfer of 100k x 1 KB sessions: under 3 s, answering requests throughout',
        `${n(big.transferMs)} ms; ${big.requests} requests answered, ${big.errors} errors, ${big.notFound} not found`,
        verdict(big.transferMs < 3000 && big.errors === 0 && big.notFound === 0),
      ])
    }
  }

  if (results.memory) {
    const mem = results.memory
    const mib = (bytes: number) => `${round(bytes / 2 ** 20, 1)} MiB`
    out.push('## 5. Memory', '')
    out.push(
      `${n(mem.sessions)} sessions on one node, after a full garbage collection, against the raw payload (the sessions' encoded bytes):`,
      '',
    )
    out.push(
      table(
        ['payload', 'heap', 'buffers', 'heap + buffers', 'RSS', '(heap + buffers) / payload'],
        [
          [
            mib(mem.payloadBytes),
            mib(mem.heapBytes),
            mib(mem.arrayBufferBytes),
            mib(mem.heapBytes + mem.arrayBufferBytes),
            mib(mem.rssBytes),
            `${mem.ratio}x`,
          ],
        ],
      ),
      '',
    )
    targets.push(['100k x 1 KB sessions: under 2x the raw payload in memory', `${mem.ratio}x (heap and buffers)`, verdict(mem.ratio < 2)])
  }

  if (results.touch) {
    out.push('## 6. Touch traffic', '')
    out.push("A rolling-touch workload (every request moves an unchanged session's expiry), sent to one peer:", '')
    out.push(
      table(
        ['touchAfter', 'touches/s', 'sessions', 'frames/s', 'expiry changes/s', 'bytes/s'],
        results.touch.map((row) => [
          `${row.touchAfterSeconds} s`,
          n(row.touchesPerSecond),
          n(row.sessions),
          row.framesPerSecond,
          row.expiryChangesPerSecond,
          n(row.bytesPerSecond),
        ]),
      ),
      '',
    )
  }

  if (results.scaling) {
    out.push('## 7. Scaling', '')
    out.push('Lag at 10,000 changes/s and bytes per change, as sessions and peers grow (all peers share core 1).', '')
    const rows = [...results.scaling.bySessions, ...results.scaling.byPeers]
    out.push(
      table(
        ['sessions', 'peers', 'applied/s', 'lag p50 ms', 'lag p99 ms', 'lag max ms', 'B/change', 'receiver timers late p99 / max ms'],
        rows.map((row) => [
          n(row.sessions),
          row.peers,
          n(row.appliedPerSecond),
          row.lagP50Ms,
          row.lagP99Ms,
          row.lagMaxMs,
          row.bytesPerChange,
          late(row.receiverLoop),
        ]),
      ),
      '',
    )
  }

  if (results.get) {
    const base = results.get[0]!
    out.push('## Cost of a get by number of stored sessions', '')
    out.push(
      'hot: random ids among 1,000 active sessions; spread: random ids among all; bare Map: msgpack buffers in a Map, decoded on each read.',
      '',
    )
    out.push(
      table(
        ['sessions', 'hot ns', 'hot vs 1,000', 'bare Map hot vs 1,000', 'spread ns', 'spread vs bare Map'],
        results.get.map((row) => [
          n(row.sessions),
          row.hotNs,
          `${round(row.hotNs / base.hotNs, 2)}x`,
          `${round(row.baselineHotNs / base.baselineHotNs, 2)}x`,
          row.spreadNs,
          `${round(row.spreadNs / row.baselineSpreadNs, 2)}x`,
        ]),
      ),
      '',
    )
  }

  if (results.persistence) {
    out.push('## Snapshots', '')
    out.push(
      'A node holding the sessions (about 1 KB each, sealed with the cluster secret) writes its snapshot while it serves a read every millisecond; ' +
        'the event-loop delay histogram (1 ms resolution) gives how late the reads could run, beside the same measure for as long with no snapshot being written. ' +
        'Load: from the start of a new process on the same directory to `ready()`.',
      '',
    )
    out.push(
      table(
        [
          'sessions',
          'file MiB',
          'write ms',
          'loop delay while writing p99 / max ms',
          'the same without a snapshot p99 / max ms',
          'load ms',
        ],
        results.persistence.map((row) => [
          n(row.sessions),
          row.fileMiB,
          row.writeMs,
          `${row.writeLoopDelayP99Ms} / ${row.writeLoopDelayMaxMs}`,
          `${row.idleLoopDelayP99Ms} / ${row.idleLoopDelayMaxMs}`,
          row.loadMs,
        ]),
      ),
      '',
    )
    const largest = results.persistence.at(-1)
    if (largest) {
      targets.push([
        `Snapshot of ${n(largest.sessions)} sessions: the longest pause it causes under 5 ms`,
        `max ${largest.writeLoopDelayMaxMs} ms (p99 ${largest.writeLoopDelayP99Ms} ms) while writing; max ${largest.idleLoopDelayMaxMs} ms (p99 ${largest.idleLoopDelayP99Ms} ms) with no snapshot`,
        verdict(largest.writeLoopDelayMaxMs < 5),
      ])
    }
  }

  if (results.placement) {
    const { cost, memory, latency, bystander } = results.placement
    const mib = (bytes: number) => round(bytes / 2 ** 20, 1)
    const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length
    out.push("## 8. Placement: `{ backups: 1 }` against every node holding everything ('all')", '')
    if (cost.length > 0) {
      const first = cost[0]!
      out.push(
        `Cost per write as the cluster grows: node 1 (core 0) changes one field of ${n(first.sessionBytes)}-byte sessions (at each rate below, ` +
          'encrypted, async); its peers (a full mesh) share core 1. Bytes and frames: what node 1 sent per write (`stats()` deltas, heartbeats included); ' +
          'copies: changes the peers applied per write; CPU: `process.cpuUsage` deltas per write, of node 1, of a peer on average (and the CPU of all peers over the copies they applied), and of every node added up; ' +
          'idle: what the same cluster spends per second with nothing written, for as long afterwards. ' +
          `Each cell reads 'all / backups'; each number is the median of ${first.rounds} round(s), the two modes alternating on fresh clusters.`,
        '',
      )
      for (const rate of new Set(cost.map((row) => row.rate))) {
        const atRate = cost.filter((row) => row.rate === rate)
        const pairs = [...new Set(atRate.map((row) => row.nodes))].flatMap((nodes) => {
          const all = atRate.find((row) => row.nodes === nodes && row.mode === 'all')
          const backups = atRate.find((row) => row.nodes === nodes && row.mode === 'backups')
          return all && backups ? [{ nodes, all, backups }] : []
        })
        out.push(`${rate.toLocaleString('en-US')} writes/s:`, '')
        const both = (all: PlacementCostRow, backups: PlacementCostRow, pick: (row: PlacementCostRow) => number) =>
          `${n(pick(all))} / ${n(pick(backups))}`
        out.push(
          table(
            [
              'nodes',
              'B sent/write',
              'frames sent/write',
              'copies/write',
              'writer CPU µs/write',
              'peer CPU µs/write',
              'peer CPU µs/copy applied',
              'cluster CPU µs/write',
              'cluster CPU, all over backups',
              'idle cluster CPU µs/s',
              'writes/s',
              'cluster CPU µs/write by round (all; backups)',
            ],
            pairs.map(({ nodes, all, backups }) => [
              nodes,
              both(all, backups, (row) => row.bytesPerWrite),
              both(all, backups, (row) => row.framesPerWrite),
              both(all, backups, (row) => row.copiesPerWrite),
              both(all, backups, (row) => row.writerCpuMicrosPerWrite),
              both(all, backups, (row) => row.peerCpuMicrosPerWrite),
              both(all, backups, (row) => row.peerCpuMicrosPerCopy),
              both(all, backups, (row) => row.clusterCpuMicrosPerWrite),
              `${round(all.clusterCpuMicrosPerWrite / backups.clusterCpuMicrosPerWrite, 2)}x`,
              both(all, backups, (row) => row.idleClusterCpuMicrosPerSecond),
              both(all, backups, (row) => row.writesPerSecond),
              `${all.clusterCpuRuns.join(', ')}; ${backups.clusterCpuRuns.join(', ')}`,
            ]),
          ),
          '',
        )
      }
    }
    if (memory.length > 0) {
      out.push(
        `Memory per node: ${n(memory[0]!.sessions)} sessions of about ${n(memory[0]!.sessionBytes)} bytes, each node writing its share, ` +
          "then, once every copy is in place, each node's heap used + array buffers and RSS after full collections (`--expose-gc`), " +
          'and the same measured on the empty node before (the "over empty" columns); sessions: `stats().sessions` of each node.',
        '',
      )
      out.push(
        table(
          [
            'nodes',
            'mode',
            'sessions held per node (min - max)',
            'heap + buffers per node, MiB',
            'over empty, MiB',
            'RSS per node, MiB',
            'RSS over empty, MiB',
            'heap + buffers over empty, all nodes, MiB',
          ],
          memory.map((row) => {
            const over = row.heapBytesPerNode.map((heap, i) => heap - row.emptyHeapBytesPerNode[i]!)
            const rssOver = row.rssBytesPerNode.map((rss, i) => rss - row.emptyRssBytesPerNode[i]!)
            return [
              row.nodes,
              row.mode,
              `${n(Math.min(...row.sessionsPerNode))} - ${n(Math.max(...row.sessionsPerNode))}`,
              mib(mean(row.heapBytesPerNode)),
              mib(mean(over)),
              mib(mean(row.rssBytesPerNode)),
              mib(mean(rssOver)),
              mib(over.reduce((a, b) => a + b, 0)),
            ]
          }),
        ),
        '',
      )
    }
    if (latency) {
      out.push(
        `Latency of a miss: ${latency.nodes} nodes with \`{ backups: ${latency.backups} }\`; node 2 wrote the sessions, node 1 (core 0) reads them one at a time, ` +
          'alternately one it holds (a local hit) and one it does not (a miss: it asks the peers that would hold it, one round trip, and keeps the copy); ' +
          'each miss is of a session not read there before.',
        '',
      )
      out.push(
        table(
          [
            'held / not held on node 1',
            'gets of each',
            'hit p50 ms',
            'hit p99 ms',
            'miss p50 ms',
            'miss p99 ms',
            'miss max ms',
            'extra p50 ms',
            'not found',
          ],
          [
            [
              `${n(latency.held)} / ${n(latency.notHeld)}`,
              n(latency.samples),
              latency.hitP50Ms,
              latency.hitP99Ms,
              latency.missP50Ms,
              latency.missP99Ms,
              latency.missMaxMs,
              round(latency.missP50Ms - latency.hitP50Ms, 3),
              latency.notFound,
            ],
          ],
        ),
        '',
      )
    }
    if (bystander) {
      out.push(
        `What a write costs a peer that does not hold the session: 3 nodes with \`{ backups: 1 }\`; node 1 changes, ${bystander.rate.toLocaleString('en-US')} a second, ` +
          'only sessions it backs up on node 2; node 3 holds none of them. CPU µs per second of each, while the writes run and for as long with nothing written just before.',
        '',
      )
      out.push(
        table(
          ['node', 'changes applied', 'CPU µs/s while writing', 'CPU µs/s idle'],
          [
            [
              'node 2 (the backup)',
              n(bystander.holderReceived),
              n(bystander.holderCpuMicrosPerSecond),
              n(bystander.holderIdleMicrosPerSecond),
            ],
            [
              'node 3 (a bystander)',
              n(bystander.bystanderReceived),
              n(bystander.bystanderCpuMicrosPerSecond),
              n(bystander.bystanderIdleMicrosPerSecond),
            ],
          ],
        ),
        '',
      )
    }
  }

  if (results.netns) {
    out.push('## 9. Sync write latency on a namespaced network', '')
    if ('skipped' in results.netns) {
      out.push(`Not measured in this run: ${results.netns.skipped}.`, '')
    } else {
      out.push(
        'Three nodes and an HTTP client, each in its own network namespace, every link delayed each way (bench/netns-sync-latency.ts). ' +
          'GETs one after another from the client to node 1, rotating through the sessions: /read changes nothing, /write changes the session, ' +
          "which node 1 sends in `sync` mode and waits for (to both peers with 'all', to the one backup with `{ backups: 1 }`). " +
          'Round trips are measured (1-byte TCP exchange, median); the delayer adds about 0.1 ms per packet to the delay set.',
        '',
      )
      out.push(
        table(
          [
            'placement',
            'delay each way ms',
            'RTT client-node / node-node ms',
            'route',
            'requests',
            'p50 ms',
            'p99 ms',
            'mean ms',
            'copies per session',
          ],
          results.netns.map((row) => [
            row.placement,
            row.delayMs,
            `${row.clientRttMs} / ${row.peerRttMs}`,
            row.route,
            n(row.requests),
            row.p50Ms,
            row.p99Ms,
            row.meanMs,
            row.copiesPerSession,
          ]),
        ),
        '',
      )
    }
  }

  if (targets.length > 0) out.splice(headerLength, 0, '## Targets', '', table(['target', 'measured', ''], targets), '')
  const goals = goalRows(results, previous)
  // A partial run that measured none of the goals (placement alone, say) has no goals table.
  if (goals.some((row) => row[4] !== 'not measured'))
    out.splice(
      headerLength,
      0,
      '## Goals of this round',
      '',
      'Last round: bench/results/previous.json' +
        (previous?.date ? ` (${previous.date.slice(0, 10)})` : '') +
        '; this run: the tables below.',
      '',
      table(['goal', 'target', 'last round', 'this run', ''], goals),
      '',
    )
  return `${out.join('\n')}\n`
}

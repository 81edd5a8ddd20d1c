/**
 * 9. `sync` write latency on a real (namespaced) network: three nodes, each in its own network
 * namespace at 10.10.10.1-3, and an HTTP client in another (10.10.10.100), every link delayed by
 * 0.25 ms and then 1 ms each way (__tests__/helpers/netns.ts; a userspace delayer, since this
 * kernel has no netem, which adds about 0.1 ms per packet: the measured round trip is reported).
 * Placement 'all' against `{ backups: 1 }`, side by side in one run: for each delay, each placement
 * in turn starts three nodes afresh (bench/nodes/netns-node.ts), logs in `sessions` users on node 1,
 * then times `requests` GETs one after another from the client namespace, rotating through the
 * users: /read (changes nothing: the request's own cost) and /write (a change that node 1 replicates
 * and waits for: 2 peers with 'all', 1 backup with `{ backups: 1 }`). After a warm-up of each route.
 * Nodes on core 0, the client on core 1. Needs root; skipped with a line saying why otherwise.
 */
import { NetnsClient } from '../__tests__/helpers/netns-client.js'
import { NetnsNetwork, netnsUnavailable, probeRtt } from '../__tests__/helpers/netns.js'
import { CookieJar } from '../__tests__/helpers/web-node.js'
import { BenchChild } from './lib/process.js'
import { percentile, round } from './lib/stats.js'

export type Placement = 'all' | { backups: number }

export interface NetnsSyncRow {
  placement: string
  /** The delay added on every link, each way. */
  delayMs: number
  /** Round trips measured with a 1-byte TCP exchange (median): client to node 1, node 1 to node 2. */
  clientRttMs: number
  peerRttMs: number
  route: '/read' | '/write'
  requests: number
  p50Ms: number
  p99Ms: number
  meanMs: number
  /** Sessions held across the three nodes, per session: 3 with 'all', 2 with `{ backups: 1 }`. */
  copiesPerSession: number
}

const PORT = 4055
const HTTP_PORT = 8080
const NODES = 3

export async function runNetnsSyncLatency(
  options: { delays: number[]; placements: Placement[]; sessions: number; requests: number; warmUp: number },
  log: (line: string) => void,
): Promise<NetnsSyncRow[] | { skipped: string }> {
  const unavailable = netnsUnavailable()
  if (unavailable) {
    log(`netns sync latency skipped: ${unavailable}`)
    return { skipped: unavailable }
  }
  const rows: NetnsSyncRow[] = []
  for (const delayMs of options.delays) {
    const network = await NetnsNetwork.create({ nodes: NODES, link: { delayMs } })
    try {
      const clientRttMs = round(await probeRtt(network, 'client', 1), 3)
      const peerRttMs = round(await probeRtt(network, 1, 2), 3)
      log(`netns: ${delayMs} ms each way, measured round trips: client-node ${clientRttMs} ms, node-node ${peerRttMs} ms`)
      for (const placement of options.placements) {
        for (const row of await measure(network, placement, options)) {
          const full = { ...row, delayMs, clientRttMs, peerRttMs }
          rows.push(full)
          log(
            `netns sync, ${full.placement}, ${delayMs} ms each way, GET ${full.route}: p50 ${full.p50Ms} ms, p99 ${full.p99Ms} ms, mean ${full.meanMs} ms (${full.requests} requests)`,
          )
        }
      }
    } finally {
      await network.destroy()
    }
  }
  return rows
}

async function measure(
  network: NetnsNetwork,
  placement: Placement,
  options: { sessions: number; requests: number; warmUp: number },
): Promise<Omit<NetnsSyncRow, 'delayMs' | 'clientRttMs' | 'peerRttMs'>[]> {
  const all = Array.from({ length: NODES }, (_, i) => i + 1)
  const nodes = all.map(
    (i) =>
      new BenchChild(
        'bench/nodes/netns-node.ts',
        {
          BENCH_NODE_ID: `node${i}`,
          BENCH_ADDRESS: network.address(i),
          BENCH_PORT: String(PORT),
          BENCH_HTTP_PORT: String(HTTP_PORT),
          BENCH_PEERS: JSON.stringify(
            all.filter((j) => j !== i).map((j) => ({ host: network.address(j), port: PORT, nodeId: `node${j}` })),
          ),
          BENCH_REPLICATION: JSON.stringify(placement),
        },
        0,
        ['ip', 'netns', 'exec', network.namespace(i)],
      ),
  )
  for (const node of nodes) network.track(node.child)
  // Listening for 'ready' before anything else is awaited: a node may be ready before the client is.
  const ready = Promise.all(nodes.map((node) => node.waitFor('ready')))
  const client = await NetnsClient.start(network)
  try {
    await ready
    const deadline = Date.now() + 30_000
    for (;;) {
      const views = await Promise.all(nodes.map((node) => node.call<{ state: string }[]>('members')))
      if (views.every((members) => members.every((member) => member.state === 'alive'))) break
      if (Date.now() > deadline) throw new Error('the three nodes did not all see each other alive within 30 s')
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    const url = (route: string) => `http://${network.address(1)}:${HTTP_PORT}${route}`
    const jars = Array.from({ length: options.sessions }, () => new CookieJar())
    for (const jar of jars) {
      const login = await client.browse(jar, url('/login'))
      if (login.status !== 200) throw new Error(`login: status ${login.status}`)
    }
    const rows: Omit<NetnsSyncRow, 'delayMs' | 'clientRttMs' | 'peerRttMs' | 'copiesPerSession'>[] = []
    for (const route of ['/read', '/write'] as const) {
      await client.time(jars, url(route), options.warmUp)
      const durations = await client.time(jars, url(route), options.requests)
      rows.push({
        placement: placement === 'all' ? 'all' : `backups: ${placement.backups}`,
        route,
        requests: durations.length,
        p50Ms: round(percentile(durations, 50), 3),
        p99Ms: round(percentile(durations, 99), 3),
        meanMs: round(durations.reduce((sum, each) => sum + each, 0) / durations.length, 3),
      })
    }
    // With backups, each session is on two of the three nodes: said beside the numbers.
    const held = await Promise.all(nodes.map((node) => node.call<{ sessions: number }>('stats')))
    const copies = held.reduce((sum, stats) => sum + stats.sessions, 0) / options.sessions
    return rows.map((row) => ({ ...row, copiesPerSession: round(copies, 2) }))
  } finally {
    await client.close()
    for (const node of nodes) {
      await node.call('stop').catch(() => undefined)
      await node.stop()
    }
  }
}

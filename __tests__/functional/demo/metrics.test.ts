import { readFileSync } from 'node:fs'
import path from 'node:path'
import { ROOT } from '../../helpers/child.js'
import { Browser, startAppNode } from '../../helpers/demo-nodes.js'
import type { WatchedProcess } from '../../helpers/process-lines.js'
import { parsePrometheusText, valueOf, type Family } from '../../helpers/prometheus-text.js'
import { settles } from '../../helpers/settle.js'

/**
 * Two processes of the example app (127.0.17.41 and .42): each serves /metrics, which must read as
 * strict Prometheus text and say what the cluster is doing: the sessions made, the peer up, the
 * bytes sent, the state transfer done. Every connect_peer_ metric is documented in docs/operations.md.
 */
const HOSTS = ['127.0.17.41', '127.0.17.42'] as const
const HTTP = 3471
const REPLICATION = 4471
let was1: WatchedProcess
let was2: WatchedProcess

beforeAll(async () => {
  was1 = startAppNode('was1', HOSTS[0], HTTP, REPLICATION, `was2@${HOSTS[1]}:${REPLICATION}`)
  was2 = startAppNode('was2', HOSTS[1], HTTP, REPLICATION, `was1@${HOSTS[0]}:${REPLICATION}`)
  await Promise.all([was1.waitFor(/\[was1\] peer was2 is up/), was2.waitFor(/\[was2\] peer was1 is up/)])
  await Promise.all([was1.waitFor(/\[was1\] web on/), was2.waitFor(/\[was2\] web on/)])
}, 60_000)

afterAll(async () => {
  await Promise.all([was1, was2].map((node) => node?.kill('SIGKILL')))
})

async function scrape(host: string): Promise<Map<string, Family>> {
  const response = await fetch(`http://${host}:${HTTP}/metrics`)
  expect(response.status).toBe(200)
  expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8')
  // A scrape makes no session: no cookie is set.
  expect(response.headers.get('set-cookie')).toBeNull()
  return parsePrometheusText(await response.text())
}

test('both nodes serve strict Prometheus text whose values follow the sessions made and the peer', async () => {
  // Five clients on was1, three on was2: eight sessions, replicated to both nodes.
  for (const [host, clients] of [
    [HOSTS[0], 5],
    [HOSTS[1], 3],
  ] as const) {
    for (let i = 0; i < clients; i++) await new Browser(`http://${host}:${HTTP}`).post('/count')
  }
  let last = new Map<string, Family>()
  // Replication is asynchronous: each node's count reaches eight when the other's changes arrive.
  for (const host of HOSTS) {
    await settles(
      async () => valueOf((last = await scrape(host)), 'connect_peer_sessions') === 8,
      10_000,
      () => `${host}: connect_peer_sessions ${valueOf(last, 'connect_peer_sessions')}`,
    )
  }
  for (const [host, peer] of [
    [HOSTS[0], 'was2'],
    [HOSTS[1], 'was1'],
  ] as const) {
    const families = await scrape(host)
    expect(families.get('connect_peer_sessions')?.type).toBe('gauge')
    expect(valueOf(families, 'connect_peer_tombstones')).toBe(0)
    expect(valueOf(families, 'connect_peer_syncing')).toBe(0)
    expect(valueOf(families, 'connect_peer_member_up', { peer })).toBe(1)
    expect(valueOf(families, 'connect_peer_member_state', { peer, state: 'alive' })).toBe(1)
    expect(valueOf(families, 'connect_peer_member_state', { peer, state: 'dead' })).toBe(0)
    expect(valueOf(families, 'connect_peer_member_connections_total', { peer })).toBe(1)
    expect(valueOf(families, 'connect_peer_queue_bytes', { peer })).toBeGreaterThanOrEqual(0)
    expect(valueOf(families, 'connect_peer_sent_bytes_total')).toBeGreaterThan(0)
    expect(valueOf(families, 'connect_peer_received_bytes_total')).toBeGreaterThan(0)
    expect(valueOf(families, 'connect_peer_protocol_errors_total')).toBe(0)
    // Each node received the other's changes, each as a batch it applied, and one state transfer.
    expect(valueOf(families, 'connect_peer_replication_apply_seconds_count', { peer })).toBeGreaterThanOrEqual(3)
    expect(valueOf(families, 'connect_peer_state_transfer_seconds_count', { peer })).toBe(1)
    // Protocol 3 between two current nodes: each batch carries the sender's clock, for the lag.
    expect(valueOf(families, 'connect_peer_member_protocol_version', { peer })).toBe(3)
    expect(valueOf(families, 'connect_peer_replication_lag_seconds_count', { peer })).toBeGreaterThanOrEqual(1)
    expect(valueOf(families, 'connect_peer_version_refusals_total')).toBe(0)
    // The process's own metrics come along in the demo (prom-client's defaults).
    expect(families.get('process_cpu_user_seconds_total')?.type).toBe('counter')
  }
})

test('every connect_peer_ metric the demo serves is documented in docs/operations.md, with its type', async () => {
  const operations = readFileSync(path.join(ROOT, 'docs', 'operations.md'), 'utf8')
  const families = [...(await scrape(HOSTS[0])).values()].filter((family) => family.name.startsWith('connect_peer_'))
  expect(families.length).toBeGreaterThan(15)
  const undocumented = families.filter((family) => !new RegExp(`\\| \`${family.name}\`[^|]*\\| ${family.type} \\|`).test(operations))
  expect(undocumented.map((family) => `${family.name} (${family.type})`)).toEqual([])
})

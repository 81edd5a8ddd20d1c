import { readFileSync } from 'node:fs'
import path from 'node:path'
import { Registry } from 'prom-client'
import type { Member } from '../../../lib/cluster/peer-link.js'
import { PeerStore } from '../../../lib/peer-store/peer-store.js'
import type { Replication, ReplicationEvents } from '../../../lib/replication/replication.js'
import { collectMetrics } from '../../../lib/metrics.js'
import { metricsFor } from '../../../lib/monitoring/metrics.js'
import { ROOT } from '../../helpers/child.js'
import { parsePrometheusText, valueOf } from '../../helpers/prometheus-text.js'

/**
 * The metrics, in-process: the replication behind the store is a stand-in (no sockets) whose events
 * are the very ones the store gave it, so a measurement goes through the same seam as a real one.
 */
let events: ReplicationEvents | undefined
const members: Member[] = []

jest.mock('../../../lib/replication/create-replication.js', () => ({
  createReplication: (_table: unknown, _setup: unknown, given: ReplicationEvents): Replication => {
    events = given
    return {
      start: () => Promise.resolve(),
      port: 4055,
      syncing: false,
      publish: () => undefined,
      publishClear: () => undefined,
      fetchMissing: () => Promise.resolve(),
      members: () => members.map((member) => ({ ...member })),
      stats: () => ({ framesIn: 7, bytesIn: 1234, queueOverflows: 1 }),
      stop: () => Promise.resolve(),
    }
  },
}))

const member = (nodeId: string, state: Member['state'], queuedBytes = 0): Member => ({
  nodeId,
  address: `127.0.17.${nodeId.slice(-1)}:4055`,
  state,
  since: new Date(1_700_000_000_000),
  queuedBytes,
  connections: 2,
  protocol: 3,
})

let store: PeerStore
let registry: Registry

beforeEach(async () => {
  members.splice(0, members.length, member('was2', 'alive', 512), member('was3', 'dead'))
  store = new PeerStore(['was2@127.0.17.2:4055', 'was3@127.0.17.3:4055'], { nodeId: 'was1', listen: '127.0.17.1:4055' })
  await store.ready()
  registry = new Registry()
})

afterEach(async () => {
  await store.close()
})

const scrape = async () => parsePrometheusText(await registry.metrics())

test("a 'lag' measurement from the replication lands in the lag histogram of its peer", async () => {
  collectMetrics(store, { register: registry })
  events!.measured!({ kind: 'lag', peer: 'was2', seconds: 0.003 })
  events!.measured!({ kind: 'lag', peer: 'was2', seconds: 0.2 })
  events!.measured!({ kind: 'lag', peer: 'was3', seconds: -0.001 }) // a sender's clock ahead: no lag
  const families = await scrape()
  expect(families.get('connect_peer_replication_lag_seconds')?.type).toBe('histogram')
  expect(valueOf(families, 'connect_peer_replication_lag_seconds_count', { peer: 'was2' })).toBe(2)
  expect(valueOf(families, 'connect_peer_replication_lag_seconds_sum', { peer: 'was2' })).toBeCloseTo(0.203)
  expect(valueOf(families, 'connect_peer_replication_lag_seconds_bucket', { peer: 'was2', le: '0.005' })).toBe(1)
  expect(valueOf(families, 'connect_peer_replication_lag_seconds_bucket', { peer: 'was2', le: '0.25' })).toBe(2)
  expect(valueOf(families, 'connect_peer_replication_lag_seconds_bucket', { peer: 'was3', le: '0.0005' })).toBe(1)
})

test('apply, ack and transfer measurements each land in their own histogram', async () => {
  collectMetrics(store, { register: registry })
  events!.measured!({ kind: 'apply', peer: 'was2', seconds: 0.00002 })
  events!.measured!({ kind: 'ack', seconds: 0.004 })
  events!.measured!({ kind: 'transfer', peer: 'was3', seconds: 1.5, sessions: 2500 })
  const families = await scrape()
  expect(valueOf(families, 'connect_peer_replication_apply_seconds_count', { peer: 'was2' })).toBe(1)
  expect(valueOf(families, 'connect_peer_replication_ack_seconds_count')).toBe(1)
  expect(valueOf(families, 'connect_peer_replication_ack_seconds_sum')).toBeCloseTo(0.004)
  expect(valueOf(families, 'connect_peer_state_transfer_seconds_sum', { peer: 'was3' })).toBe(1.5)
  expect(valueOf(families, 'connect_peer_state_transfer_sessions_bucket', { peer: 'was3', le: '1000' })).toBe(0)
  expect(valueOf(families, 'connect_peer_state_transfer_sessions_bucket', { peer: 'was3', le: '10000' })).toBe(1)
})

test('gauges and counters are read from stats() and members() at each scrape', async () => {
  collectMetrics(store, { register: registry })
  await store.set('s1', { cookie: { originalMaxAge: null }, n: 1 })
  await store.set('s2', { cookie: { originalMaxAge: null }, n: 2 })
  await store.destroy('s2')
  let families = await scrape()
  expect(families.get('connect_peer_sessions')?.type).toBe('gauge')
  expect(valueOf(families, 'connect_peer_sessions')).toBe(1)
  expect(valueOf(families, 'connect_peer_tombstones')).toBe(1)
  expect(valueOf(families, 'connect_peer_syncing')).toBe(0)
  expect(families.get('connect_peer_frames_received_total')?.type).toBe('counter')
  expect(valueOf(families, 'connect_peer_frames_received_total')).toBe(7)
  expect(valueOf(families, 'connect_peer_received_bytes_total')).toBe(1234)
  expect(valueOf(families, 'connect_peer_queue_overflows_total')).toBe(1)
  expect(valueOf(families, 'connect_peer_sent_bytes_total')).toBe(0)
  expect(valueOf(families, 'connect_peer_member_up', { peer: 'was2' })).toBe(1)
  expect(valueOf(families, 'connect_peer_member_up', { peer: 'was3' })).toBe(0)
  expect(valueOf(families, 'connect_peer_member_state', { peer: 'was3', state: 'dead' })).toBe(1)
  expect(valueOf(families, 'connect_peer_member_state', { peer: 'was3', state: 'alive' })).toBe(0)
  expect(valueOf(families, 'connect_peer_member_state_since_timestamp_seconds', { peer: 'was2' })).toBe(1_700_000_000)
  expect(valueOf(families, 'connect_peer_queue_bytes', { peer: 'was2' })).toBe(512)
  expect(valueOf(families, 'connect_peer_member_connections_total', { peer: 'was3' })).toBe(2)

  // The next scrape sees the members as they are then: one came up, one was removed.
  members.splice(0, members.length, member('was3', 'alive'))
  await store.set('s3', { cookie: { originalMaxAge: null } })
  families = await scrape()
  expect(valueOf(families, 'connect_peer_sessions')).toBe(2)
  expect(valueOf(families, 'connect_peer_member_up', { peer: 'was3' })).toBe(1)
  expect(() => valueOf(families, 'connect_peer_member_up', { peer: 'was2' })).toThrow(/0 samples/)
})

test('stop() unregisters every metric and stops listening; a prefix renames them all', async () => {
  const metrics = collectMetrics(store, { register: registry, prefix: 'app_sessions_' })
  expect(metrics.names.every((name) => name.startsWith('app_sessions_'))).toBe(true)
  expect((await scrape()).size).toBe(metrics.names.length)
  // Registering the same names again in the same registry is refused by prom-client.
  expect(() => collectMetrics(store, { register: registry, prefix: 'app_sessions_' })).toThrow(/already been registered/)
  metrics.stop()
  metrics.stop()
  expect(registry.getMetricsAsArray()).toEqual([])
  // The listener is gone from the store: stopping twice unsubscribed once.
  const unsubscribe = jest.fn()
  const other = metricsFor({ stats: () => store.stats(), members: () => [], observe: () => unsubscribe }, { register: registry })
  other[Symbol.dispose]()
  other.stop()
  expect(unsubscribe).toHaveBeenCalledTimes(1)
  expect(registry.getMetricsAsArray()).toEqual([])
})

test('every name follows the conventions: the prefix, _total on counters only, base units', async () => {
  const metrics = collectMetrics(store, { register: registry })
  const families = await scrape()
  expect([...families.keys()].sort()).toEqual([...metrics.names].sort())
  for (const family of families.values()) {
    expect(family.name).toMatch(/^connect_peer_[a-z_]+$/)
    expect(family.help).toBeTruthy()
    expect(`${family.name}: ${family.type}`).toBe(`${family.name}: ${family.name.endsWith('_total') ? 'counter' : family.type}`)
    if (family.type === 'counter') expect(family.name).toMatch(/_total$/)
    expect(family.name).not.toMatch(/_(ms|milliseconds|kb|mb)(_|$)/)
  }
})

test('a store of another kind, a bad prefix or bad options are refused', () => {
  expect(() => collectMetrics({} as PeerStore, { register: registry })).toThrow(/a PeerStore from connect-peer/)
  expect(() => collectMetrics(store, { register: registry, prefix: 'bad-prefix' })).toThrow(/prefix/)
  expect(() => collectMetrics(store, null as never)).toThrow(/options/)
})

test('metricsFor reads any source: the strict reader refuses what Prometheus would', async () => {
  metricsFor({ stats: () => store.stats(), members: () => [], observe: () => () => undefined }, { register: registry })
  const text = await registry.metrics()
  expect(() => parsePrometheusText(text)).not.toThrow()
  expect(() => parsePrometheusText(text.trimEnd())).toThrow(/newline/)
  expect(() => parsePrometheusText('# TYPE a counter\na 1\n# TYPE b gauge\nb 1\na 2\n')).toThrow(/split/)
  expect(() => parsePrometheusText('# TYPE a gauge\na{x="1"} 1\na{x="1"} 2\n')).toThrow(/twice/)
  expect(() => parsePrometheusText('a 1\n')).toThrow(/no TYPE/)
  expect(() => parsePrometheusText('# TYPE a gauge\na{x="\\q"} 1\n')).toThrow(/escape/)
  expect(() => parsePrometheusText('# TYPE a gauge\na one\n')).toThrow(/bad value/)
  expect(() => parsePrometheusText('# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n')).toThrow(
    /cumulative/,
  )
  expect(() => parsePrometheusText('# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n')).toThrow(/\+Inf/)
  expect(() => parsePrometheusText('# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n')).toThrow(/_count/)
})

/** A store's stats with a Redis tier and backups, as `stats()` reports them then. */
const withTiers = () => ({
  ...store.stats(),
  redis: { connected: false, pending: 3, writes: 10, staleWrites: 1, wholeWrites: 2, failures: 4, overflows: 0, reads: 5 },
  backups: { trims: 6, released: 40 },
})

test('a store with a Redis tier and backups also has their gauges and counters; one without has none of them', async () => {
  const plain = metricsFor({ stats: () => store.stats(), members: () => [], observe: () => () => undefined }, { register: registry })
  expect(plain.names.filter((name) => /redis|backup/.test(name))).toEqual([])
  plain.stop()
  metricsFor({ stats: withTiers, members: () => [], observe: () => () => undefined }, { register: registry })
  const families = await scrape()
  expect(valueOf(families, 'connect_peer_redis_up')).toBe(0)
  expect(valueOf(families, 'connect_peer_redis_pending_sessions')).toBe(3)
  expect(valueOf(families, 'connect_peer_redis_writes_total')).toBe(10)
  expect(valueOf(families, 'connect_peer_redis_failures_total')).toBe(4)
  expect(valueOf(families, 'connect_peer_redis_reads_total')).toBe(5)
  expect(valueOf(families, 'connect_peer_backup_trims_total')).toBe(6)
  expect(valueOf(families, 'connect_peer_backup_released_total')).toBe(40)
})

test('every metric, Redis and backups included, is in docs/operations.md with its type', async () => {
  metricsFor({ stats: withTiers, members: () => [member('was2', 'alive')], observe: () => () => undefined }, { register: registry })
  const operations = readFileSync(path.join(ROOT, 'docs', 'operations.md'), 'utf8')
  const families = [...(await scrape()).values()]
  expect(families.length).toBeGreaterThan(30)
  const undocumented = families.filter((family) => !new RegExp(`\\| \`${family.name}\`[^|]*\\| ${family.type} \\|`).test(operations))
  expect(undocumented.map((family) => `${family.name} (${family.type})`)).toEqual([])
})

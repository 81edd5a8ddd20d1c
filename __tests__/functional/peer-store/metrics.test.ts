import { Registry } from 'prom-client'
import { PeerStore } from '../../../lib/index.js'
import { collectMetrics } from '../../../lib/metrics.js'
import { parsePrometheusText, valueOf } from '../../helpers/prometheus-text.js'

/**
 * The timings measured by a real replication over loopback sockets (127.0.17.31 and .32), in
 * `sendMode: 'ack'`: every write waits for its ack (the `ack` histogram), every change received is
 * applied (the `apply` histogram, by sender), and each store's state transfer is timed.
 */
const PORT = 4741
let was1: PeerStore
let was2: PeerStore
const registries = { was1: new Registry(), was2: new Registry() }

beforeAll(async () => {
  const options = { heartbeatInterval: 500, suspectTimeout: 1500, deadTimeout: 5000, sendMode: 'ack' as const }
  was1 = new PeerStore([`was2@127.0.17.32:${PORT}`], { nodeId: 'was1', listen: `127.0.17.31:${PORT}`, ...options })
  was2 = new PeerStore([`was1@127.0.17.31:${PORT}`], { nodeId: 'was2', listen: `127.0.17.32:${PORT}`, ...options })
  // Collecting from the start, as an app does: the first state transfers are measured too.
  collectMetrics(was1, { register: registries.was1 })
  collectMetrics(was2, { register: registries.was2 })
  await Promise.all([new Promise((resolve) => was1.once('sync', resolve)), new Promise((resolve) => was2.once('sync', resolve))])
})

afterAll(async () => {
  await Promise.all([was1?.close(), was2?.close()])
})

test('writes in ack mode are timed until acked; the receiver times each batch it applies; transfers are timed', async () => {
  for (let i = 0; i < 25; i++) {
    await was1.set(`s${i}.was1`, { cookie: { originalMaxAge: 60_000, expires: new Date(Date.now() + 60_000) }, i } as never)
  }
  await was1.destroy('s0.was1')
  const sender = parsePrometheusText(await registries.was1.metrics())
  const receiver = parsePrometheusText(await registries.was2.metrics())
  // 25 upserts and a destroy, each acked by was2 before set() resolved.
  expect(valueOf(sender, 'connect_peer_replication_ack_seconds_count')).toBe(26)
  expect(valueOf(sender, 'connect_peer_replication_ack_seconds_sum')).toBeGreaterThan(0)
  // Acked on receipt: each was applied by then, as its own batch.
  expect(valueOf(receiver, 'connect_peer_replication_apply_seconds_count', { peer: 'was1' })).toBe(26)
  expect(valueOf(receiver, 'connect_peer_sessions')).toBe(24)
  expect(valueOf(receiver, 'connect_peer_tombstones')).toBe(1)
  expect(valueOf(sender, 'connect_peer_sent_bytes_total')).toBeGreaterThan(0)
  expect(valueOf(receiver, 'connect_peer_member_up', { peer: 'was1' })).toBe(1)
  for (const [families, peer] of [
    [sender, 'was2'],
    [receiver, 'was1'],
  ] as const) {
    expect(valueOf(families, 'connect_peer_state_transfer_seconds_count', { peer })).toBe(1)
    expect(valueOf(families, 'connect_peer_state_transfer_sessions_sum', { peer })).toBe(0)
  }
  expect(receiver.get('connect_peer_replication_lag_seconds')?.type).toBe('histogram')
})

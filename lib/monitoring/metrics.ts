import { Counter, Gauge, Histogram, register as globalRegistry, type Registry } from 'prom-client'
import { InvalidOptionError } from '../base/errors.js'
import type { Member, MemberState } from '../cluster/peer-link.js'
import { internalsOf } from '../peer-store/internals.js'
import type { PeerStore, PeerStoreStats } from '../peer-store/peer-store.js'
import type { RedisTierStats } from '../replication/redis/redis-replication.js'
import type { BackupStats, Measurement } from '../replication/replication.js'

/** Options of `collectMetrics`. */
export interface MetricsOptions {
  /**
   * The prom-client registry the metrics are registered in.
   * @default prom-client's global `register`
   */
  register?: Registry
  /**
   * Put before every metric name; Prometheus names allow `[a-zA-Z_:][a-zA-Z0-9_:]*`.
   * @default 'connect_peer_'
   */
  prefix?: string
}

/** What `collectMetrics` returns: `stop()` unregisters every metric and stops listening. Idempotent. */
export interface MetricsCollection {
  /** The names registered, prefix included. */
  readonly names: readonly string[]
  stop(): void
  [Symbol.dispose](): void
}

/** What metrics read from a store: what it counts, its members, and the replication's timings. */
export interface MetricsSource {
  stats(): PeerStoreStats
  members(): Member[]
  observe(listener: (measurement: Measurement) => void): () => void
}

/** Every membership state, for the `state` label: each member has one series per state, 1 for the current one. */
const MEMBER_STATES = ['connecting', 'alive', 'suspect', 'dead'] as const satisfies readonly MemberState[]
// A state added to MemberState and forgotten here does not compile.
const everyState: [Exclude<MemberState, (typeof MEMBER_STATES)[number]>] extends [never] ? true : never = true
void everyState

/** Histogram buckets, in seconds: lag and acks cross the network, an apply does not. */
const NETWORK_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
const APPLY_BUCKETS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1]
const TRANSFER_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]
const SESSION_BUCKETS = [0, 10, 100, 1000, 10_000, 100_000, 1_000_000]

/** The totals of `stats()` exposed as counters: metric name (after the prefix), the field, its help. */
const TOTALS = [
  ['frames_received_total', 'framesIn', 'Replication frames received from peers.'],
  ['frames_sent_total', 'framesOut', 'Replication frames sent to peers.'],
  ['received_bytes_total', 'bytesIn', 'Bytes received on replication connections.'],
  ['sent_bytes_total', 'bytesOut', 'Bytes sent on replication connections.'],
  ['protocol_errors_total', 'protocolErrors', 'Connections closed because of a bad frame or message.'],
  ['refused_handshakes_total', 'refusedHandshakes', 'Handshakes refused, by this node or by the peer.'],
  ['queue_overflows_total', 'queueOverflows', "Times a peer's send queue overflowed and was dropped (the peer is then resynchronised)."],
  ['rejected_connections_total', 'rejectedConnections', 'Connections closed at once because their host had every handshake slot.'],
  ['oversized_frames_total', 'oversizedFrames', 'Frames not sent because they exceed what the peer accepts.'],
  ['version_refusals_total', 'versionRefusals', 'Handshakes refused because the two nodes speak no protocol version in common.'],
  ['evicted_sessions_total', 'evicted', 'Sessions this node evicted for maxSessions or maxSessionsPerPrincipal.'],
  ['refused_sessions_total', 'refused', 'Sessions refused with SessionLimitError.'],
  ['merged_saves_total', 'merged', 'Saves merged with a newer version another request stored since the session was loaded.'],
] as const satisfies ReadonlyArray<readonly [string, keyof PeerStoreStats, string]>

/** The Redis tier's totals, for a store that has one. */
const REDIS_TOTALS = [
  ['redis_writes_total', 'writes', 'Writes Redis took.'],
  ['redis_stale_writes_total', 'staleWrites', 'Writes Redis refused because it held a newer version (read back instead).'],
  ['redis_whole_writes_total', 'wholeWrites', 'Changes written as the whole session because Redis lacked the version they were made on.'],
  ['redis_failures_total', 'failures', 'Redis commands that failed (Redis down or slow); their sessions are written again later.'],
  ['redis_overflows_total', 'overflows', 'Times the pending queue passed redisMaxPending and a whole write-back was scheduled.'],
  ['redis_reads_total', 'reads', 'Sessions read from Redis.'],
] as const satisfies ReadonlyArray<readonly [string, keyof RedisTierStats, string]>

/** Backups mode's totals, for a store with `replication: { backups }`. */
const BACKUP_TOTALS = [
  ['backup_trims_total', 'trims', 'Trim passes run to let go of copies this node no longer holds.'],
  ['backup_released_total', 'released', 'Copies let go, each once every holder had confirmed it.'],
] as const satisfies ReadonlyArray<readonly [string, keyof BackupStats, string]>

/**
 * Registers Prometheus metrics for a PeerStore in a prom-client registry: gauges and counters read
 * from `store.stats()` and `store.members()` when the registry is scraped (nothing runs between
 * scrapes), and histograms of the replication's timings (lag, apply, write-to-ack, state transfers).
 * Every name starts with `connect_peer_`; docs/operations.md lists each with its type and meaning.
 * prom-client is an optional peer dependency: install it to use this entry. Registering a second
 * store in the same registry fails on the duplicate names: give each its own registry or prefix.
 *
 * @example
 * ```ts
 * import { register } from 'prom-client'
 * import { collectMetrics } from 'connect-peer/metrics'
 *
 * const metrics = collectMetrics(store)
 * app.get('/metrics', async (_req, res) => {
 *   res.type(register.contentType).send(await register.metrics())
 * })
 * // later, if the store goes away before the process: metrics.stop()
 * ```
 */
export function collectMetrics(store: PeerStore, options: MetricsOptions = {}): MetricsCollection {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('options', 'an object', options)
  const internals = internalsOf(store)
  return metricsFor(
    { stats: () => store.stats(), members: () => store.members(), observe: (listener) => internals.observe(listener) },
    options,
  )
}

/** `collectMetrics` on any source: what the tests drive directly. */
export function metricsFor(source: MetricsSource, options: MetricsOptions = {}): MetricsCollection {
  const registry = options.register ?? globalRegistry
  const prefix = options.prefix ?? 'connect_peer_'
  if (typeof prefix !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix))
    throw new InvalidOptionError('prefix', 'a Prometheus name prefix such as "connect_peer_" ([a-zA-Z_:][a-zA-Z0-9_:]*)', prefix)
  const registers = [registry]
  const names: string[] = []
  /** The full name of a metric, remembered so that `stop()` removes it. */
  const name = (suffix: string) => {
    names.push(prefix + suffix)
    return prefix + suffix
  }
  const member = (each: Member) => each.nodeId ?? each.address

  const gauge = (suffix: string, help: string, read: (stats: PeerStoreStats) => number) =>
    new Gauge({
      name: name(suffix),
      help,
      registers,
      collect() {
        this.set(read(source.stats()))
      },
    })
  gauge('sessions', 'Live sessions held here.', (stats) => stats.sessions)
  gauge('tombstones', 'Tombstones of destroyed sessions still remembered.', (stats) => stats.tombstones)
  gauge('syncing', '1 while this node is still receiving its state from a peer, else 0.', (stats) => (stats.syncing ? 1 : 0))
  /** A total the store keeps: the counter shows it as it is at the scrape. */
  const total = (suffix: string, help: string, read: (stats: PeerStoreStats) => number) =>
    new Counter({
      name: name(suffix),
      help,
      registers,
      collect() {
        this.reset()
        this.inc(read(source.stats()))
      },
    })
  for (const [suffix, field, help] of TOTALS) total(suffix, help, (stats) => stats[field])
  // The Redis tier's and backups' counters exist from the start for a store configured with them.
  const initial = source.stats()
  if (initial.redis) {
    gauge('redis_up', '1 while commands reach Redis, else 0 (requests go on from memory).', (stats) => (stats.redis?.connected ? 1 : 0))
    gauge('redis_pending_sessions', 'Sessions whose latest change waits to be written to Redis.', (stats) => stats.redis?.pending ?? 0)
    for (const [suffix, field, help] of REDIS_TOTALS) total(suffix, help, (stats) => stats.redis?.[field] ?? 0)
  }
  if (initial.backups) for (const [suffix, field, help] of BACKUP_TOTALS) total(suffix, help, (stats) => stats.backups?.[field] ?? 0)

  /** A gauge per member, started afresh at every scrape: a member removed at run time disappears. */
  const perMember = (suffix: string, help: string, labelNames: readonly string[], fill: (metric: Gauge, each: Member) => void) =>
    new Gauge({
      name: name(suffix),
      help,
      labelNames,
      registers,
      collect() {
        this.reset()
        for (const each of source.members()) fill(this, each)
      },
    })
  perMember('member_up', '1 while the peer is alive (connected and answering heartbeats), else 0.', ['peer'], (metric, each) =>
    metric.set({ peer: member(each) }, each.state === 'alive' ? 1 : 0),
  )
  perMember(
    'member_state',
    "The peer's membership state: 1 for the state it is in, 0 for the others.",
    ['peer', 'state'],
    (metric, each) => {
      for (const state of MEMBER_STATES) metric.set({ peer: member(each), state }, each.state === state ? 1 : 0)
    },
  )
  perMember('member_state_since_timestamp_seconds', 'When the peer entered its current state (Unix time).', ['peer'], (metric, each) =>
    metric.set({ peer: member(each) }, each.since.getTime() / 1000),
  )
  perMember('queue_bytes', 'Bytes waiting to be sent to the peer.', ['peer'], (metric, each) =>
    metric.set({ peer: member(each) }, each.queuedBytes),
  )
  perMember(
    'member_protocol_version',
    'The protocol version agreed with the peer (absent before its first connection).',
    ['peer'],
    (metric, each) => {
      if (each.protocol !== null) metric.set({ peer: member(each) }, each.protocol)
    },
  )
  new Counter({
    name: name('member_connections_total'),
    help: 'Connections to the peer completed since this node started.',
    labelNames: ['peer'],
    registers,
    collect() {
      this.reset()
      for (const each of source.members()) this.inc({ peer: member(each) }, each.connections)
    },
  })

  const histogram = (suffix: string, help: string, buckets: number[], labelNames: string[]) =>
    new Histogram({ name: name(suffix), help, buckets, labelNames, registers })
  const lag = histogram(
    'replication_lag_seconds',
    "From the sender's clock in a batch to its arrival here, by sending peer.",
    NETWORK_BUCKETS,
    ['peer'],
  )
  const apply = histogram('replication_apply_seconds', 'Applying one received batch of changes here, by sending peer.', APPLY_BUCKETS, [
    'peer',
  ])
  const ack = histogram(
    'replication_ack_seconds',
    "From a local write to its confirmation by every live peer (sendMode 'ack' or 'sync').",
    NETWORK_BUCKETS,
    [],
  )
  const transfer = histogram('state_transfer_seconds', 'One whole state transfer from a peer, by peer.', TRANSFER_BUCKETS, ['peer'])
  const transferred = histogram(
    'state_transfer_sessions',
    'Sessions and tombstones one state transfer brought, by peer.',
    SESSION_BUCKETS,
    ['peer'],
  )

  const unsubscribe = source.observe((measurement) => {
    switch (measurement.kind) {
      case 'lag':
        // Clocks of two machines: a sender slightly ahead gives a negative lag, which is none.
        lag.observe({ peer: measurement.peer }, Math.max(0, measurement.seconds))
        return
      case 'apply':
        apply.observe({ peer: measurement.peer }, measurement.seconds)
        return
      case 'ack':
        ack.observe(measurement.seconds)
        return
      case 'transfer':
        transfer.observe({ peer: measurement.peer }, measurement.seconds)
        transferred.observe({ peer: measurement.peer }, measurement.sessions)
        return
    }
  })

  let stopped = false
  const stop = () => {
    if (stopped) return
    stopped = true
    unsubscribe()
    for (const each of names) registry.removeSingleMetric(each)
  }
  return { names, stop, [Symbol.dispose]: stop }
}

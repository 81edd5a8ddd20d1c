import type { ClusterConfig } from '../cluster/cluster-options.js'
import type { SessionLimits } from '../codec/session-codec.js'
import type { SessionTable } from '../table/session-table.js'
import { PeerReplication } from './peer-replication.js'
import { CompositeReplication } from './composite-replication.js'
import { RedisReplication } from './redis/redis-replication.js'
import type { RedisConfig } from './redis/redis-options.js'
import type { Replication, ReplicationEvents } from './replication.js'
import type { ReplicationConfig } from './replication-options.js'

export interface ReplicationSetup {
  readonly nodeId: string
  /** How long a write waits for a confirmation in `ack`/`sync` mode. */
  readonly ackTimeout: number
  readonly session: SessionLimits
  readonly replication: ReplicationConfig
  /** Present when the store has peers (or listens for them). */
  readonly cluster: ClusterConfig | undefined
  /** Present when the store has a Redis tier. */
  readonly redis: RedisConfig | undefined
}

/**
 * The replication a store's configuration asks for: every peer holds every session; a Redis tier
 * beside the peers (or alone); or nothing, for a store without either.
 */
export function createReplication(table: SessionTable, setup: ReplicationSetup, events: ReplicationEvents): Replication | undefined {
  const parts: Replication[] = []
  if (setup.cluster)
    parts.push(new PeerReplication(table, { cluster: setup.cluster, replication: setup.replication, session: setup.session }, events))
  if (setup.redis) parts.push(new RedisReplication(table, { ...setup, redis: setup.redis }, events))
  if (parts.length <= 1) return parts[0]
  return new CompositeReplication(table, parts)
}

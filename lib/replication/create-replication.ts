import type { ClusterConfig } from '../cluster/cluster-options.js'
import type { SessionLimits } from '../codec/session-codec.js'
import type { SessionTable } from '../table/session-table.js'
import { AllToAllReplication } from './all-to-all.js'
import type { Replication, ReplicationEvents } from './replication.js'
import type { ReplicationConfig } from './replication-options.js'

/** The replication a store's configuration asks for: today, every peer holds every session. */
export function createReplication(
  table: SessionTable,
  config: { cluster: ClusterConfig; replication: ReplicationConfig; session: SessionLimits },
  events: ReplicationEvents,
): Replication {
  return new AllToAllReplication(table, config, events)
}

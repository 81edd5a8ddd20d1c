import { InvalidOptionError } from '../base/errors.js'
import { boolean, checkKnownNames, integer, oneOf, resolveTable, type OptionTable, type ResolvedTable } from '../base/option-spec.js'
import { MAX_BATCH } from '../protocol/limits.js'

/** How long a write waits for peers: not at all, until received, or until applied. */
export type SendMode = 'async' | 'ack' | 'sync'

/** Every peer holds every session, or each session has an owner and `backups` copies elsewhere. */
export type ReplicationMode = 'all' | { backups?: number }

/** The most backups a session may have: past a few, every node holding everything is cheaper. */
const MAX_BACKUPS = 8

/** Options of replication: where sessions go, when writes resolve, how state is transferred, what is reported. */
export interface ReplicationOptions {
  /**
   * Which peers hold a session. `'all'`: every peer (Tomcat's DeltaManager), right for two to four
   * nodes. `{ backups: k }`: the node that wrote it and `k` backups picked by rendezvous hashing over
   * the live members (Tomcat's BackupManager); a node without a copy fetches it from them on a miss.
   * Bytes and CPU per write then stay flat as the cluster grows. `{}` means `{ backups: 1 }`.
   * @default 'all'
   */
  replication?: ReplicationMode
  /**
   * When `set`/`destroy` resolve: 'async' at once (Tomcat's channelSendOptions=8), 'ack' once every
   * live peer (holding the session, in backups mode) has received the change, 'sync' once every one has applied it.
   * @default 'async'
   */
  sendMode?: SendMode
  /**
   * Sessions per chunk of a state transfer or resync (Tomcat's sendAllSessionsSize).
   * @default 1000
   */
  syncChunkSize?: number
  /**
   * How long after start, at most, a node treats itself as still receiving its state, in ms. Until its
   * first transfer ends (or this passes) a `get` that misses locally asks the peers.
   * @default 60000
   */
  stateTransferTimeout?: number
  /**
   * How long such a `get` waits for the peers, in ms.
   * @default 500
   */
  fetchTimeout?: number
  /**
   * How long a request for sessions during a state transfer or resynchronisation waits for its
   * reply, in ms. A request not answered in time is sent again (three times in all); then the whole
   * synchronisation starts over.
   * @default 10000
   */
  syncRequestTimeout?: number
  /**
   * How long `close()` may spend sending queued changes to live peers, in ms.
   * @default 5000
   */
  closeTimeout?: number
  /**
   * Expiry changes (touches) are collected and sent at most this often, in ms.
   * @default 100
   */
  touchFlushInterval?: number
  /**
   * On `close()`, destroy every session on every node (Tomcat's expireSessionsOnShutdown).
   * @default false
   */
  expireSessionsOnShutdown?: boolean
  /**
   * Emit `session:replicated` on the receiving node for every replicated change
   * (Tomcat's notifyListenersOnReplication).
   * @default true
   */
  notifyOnReplication?: boolean
}

/** Defaults and checks of every replication option. */
export const REPLICATION_OPTIONS = {
  replication: { default: 'all', parse: replicationMode },
  sendMode: { default: 'async', parse: oneOf('async', 'ack', 'sync') },
  syncChunkSize: { default: 1000, parse: integer(1, MAX_BATCH) },
  stateTransferTimeout: { default: 60_000, parse: integer(0, 3_600_000) },
  fetchTimeout: { default: 500, parse: integer(1, 60_000) },
  syncRequestTimeout: { default: 10_000, parse: integer(1, 600_000) },
  closeTimeout: { default: 5000, parse: integer(0, 600_000) },
  touchFlushInterval: { default: 100, parse: integer(1, 60_000) },
  expireSessionsOnShutdown: { default: false, parse: boolean },
  notifyOnReplication: { default: true, parse: boolean },
} as const satisfies OptionTable<ReplicationOptions>

/** `'all'`, or the number of backups of each session. */
function replicationMode(value: unknown, name: string): 'all' | { readonly backups: number } {
  if (value === 'all') return value
  const expected = `'all' or { backups: k } with k from 1 to ${MAX_BACKUPS}`
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidOptionError(name, expected, value)
  checkKnownNames(value, ['backups'], name)
  const { backups = 1 } = value as { backups?: unknown }
  return { backups: integer(1, MAX_BACKUPS)(backups, `${name}.backups`) }
}

/** Replication options after defaults and checks (durations in ms). */
export type ReplicationConfig = ResolvedTable<typeof REPLICATION_OPTIONS>

export function resolveReplication(options: Readonly<Record<string, unknown>>): ReplicationConfig {
  return resolveTable(REPLICATION_OPTIONS, options)
}

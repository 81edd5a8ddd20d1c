/**
 * connect-peer: sessions kept in each server's memory and replicated to fixed peers over TCP.
 * Everything a user may import is exported here; other modules are internal.
 */
export { PeerStore, type PeerStoreStats, type PeerStoreEvents, type PrincipalSession } from './peer-store/peer-store.js'
export type { DestroyReason } from './peer-store/session-events.js'
export type { PeerStoreOptions, SessionOptions } from './peer-store/options.js'
export type { ClusterOptions, TlsOptions } from './cluster/cluster-options.js'
export type { ReplicationOptions, SendMode } from './replication/replication-options.js'
export type { PersistOptions, PersistSpec } from './persistence/persist-options.js'
export type { RedisClient, RedisTierOptions } from './replication/redis/redis-options.js'
export type { RedisTierStats } from './replication/redis/redis-replication.js'
export type { PeerSpec, ListenSpec } from './cluster/address.js'
export type { PeerSource, PeerFunction, PeerFunctionSource, DnsPeers } from './cluster/discovery.js'
export type { Member, MemberState } from './cluster/peer-link.js'
export type { ReplicatedChange, SyncProgress } from './replication/replication.js'
export { exponentialBackoff, type RetryPolicy } from './cluster/backoff.js'
export { peerSession, staticFilter, stickyRouting, statusPage, type PeerSessionOptions } from './http/express.js'
export type { ClusterStatus, MemberStatus, NodeStatus, StatusPageOptions, TransferStatus } from './monitoring/status.js'
export type { RouteCookieOptions } from './http/route-cookie.js'
export { DEFAULT_STATIC_FILTER, type StaticFilter } from './http/static-filter.js'
export { withoutReplication } from './peer-store/replication-scope.js'
export {
  ErrorCodes,
  HandshakeRefusals,
  PeerStoreError,
  InvalidOptionError,
  InvalidArgumentError,
  NotReplicableError,
  SessionTooLargeError,
  SessionLimitError,
  StoreClosedError,
  MalformedDataError,
  ProtocolError,
  HandshakeRefusedError,
  ListenError,
  ReplicationTimeoutError,
  QueueOverflowError,
  ConnectionClosedError,
  FrameTooLargeError,
  SnapshotError,
  SnapshotProblems,
  DiscoveryError,
  type SnapshotProblem,
  type ErrorCode,
  type HandshakeRefusal,
  type ProtocolVersions,
} from './base/errors.js'

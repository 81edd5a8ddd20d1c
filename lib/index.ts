/**
 * connect-peer: sessions kept in each server's memory and replicated to fixed peers over TCP.
 * Everything a user may import is exported here; other modules are internal.
 */
export { PeerStore, type PeerStoreStats } from './store/peer-store.js'
export type { PeerStoreOptions } from './options.js'
export {
  ErrorCodes,
  PeerStoreError,
  InvalidOptionError,
  InvalidArgumentError,
  NotReplicableError,
  SessionTooLargeError,
  StoreClosedError,
  MalformedDataError,
  type ErrorCode,
} from './errors.js'

/**
 * connect-peer for Fastify with @fastify/session: `import { peerSession } from 'connect-peer/fastify'`.
 * A separate entry point, so Express users never load Fastify types. Every entry point names its
 * middleware `peerSession`, and its options always include the `store`.
 */
export {
  connectPeerFastify,
  peerSession,
  statusPage,
  type ConnectPeerFastifyOptions,
  type FastifyStatusPageOptions,
  type PeerFastifySessionOptions,
} from './http/fastify.js'
export type { ClusterStatus, StatusPageOptions } from './monitoring/status.js'
export type { RouteCookieOptions } from './http/route-cookie.js'
export { DEFAULT_STATIC_FILTER, type StaticFilter } from './http/static-filter.js'

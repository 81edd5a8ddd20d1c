/**
 * connect-peer for Koa with koa-session: `import { peerSession, koaStore } from 'connect-peer/koa'`.
 * A separate entry point, so Express users never load Koa types. Every entry point names its
 * middleware `peerSession`, and its options always include the `store`.
 */
export { koaStore, peerKoaSession, peerSession, statusPage, type KoaExternalStore, type PeerKoaSessionOptions } from './http/koa.js'
export type { ClusterStatus, StatusPageOptions } from './monitoring/status.js'
export type { RouteCookieOptions } from './http/route-cookie.js'
export { DEFAULT_STATIC_FILTER, type StaticFilter } from './http/static-filter.js'

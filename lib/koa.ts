/**
 * connect-peer for Koa with koa-session: `import { peerKoaSession, koaStore } from 'connect-peer/koa'`.
 * A separate entry point, so Express users never load Koa types.
 */
export { koaStore, peerKoaSession, type KoaExternalStore, type PeerKoaSessionOptions } from './http/koa.js'
export type { RouteCookieOptions } from './http/route-cookie.js'
export { DEFAULT_STATIC_FILTER, type StaticFilter } from './http/static-filter.js'

/**
 * connect-peer for Fastify with @fastify/session: `import { connectPeerFastify } from 'connect-peer/fastify'`.
 * A separate entry point, so Express users never load Fastify types.
 */
export { connectPeerFastify, type ConnectPeerFastifyOptions } from './http/fastify.js'
export type { RouteCookieOptions } from './http/route-cookie.js'
export { DEFAULT_STATIC_FILTER, type StaticFilter } from './http/static-filter.js'

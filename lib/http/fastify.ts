import type { FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify'
import fastifyPlugin from 'fastify-plugin'
import { debugFor } from '../base/debug.js'
import { InvalidOptionError } from '../base/errors.js'
import { statusResponder, type StatusPageOptions } from '../monitoring/status.js'
import { internalsOf } from '../peer-store/internals.js'
import type { PeerStore } from '../peer-store/peer-store.js'
import { withoutReplication } from '../peer-store/replication-scope.js'
import { asOneRequest } from '../peer-store/request-scope.js'
import { appendSetCookie, resolveRouteCookie, type RouteCookieOptions } from './route-cookie.js'
import { routeOf } from '../table/session-id.js'
import { pathOf, staticMatcher, type StaticFilter } from './static-filter.js'

const debug = debugFor('http')

declare module 'fastify' {
  interface FastifyRequest {
    /** The session id this request arrived with, when this node took the session over. */
    previousSessionId: string | null
  }
}

/** What this plugin needs of @fastify/session's request.session. */
interface FastifySessionLike {
  readonly sessionId: string
  regenerate(keys: string[]): Promise<void>
}

export interface PeerFastifySessionOptions {
  /** The PeerStore given to @fastify/session (with `idGenerator: store.genid`). */
  store: PeerStore
  /** The route cookie balancers stick on; see `RouteCookieOptions`. */
  routeCookie?: RouteCookieOptions
  /**
   * Requests that replicate nothing (Tomcat's ReplicationValve filter).
   * @default `DEFAULT_STATIC_FILTER`, Tomcat's usual ReplicationValve filter: paths ending in .gif .js .jpeg .jpg .png .htm .html .css .txt
   */
  staticFilter?: StaticFilter<FastifyRequest>
  /**
   * The session cookie's name, as given to @fastify/session.
   * @default 'sessionId'
   */
  sessionCookieName?: string
}

/**
 * Sticky routing, failover rebinding and the static-asset filter for @fastify/session. Register it
 * before @fastify/session (its filter must wrap the session's own hooks), and give @fastify/session
 * the PeerStore and `idGenerator: store.genid`.
 *
 * @fastify/session never calls `touch` and is `rolling` by default, so every request saves the whole
 * session; PeerStore turns an unchanged save into an expiry change, replicated in batches.
 *
 * @example
 * ```ts
 * import { peerSession } from 'connect-peer/fastify'
 * await app.register(fastifyCookie)
 * await app.register(peerSession, { store })
 * await app.register(fastifySession, { store, idGenerator: store.genid, secret })
 * ```
 */
const plugin: FastifyPluginCallback<PeerFastifySessionOptions> = (fastify: FastifyInstance, options, done) => {
  if (!options?.store) throw new InvalidOptionError('store', 'a PeerStore', options?.store)
  const internals = internalsOf(options.store)
  // A store without a node id routes nothing: no takeover, no route cookie.
  const nodeId = internals.nodeId
  const routeCookie = resolveRouteCookie(options.routeCookie)
  const matches = staticMatcher(options.staticFilter)
  const sessionCookieName = options.sessionCookieName ?? 'sessionId'

  fastify.decorateRequest('previousSessionId', null)

  // Everything after this hook (@fastify/session's read, the handler, its save) runs as one request:
  // the store ties the save to the read, to merge it with what others stored since.
  fastify.addHook('onRequest', (request, _reply, next) => {
    if (matches(request, pathOf(request.raw.url))) withoutReplication(() => asOneRequest(next))
    else asOneRequest(next)
  })

  // preHandler runs after every onRequest hook, so @fastify/session has loaded the session.
  fastify.addHook('preHandler', async (request) => {
    const session = (request as FastifyRequest & { session?: FastifySessionLike }).session
    const sid = session?.sessionId
    if (!session || typeof sid !== 'string') return
    const route = routeOf(sid)
    if (nodeId === undefined || route === undefined || route === nodeId) return
    // The store moves the session (a move replicates as one, static requests included); then
    // regenerate() builds @fastify/session's Session under the new id, which store.genid hands it.
    // Its destroy of the old id does nothing: that id is already a tombstone naming the new one.
    const moved = await internals.rebind(sid)
    if (moved === undefined) return
    internals.reserveId(request, moved)
    await session.regenerate(Object.keys(session).filter((key) => key !== 'cookie'))
    request.previousSessionId = sid
    debug('took over session %s as %s', sid, moved)
  })

  fastify.addHook('onSend', async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const session = (request as FastifyRequest & { session?: Record<string, unknown> & Partial<FastifySessionLike> }).session
    if (nodeId === undefined || !session?.sessionId) return payload
    const hasData = Object.keys(session).some((key) => key !== 'cookie')
    const header = routeCookie.headerFor({ cookieHeader: request.headers.cookie, sessionCookieName, hasData }, nodeId)
    if (header) void reply.header('set-cookie', appendSetCookie(reply.getHeader('set-cookie'), header))
    return payload
  })

  done()
}

/** The plugin, registered without encapsulation so its hooks see every route. */
export const peerSession = fastifyPlugin(plugin, { fastify: '>=4', name: 'connect-peer' })

/** @deprecated Use `peerSession`, the name every entry point uses. */
export const connectPeerFastify = peerSession

/** @deprecated Use `PeerFastifySessionOptions`. */
export type ConnectPeerFastifyOptions = PeerFastifySessionOptions

/** Options of the Fastify `statusPage` plugin: the store, and who may see the page. */
export interface FastifyStatusPageOptions extends StatusPageOptions<FastifyRequest> {
  /** The PeerStore whose cluster the page shows. */
  store: PeerStore
}

/**
 * The cluster status page, as a Fastify plugin: a GET route at `path` (under the plugin's prefix)
 * with HTML that refreshes itself every 2 s, the same as JSON with `?format=json`; counts, members
 * and transfers, never a session id or any session data. `authorize(request)` decides who sees it:
 * a request it refuses gets a 403.
 *
 * @example
 * ```ts
 * import { statusPage } from 'connect-peer/fastify'
 * await app.register(statusPage, { store, authorize: (request) => request.ip === '127.0.0.1' })
 * ```
 */
export const statusPage: FastifyPluginCallback<FastifyStatusPageOptions> = (fastify, options, done) => {
  if (!options?.store) throw new InvalidOptionError('store', 'a PeerStore', options?.store)
  const { store, ...pageOptions } = options
  const page = statusResponder(store, pageOptions)
  fastify.get(pageOptions.path ?? '/cluster', async (request, reply) => {
    const answer = await page.respond(request, { method: request.method, url: request.url, accept: request.headers.accept })
    return reply.code(answer.status).headers(answer.headers).send(answer.body)
  })
  done()
}

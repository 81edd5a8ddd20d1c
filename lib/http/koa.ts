import type { Context, Middleware, Next } from 'koa'
import createSession, { type CreateSessionOptions } from 'koa-session'
import { debugFor } from '../base/debug.js'
import { InvalidOptionError } from '../base/errors.js'
import { statusResponder, type StatusPageOptions } from '../monitoring/status.js'
import { internalsOf } from '../peer-store/internals.js'
import type { PeerStore } from '../peer-store/peer-store.js'
import { withoutReplication } from '../peer-store/replication-scope.js'
import { resolveRouteCookie, type RouteCookieOptions } from './route-cookie.js'
import { routeOf } from '../table/session-id.js'
import { pathOf, staticMatcher, type StaticFilter } from './static-filter.js'

const debug = debugFor('http')

/** koa-session's external store contract. */
export interface KoaExternalStore {
  get(
    key: string,
    maxAge: number | 'session' | undefined,
    options: { rolling?: boolean; ctx?: Context },
  ): Promise<Record<string, unknown> | null>
  set(
    key: string,
    session: Record<string, unknown>,
    maxAge: number | 'session' | undefined,
    options: { rolling?: boolean; changed?: boolean; ctx?: Context },
  ): Promise<void>
  destroy(key: string, options: { ctx?: Context }): Promise<void>
}

/**
 * A PeerStore as koa-session's external store. koa-session keeps the cookie expiry in `_expire`
 * inside the session; the store holds it beside the data instead, so a rolling save that only moves
 * the expiry replicates as a batched touch, not as a change of the session.
 *
 * @example
 * ```ts
 * import session from 'koa-session'
 * import { koaStore } from 'connect-peer/koa'
 * app.use(session({ store: koaStore(store), genid: store.genid }, app))
 * ```
 */
export function koaStore(store: PeerStore): KoaExternalStore {
  const internals = internalsOf(store)
  return {
    // koa-session hands the request's context to both: it ties a save to what that request loaded.
    async get(key, _maxAge, options) {
      const found = await internals.readExternal(key, options?.ctx)
      if (!found) return null
      return found.cookieExpires === null ? found.data : { ...found.data, _expire: found.cookieExpires }
    },
    async set(key, session, maxAge, options) {
      const { _expire: expire, ...data } = session
      // koa-session passes its maxAge plus 10 s, so the store outlives the cookie; 'session' has no end.
      const maxAgeMs = typeof maxAge === 'number' ? maxAge : undefined
      await internals.writeExternal(key, data, typeof expire === 'number' ? expire : null, maxAgeMs, options?.ctx)
    },
    async destroy(key) {
      await internals.destroy(key)
    },
  }
}

/** Options of `peerSession` for Koa: koa-session's own, plus the store and the routing and filter ones. */
export interface PeerKoaSessionOptions extends Omit<CreateSessionOptions, 'store' | 'genid' | 'externalKey' | 'ContextStore'> {
  /** The PeerStore to keep sessions in; its node id names this node in every new session key. */
  store: PeerStore
  /** The route cookie balancers stick on; see `RouteCookieOptions`. */
  routeCookie?: RouteCookieOptions
  /**
   * Requests that replicate nothing (Tomcat's ReplicationValve filter).
   * @default `DEFAULT_STATIC_FILTER`, Tomcat's usual ReplicationValve filter: paths ending in .gif .js .jpeg .jpg .png .htm .html .css .txt
   */
  staticFilter?: StaticFilter<Context>
}

const REBOUND = Symbol('connect-peer rebound key')

/**
 * koa-session on a PeerStore, with what Tomcat's cluster valves did: session keys routed to this
 * node, a route cookie for the load balancer, failover rebinding, and the static-asset filter. The
 * previous key of a session taken over is in `ctx.state.previousSessionId`.
 *
 * @example
 * ```ts
 * import Koa from 'koa'
 * import { peerSession } from 'connect-peer/koa'
 * const app = new Koa()
 * app.keys = [process.env.COOKIE_KEY!]
 * app.use(peerSession(app, { store, maxAge: 30 * 60 * 1000 }))
 * ```
 */
export function peerSession(app: { use: unknown; context: object }, options: PeerKoaSessionOptions): Middleware {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('options', 'an object', options)
  const { store, routeCookie: routeCookieOptions, staticFilter: filter, ...sessionOptions } = options
  const internals = internalsOf(store)
  const nodeId = internals.nodeId
  // koa-session signs its cookie with app.keys by default; without them every request fails with a 500.
  const keys = (app as { keys?: unknown }).keys
  if (sessionOptions.signed !== false && (!Array.isArray(keys) || keys.length === 0)) {
    throw new InvalidOptionError('app.keys', 'the keys that sign session cookies (app.keys = [secret]), or `signed: false`', keys, {
      sensitive: true,
    })
  }
  const routeCookie = resolveRouteCookie(routeCookieOptions)
  const matches = staticMatcher(filter)
  const key = sessionOptions.key ?? 'koa.sess'
  if (typeof key !== 'string' || key.length === 0) throw new InvalidOptionError('key', 'a cookie name', key)
  type KoaContext = Context & { sessionOptions: { signed: boolean }; [REBOUND]?: string }
  const external = koaStore(store)
  const sessions = createSession(
    {
      ...sessionOptions,
      key,
      store: external,
      genid: () => internals.genid(),
      // The key koa-session loads: the rebound one when this request took a session over.
      externalKey: {
        get: (ctx: KoaContext) => ctx[REBOUND] ?? ctx.cookies.get(key, ctx.sessionOptions),
        set: (ctx: KoaContext, value: string) => ctx.cookies.set(key, value, ctx.sessionOptions),
      },
    } as CreateSessionOptions,
    app,
  )

  /** Whether koa-session would load this session: it exists, has not expired, and `valid` accepts it. */
  const wouldLoad = async (ctx: KoaContext, sid: string): Promise<boolean> => {
    const data = await external.get(sid, sessionOptions.maxAge, { ctx })
    if (!data) return false
    if (typeof data._expire === 'number' && data._expire < Date.now()) return false
    return typeof sessionOptions.valid !== 'function' || Boolean(sessionOptions.valid(ctx, data))
  }

  const handle = async (ctx: KoaContext, next: Next) => {
    const arrived = ctx.cookies.get(key, ctx.sessionOptions)
    const route = arrived === undefined ? undefined : routeOf(arrived)
    // A session the application would refuse (its own `valid` check) is not taken over: moving it
    // would end it under its old id for whoever really holds it.
    // A store without a node id routes nothing: no takeover, no route cookie.
    if (nodeId !== undefined && arrived !== undefined && route !== undefined && route !== nodeId && (await wouldLoad(ctx, arrived))) {
      const moved = await internals.rebind(arrived)
      if (moved !== undefined) {
        debug('took over session %s as %s', arrived, moved)
        ctx[REBOUND] = moved
        ctx.state.previousSessionId = arrived
        // The data is already under the new key: reissue the cookie whether or not koa-session saves.
        ctx.cookies.set(key, moved, ctx.sessionOptions)
      }
    }
    await sessions(ctx, async () => {
      await next()
      const session = ctx.session as { length?: number } | null
      if (nodeId === undefined) return
      const hasData = (session?.length ?? 0) > 0
      const header = routeCookie.headerFor({ cookieHeader: ctx.get('cookie'), sessionCookieName: key, hasData }, nodeId)
      if (header) ctx.append('Set-Cookie', header)
    })
  }

  return (ctx, next) => {
    const context = ctx as KoaContext
    return matches(ctx, pathOf(ctx.url)) ? withoutReplication(() => handle(context, next)) : handle(context, next)
  }
}

/**
 * @deprecated Use `peerSession(app, { store, ...options })`, the name every entry point uses.
 */
export function peerKoaSession(
  app: { use: unknown; context: object },
  store: PeerStore,
  options: Omit<PeerKoaSessionOptions, 'store'> = {},
): Middleware {
  return peerSession(app, { ...options, store })
}

/**
 * The cluster status page, for Koa: HTML at `path` (it refreshes itself every 2 s), the same as
 * JSON with `?format=json`; counts, members and transfers, never a session id or any session data.
 * `authorize(ctx)` decides who sees it: a request it refuses gets a 403. Other paths pass through.
 *
 * @example
 * ```ts
 * import { statusPage } from 'connect-peer/koa'
 * app.use(statusPage(store, { authorize: (ctx) => ctx.session?.admin === true }))
 * ```
 */
export function statusPage(store: PeerStore, options: StatusPageOptions<Context>): Middleware {
  const page = statusResponder(store, options)
  return async (ctx: Context, next: Next) => {
    if (!page.matches(ctx.url)) {
      await next()
      return
    }
    const reply = await page.respond(ctx, { method: ctx.method, url: ctx.url, accept: ctx.get('accept') || undefined })
    ctx.status = reply.status
    ctx.set(reply.headers)
    ctx.body = reply.body
  }
}

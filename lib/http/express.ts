import type { IncomingMessage, ServerResponse } from 'node:http'
import session, { type SessionData, type SessionOptions } from 'express-session'
import onHeaders from 'on-headers'
import { debugFor } from '../base/debug.js'
import { InvalidOptionError } from '../base/errors.js'
import { statusResponder, type StatusPageOptions } from '../monitoring/status.js'
import { internalsOf } from '../peer-store/internals.js'
import type { PeerStore } from '../peer-store/peer-store.js'
import { withoutReplication } from '../peer-store/replication-scope.js'
import { appendSetCookie, resolveRouteCookie, type RouteCookieOptions } from './route-cookie.js'
import { routeOf } from '../table/session-id.js'
import { pathOf, staticMatcher, type StaticFilter } from './static-filter.js'

const debug = debugFor('http')

declare global {
  // express-session extends Express's Request the same way.
  namespace Express {
    interface Request {
      /** The session id this request arrived with, when this node took the session over. */
      previousSessionID?: string
    }
  }
}

type Request = IncomingMessage & {
  session?: session.Session & Partial<SessionData>
  sessionID?: string
  sessionStore?: session.Store
  /** The session id this request arrived with, when this node took the session over. */
  previousSessionID?: string
}
type Next = (error?: unknown) => void
type Middleware = (req: Request, res: ServerResponse, next: Next) => void

/** Options of `peerSession`: express-session's own, plus the routing and filter ones. */
export interface PeerSessionOptions extends Omit<SessionOptions, 'store' | 'genid'> {
  /** The PeerStore to keep sessions in; its `genid` names this node in every new session id. */
  store: PeerStore
  /** The route cookie balancers stick on; see `RouteCookieOptions`. */
  routeCookie?: RouteCookieOptions
  /**
   * Requests that replicate nothing (Tomcat's ReplicationValve filter).
   * @default `DEFAULT_STATIC_FILTER`, Tomcat's usual ReplicationValve filter: paths ending in .gif .js .jpeg .jpg .png .htm .html .css .txt
   */
  staticFilter?: StaticFilter<IncomingMessage>
}

/**
 * express-session with everything Tomcat's cluster valves did: session ids routed to this node, a
 * route cookie for the load balancer, failover rebinding, and the static-asset filter.
 *
 * @example
 * ```ts
 * import { PeerStore, peerSession } from 'connect-peer'
 * const store = new PeerStore(['10.0.0.2:4055'], { nodeId: 'was1', listen: '10.0.0.1:4055', secret })
 * app.use(peerSession({ store, secret: process.env.SESSION_SECRET!, resave: false, saveUninitialized: false }))
 * ```
 */
export function peerSession(options: PeerSessionOptions): Middleware {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('options', 'an object', options)
  const { store, routeCookie, staticFilter: filter, ...sessionOptions } = options
  checkSessionSecret(sessionOptions.secret)
  // First: it refuses anything but a PeerStore, before express-session would call into it.
  const sticky = stickyRouting(store, { routeCookie, sessionCookieName: sessionOptions.name })
  const filterRequests = staticFilter({ filter })
  const sessions = session({ ...sessionOptions, store, genid: store.genid }) as unknown as Middleware
  return (req, res, next) => {
    filterRequests(req, res, (error) => {
      if (error) return next(error)
      sessions(req, res, (error) => (error ? next(error) : sticky(req, res, next)))
    })
  }
}

/**
 * express-session starts without a secret but fails every request with a 500 (and a deprecation
 * warning pointing into this package): refuse it here, where the mistake is made.
 */
function checkSessionSecret(secret: unknown): void {
  const secrets: unknown[] = Array.isArray(secret) ? secret : [secret]
  const usable = secrets.length > 0 && secrets.every((value) => (typeof value === 'string' && value.length > 0) || Buffer.isBuffer(value))
  if (!usable) {
    throw new InvalidOptionError(
      'secret',
      'the secret that signs session cookies (a string or Buffer, or an array of them, newest first)',
      secret,
      {
        sensitive: true,
      },
    )
  }
}

/**
 * Before express-session: requests the filter matches still see their session, but cause no
 * replication traffic at all (no delta, no touch).
 */
export function staticFilter(options: { filter?: StaticFilter<IncomingMessage> } = {}): Middleware {
  const matches = staticMatcher(options.filter)
  return (req, _res, next) => {
    if (matches(req, pathOf(req.url))) withoutReplication(() => next())
    else next()
  }
}

/**
 * After express-session (configured with `genid: store.genid`): takes over sessions routed to
 * another node (JvmRouteBinderValve) and keeps the route cookie naming this node.
 */
export function stickyRouting(
  store: PeerStore,
  options: { routeCookie?: RouteCookieOptions; sessionCookieName?: string } = {},
): Middleware {
  const internals = internalsOf(store)
  const cookie = resolveRouteCookie(options.routeCookie)
  const sessionCookieName = options.sessionCookieName ?? 'connect.sid'
  const nodeId = internals.nodeId
  return (req, res, next) => {
    // A store without a node id routes nothing: no route cookie, no takeover.
    if (nodeId === undefined || !req.session || typeof req.sessionID !== 'string') return next()
    onHeaders(res, () => {
      if (!req.session) return
      const hasData = hasDataBesidesCookie(req.session)
      const header = cookie.headerFor({ cookieHeader: req.headers.cookie, sessionCookieName, hasData }, nodeId)
      if (header) res.setHeader('set-cookie', appendSetCookie(res.getHeader('set-cookie'), header))
    })
    const route = routeOf(req.sessionID)
    // A session created elsewhere, or by another id generator (no route), is left as it is.
    if (route === undefined || route === nodeId) return next()
    rebind(req, (sid) => internals.rebind(sid)).then(() => next(), next)
  }
}

/** Whether the session has an own enumerable key besides `cookie` (as `Object.keys`, without the array). */
function hasDataBesidesCookie(session: object): boolean {
  for (const key in session) if (key !== 'cookie' && Object.hasOwn(session, key)) return true
  return false
}

async function rebind(req: Request, move: (sid: string) => Promise<string | undefined>): Promise<void> {
  const previous = req.sessionID!
  const next = await move(previous)
  if (next === undefined) return // not stored here: express-session made a new session anyway
  debug('took over session %s as %s', previous, next)
  // At runtime the Cookie has toJSON (express-session stores it that way); its typings omit it.
  const cookie = (req.session!.cookie as unknown as { toJSON(): object }).toJSON()
  const data = { ...req.session, cookie } as unknown as SessionData
  req.sessionID = next
  req.previousSessionID = previous
  // express-session's Session keeps its id read-only: build the session anew under the new id.
  // Its original id differs now, so express-session reissues the cookie and saves at the end.
  req.sessionStore!.createSession(req as never, data)
}

/**
 * The cluster status page, for Express: this node, each member with its state, since when, lag,
 * queue and connections, the last state transfer with its progress, session and tombstone counts,
 * and protocol versions. HTML at `path` (it refreshes itself every 2 s), the same as JSON with
 * `?format=json`; never a session id or any session data. `authorize` decides who sees it: a
 * request it refuses gets a 403. Serves nothing unless mounted.
 *
 * @example
 * ```ts
 * import { statusPage } from 'connect-peer'
 * // Only from this machine, e.g. through an SSH tunnel: req.socket.remoteAddress is the client's.
 * app.use(statusPage(store, { authorize: (req) => req.socket.remoteAddress === '127.0.0.1' }))
 * ```
 */
export function statusPage<R extends IncomingMessage = IncomingMessage>(
  store: PeerStore,
  options: StatusPageOptions<R>,
): (req: R, res: ServerResponse, next: Next) => void {
  const page = statusResponder(store, options)
  return (req, res, next) => {
    const url = req.url ?? '/'
    if (!page.matches(url)) return next()
    page.respond(req, { method: req.method ?? 'GET', url, accept: req.headers.accept }).then((reply) => {
      res.writeHead(reply.status, reply.headers)
      res.end(reply.body)
    }, next)
  }
}

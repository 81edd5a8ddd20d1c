import express from 'express'
import path from 'node:path'
import { peerSession, statusPage, type PeerStore } from 'connect-peer'
import { collectMetrics } from 'connect-peer/metrics'
import { collectDefaultMetrics, Registry } from 'prom-client'
import type { Config } from './config.js'
import { page, sessionsPage } from './views.js'

declare module 'express-session' {
  interface SessionData {
    count?: number
    note?: string
    /** The id this session had before a node took it over (failover), shown on the page from then on. */
    previousId?: string
    /** The name logged in with (no password: a demo); the store's `principal`, see server.ts. */
    user?: string
  }
}

/** A name to log in with: 1 to 64 characters once trimmed, no control characters. */
const NAME = /^[^\p{Cc}]{1,64}$/u

/**
 * The demo app: a page showing the node, the session and the cluster, and a "your sessions" page
 * for a logged-in name. Everything it imports from connect-peer is the public API, exactly as an
 * application would use it. The store must have been made with `principal: (s) => s.user`.
 */
export function createApp(store: PeerStore, config: Config): express.Express {
  const app = express()
  app.disable('x-powered-by')
  // Before the session middleware: an icon has nothing to do with sessions.
  app.get('/favicon.ico', (_req, res) => res.sendFile(path.join(__dirname, 'public', 'favicon.ico'), { maxAge: '1d' }))
  // Before the session middleware too: a scrape or a look at the cluster makes no session.
  // Prometheus scrapes /metrics: the store's metrics and the process's, in a registry of this app's own.
  const metrics = new Registry()
  collectMetrics(store, { register: metrics })
  collectDefaultMetrics({ register: metrics })
  app.get('/metrics', (_req, res, next) => {
    metrics.metrics().then((text) => res.type(metrics.contentType).send(text), next)
  })
  // The status page at /cluster, for this machine only (the demo's balancer runs here too). A real
  // app would check an admin session, or serve it on an internal port.
  app.use(statusPage(store, { authorize: (req) => isLoopback(req.socket.remoteAddress) }))
  // Against cross-site form posts: the session cookie is SameSite=Lax (not sent with them), and a
  // POST a browser sends from another origin is refused (login CSRF would otherwise still work),
  // before its session is even loaded.
  app.use((req, res, next) => {
    const origin = req.headers.origin
    if (req.method === 'POST' && origin !== undefined && hostOf(origin) !== req.headers.host) {
      res.status(403).type('text').send('Cross-site form posts are refused.\n')
    } else next()
  })
  app.use(
    peerSession({
      store,
      secret: config.sessionSecret,
      resave: false,
      saveUninitialized: false,
      cookie: { maxAge: 30 * 60 * 1000, sameSite: 'lax' },
    }),
  )
  // After the session middleware on purpose: the static-asset filter keeps these requests from
  // replicating anything (express-session would otherwise touch the session for every file).
  app.use('/public', express.static(path.join(__dirname, 'public'), { maxAge: 0 }))
  app.use(express.urlencoded({ extended: false, limit: '4kb' }))
  // A takeover gives the session a new id; keep the old one so the page can show both, also on
  // the requests after the one that took it over (a +1 is a POST whose redirect shows the page).
  app.use((req, _res, next) => {
    if (req.previousSessionID) req.session.previousId = req.previousSessionID
    next()
  })

  // For load balancers and container healthchecks: up means the replication port is open too.
  // `sessions` and `syncing` show a restarted node receiving every session from its peer.
  app.get('/healthz', (_req, res) => {
    const { sessions, syncing } = store.stats()
    res.json({
      status: 'ok',
      node: config.nodeId,
      sessions,
      syncing,
      peers: store.members().map(({ nodeId, state }) => ({ nodeId, state })),
    })
  })

  app.get('/', (req, res) => {
    res.type('html').send(
      page({
        node: config.nodeId,
        count: req.session.count ?? 0,
        note: req.session.note ?? null,
        sessionId: storedId(req),
        previousSessionId: req.session.previousId ?? null,
        routeCookie: parseRoute(req.headers.cookie),
        members: store.members(),
        user: req.session.user ?? null,
        loggedOut: typeof req.query.out === 'string' && /^\d{1,6}$/.test(req.query.out) ? Number(req.query.out) : null,
      }),
    )
  })

  app.get('/api/state', (req, res) => {
    res.json({
      node: config.nodeId,
      count: req.session.count ?? 0,
      note: req.session.note ?? null,
      sessionId: storedId(req),
      previousSessionId: req.session.previousId ?? null,
      user: req.session.user ?? null,
      members: store.members().map(({ nodeId, state }) => ({ nodeId, state })),
    })
  })

  app.post('/count', (req, res) => {
    req.session.count = (req.session.count ?? 0) + 1
    if (req.accepts(['html', 'json']) === 'json') res.json({ node: config.nodeId, count: req.session.count })
    else res.redirect(303, '/')
  })

  app.post('/note', (req, res) => {
    const body = req.body as { note?: unknown } | undefined
    const note = typeof body?.note === 'string' ? body.note.slice(0, 200) : ''
    req.session.note = note
    res.redirect(303, '/')
  })

  // Logging in: a new session id (the old one may have been seen by others: session fixation),
  // keeping what the demo showed so far.
  app.post('/login', (req, res, next) => {
    const body = req.body as { name?: unknown } | undefined
    const name = typeof body?.name === 'string' ? body.name.trim() : ''
    if (!NAME.test(name)) {
      res.status(400).type('text').send('A name is 1 to 64 characters.\n')
      return
    }
    const { count, note } = req.session
    req.session.regenerate((error) => {
      if (error) return next(error)
      if (count !== undefined) req.session.count = count
      if (note !== undefined) req.session.note = note
      req.session.user = name
      res.redirect(303, '/sessions')
    })
  })

  app.post('/logout', (req, res, next) => {
    req.session.destroy((error) => {
      if (error) return next(error)
      res.clearCookie('connect.sid').redirect(303, '/')
    })
  })

  // "Your sessions": every session of this name in the cluster (every node knows them all).
  app.get('/sessions', async (req, res) => {
    const user = req.session.user ?? null
    const sessions = user === null ? [] : await store.sessionsOf(user)
    res.type('html').send(sessionsPage({ node: config.nodeId, user, sessions, currentId: req.sessionID }))
  })

  // Every session of this name on every node, this one included: as after a password change.
  app.post('/sessions/logout-everywhere', async (req, res, next) => {
    const user = req.session.user
    if (user === undefined) return res.redirect(303, '/')
    const ended = await store.destroyAllOf(user)
    // Already destroyed in the store; this only keeps express-session from saving or touching it.
    req.session.destroy((error) => {
      if (error) return next(error)
      res.clearCookie('connect.sid').redirect(303, `/?out=${ended}`)
    })
  })

  app.post('/sessions/logout-others', async (req, res) => {
    const user = req.session.user
    if (user !== undefined) await store.destroyAllOf(user, { except: [req.sessionID] })
    res.redirect(303, '/sessions')
  })

  return app
}

/**
 * The session id, if the session is stored: with `saveUninitialized: false` a session holding no
 * data yet is never saved, and the id express-session made up for this request is thrown away.
 */
function storedId(req: express.Request): string | null {
  return Object.keys(req.session).some((key) => key !== 'cookie') ? req.sessionID : null
}

function hostOf(origin: string): string | null {
  try {
    return new URL(origin).host
  } catch {
    return null
  }
}

function parseRoute(cookieHeader: string | undefined): string | null {
  const match = /(?:^|;\s*)ROUTEID=([^;]*)/.exec(cookieHeader ?? '')
  return match ? decodeURIComponent(match[1]!) : null
}

/** Whether a client address is this machine's (IPv4 loopback, IPv6 loopback, or IPv4 mapped in IPv6). */
function isLoopback(address: string | undefined): boolean {
  return address !== undefined && /^(127\.|::ffff:127\.|::1$)/.test(address)
}

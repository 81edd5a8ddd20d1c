import express from 'express'
import path from 'node:path'
import { peerSession, type PeerStore } from 'connect-peer'
import type { Config } from './config.js'
import { page } from './views.js'

declare module 'express-session' {
  interface SessionData {
    count?: number
    note?: string
    /** The id this session had before a node took it over (failover), shown on the page from then on. */
    previousId?: string
  }
}

/**
 * The demo app: one page showing the node, the session and the cluster. Everything it imports from
 * connect-peer is the public API, exactly as an application would use it.
 */
export function createApp(store: PeerStore, config: Config): express.Express {
  const app = express()
  app.disable('x-powered-by')
  // Before the session middleware: an icon has nothing to do with sessions.
  app.get('/favicon.ico', (_req, res) => res.sendFile(path.join(__dirname, 'public', 'favicon.ico'), { maxAge: '1d' }))
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

  return app
}

/**
 * The session id, if the session is stored: with `saveUninitialized: false` a session holding no
 * data yet is never saved, and the id express-session made up for this request is thrown away.
 */
function storedId(req: express.Request): string | null {
  return Object.keys(req.session).some((key) => key !== 'cookie') ? req.sessionID : null
}

function parseRoute(cookieHeader: string | undefined): string | null {
  const match = /(?:^|;\s*)ROUTEID=([^;]*)/.exec(cookieHeader ?? '')
  return match ? decodeURIComponent(match[1]!) : null
}

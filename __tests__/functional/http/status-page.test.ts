import { createHash } from 'node:crypto'
import express from 'express'
import Fastify from 'fastify'
import Koa from 'koa'
import request from 'supertest'
import { PeerStore, statusPage, type ClusterStatus } from '../../../lib/index.js'
import { statusPage as koaStatusPage } from '../../../lib/koa.js'
import { statusPage as fastifyStatusPage } from '../../../lib/fastify.js'

/**
 * The status page on the three frameworks, over two real stores in this process (127.0.17.21 and
 * .22): the same JSON and HTML everywhere, protected by `authorize`, and never a session id or any
 * session data, however many sessions there are.
 */
const PORT = 4731
let was1: PeerStore
let was2: PeerStore
const allow = () => true
const SECRET_VALUE = 'card-number-4242424242424242'
const sids: string[] = []

beforeAll(async () => {
  const timing = { heartbeatInterval: 500, suspectTimeout: 1500, deadTimeout: 5000 }
  was1 = new PeerStore(['was2@127.0.17.22:' + PORT], { nodeId: 'was1', listen: `127.0.17.21:${PORT}`, ...timing })
  was2 = new PeerStore(['was1@127.0.17.21:' + PORT], { nodeId: 'was2', listen: `127.0.17.22:${PORT}`, ...timing })
  // Mounted before the stores meet, as an app mounts it at start: it hears the first state transfer.
  statusPage(was1, { authorize: allow })
  await Promise.all([was1.ready(), was2.ready()])
  await Promise.all([new Promise((resolve) => was1.once('sync', resolve)), new Promise((resolve) => was2.once('sync', resolve))])
  for (let i = 0; i < 20; i++) {
    const sid = was1.genid()
    sids.push(sid)
    await was1.set(sid, { cookie: { originalMaxAge: 60_000, expires: new Date(Date.now() + 60_000) }, card: SECRET_VALUE } as never)
  }
  await was1.destroy(sids.pop()!)
})

afterAll(async () => {
  await Promise.all([was1?.close(), was2?.close()])
})

/** The three apps, each with the page at the default path and a session middleware-free route beside it. */
async function apps(authorize: (request: unknown) => boolean | Promise<boolean> = allow) {
  const onExpress = express()
  onExpress.use(statusPage(was1, { authorize }))
  onExpress.get('/other', (_req, res) => {
    res.send('other')
  })
  const onKoa = new Koa()
  onKoa.silent = true // the throwing authorize below: its error is the test's, not worth a log
  onKoa.use(koaStatusPage(was1, { authorize }))
  onKoa.use((ctx) => {
    ctx.body = 'other'
  })
  const onFastify = Fastify()
  await onFastify.register(fastifyStatusPage, { store: was1, authorize })
  onFastify.get('/other', async () => 'other')
  await onFastify.ready()
  return [
    ['express', onExpress],
    ['koa', onKoa.callback()],
    ['fastify', onFastify.server],
  ] as const
}

test('every framework serves the same status as JSON: this node, its peer alive, counts', async () => {
  for (const [framework, app] of await apps()) {
    const response = await request(app).get('/cluster?format=json').expect(200)
    expect(`${framework}: ${response.headers['content-type']}`).toBe(`${framework}: application/json; charset=utf-8`)
    expect(response.headers['cache-control']).toBe('no-store')
    const status = response.body as ClusterStatus
    expect(status.node).toMatchObject({ nodeId: 'was1', port: PORT, sessions: 19, tombstones: 1, syncing: false })
    expect(status.node.protocol).toEqual(expect.any(Number))
    expect(status.members).toEqual([
      {
        nodeId: 'was2',
        address: `127.0.17.22:${PORT}`,
        state: 'alive',
        since: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        lagSeconds: null,
        queuedBytes: 0,
        connections: 1,
        protocol: 3,
      },
    ])
    expect(status.transfer).toMatchObject({ peer: 'was2', state: 'done', sessions: 0, durationMs: expect.any(Number) })
    // JSON also for a client that asks for JSON and not HTML; HTML for a browser.
    const negotiated = await request(app).get('/cluster').set('Accept', 'application/json').expect(200)
    expect((negotiated.body as ClusterStatus).node.nodeId).toBe('was1')
    const html = await request(app).get('/cluster').set('Accept', 'text/html,application/xhtml+xml,*/*;q=0.8').expect(200)
    expect(html.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(html.text).toContain('<table id="members">')
    expect((await request(app).get('/other').expect(200)).text).toBe('other')
  }
})

test('the HTML is one self-contained document: inline style and script allowed by hash, nothing fetched elsewhere', async () => {
  const [, [, app]] = await apps()
  const response = await request(app).get('/cluster').expect(200)
  const csp = response.headers['content-security-policy'] as string
  expect(csp).toMatch(/default-src 'none'/)
  expect(csp).toMatch(/script-src 'sha256-[A-Za-z0-9+/=]+'/)
  expect(csp).toMatch(/connect-src 'self'/)
  // No src= or href= anywhere: no external script, style, image or font.
  expect(response.text).not.toMatch(/\s(src|href)=/)
  const script = /<script>([\s\S]*?)<\/script>/.exec(response.text)![1]!
  expect(csp).toContain(`'sha256-${createHash('sha256').update(script).digest('base64')}'`)
  // The embedded status is the JSON, with no way to close its script element early.
  const embedded = /<script type="application\/json" id="status-data">([\s\S]*?)<\/script>/.exec(response.text)![1]!
  expect((JSON.parse(embedded) as ClusterStatus).node.nodeId).toBe('was1')
})

test('it never shows a session id or session data, in the HTML or in the JSON', async () => {
  expect(sids).toHaveLength(19)
  for (const [framework, app] of await apps()) {
    for (const path of ['/cluster', '/cluster?format=json']) {
      const { text } = await request(app).get(path).expect(200)
      const leaked = [SECRET_VALUE, ...sids].filter((secret) => text.includes(secret) || text.includes(secret.split('.')[0]!))
      expect(`${framework} ${path}: ${leaked.join(', ')}`).toBe(`${framework} ${path}: `)
    }
  }
})

test('authorize decides: false is a 403 with nothing of the status; it receives each framework its own request', async () => {
  const seen: string[] = []
  const authorize = async (given: unknown) => {
    const asRequest = given as { socket?: unknown; raw?: unknown; app?: unknown; ctx?: unknown }
    seen.push(asRequest.raw ? 'fastify request' : 'app' in asRequest && 'cookies' in asRequest ? 'koa ctx' : 'express req')
    return false
  }
  for (const [framework, app] of await apps(authorize)) {
    const refused = await request(app).get('/cluster?format=json').expect(403)
    expect(`${framework}: ${refused.text}`).not.toMatch(/was2|sessions/)
    await request(app).get('/cluster').expect(403)
  }
  expect(seen).toEqual(['express req', 'express req', 'koa ctx', 'koa ctx', 'fastify request', 'fastify request'])
})

test('an authorize that throws is an error for the framework to handle, not a page', async () => {
  for (const [framework, app] of await apps(() => {
    throw new Error('no session store for the admin check')
  })) {
    const response = await request(app).get('/cluster?format=json')
    expect(`${framework}: ${response.status}`).toBe(`${framework}: 500`)
    expect(response.text).not.toMatch(/"members"/)
  }
})

test('without authorize, or with a path that is not one, the page refuses to be made', () => {
  expect(() => statusPage(was1, {} as never)).toThrow(/authorize/)
  expect(() => statusPage(was1, { authorize: 'public' } as never)).toThrow(/authorize/)
  expect(() => koaStatusPage(was1, { authorize: allow, path: 'cluster' })).toThrow(/path/)
  expect(() => statusPage({} as PeerStore, { authorize: allow })).toThrow(/a PeerStore from connect-peer/)
})

test('a path of its own, and other methods refused', async () => {
  const app = express()
  app.use('/admin', statusPage(was1, { authorize: allow, path: '/peers' }))
  expect(((await request(app).get('/admin/peers?format=json').expect(200)).body as ClusterStatus).node.nodeId).toBe('was1')
  await request(app).get('/cluster').expect(404)
  const post = await request(app).post('/admin/peers').expect(405)
  expect(post.headers.allow).toBe('GET, HEAD')
})

test("a state transfer's progress shows as it runs, then as done", async () => {
  const app = express().use(statusPage(was2, { authorize: allow }))
  was2.emit('sync:progress', { peer: 'was1', sessions: 250, bytes: 64_000, expectedSessions: 1000, expectedBytes: 256_000 })
  const running = (await request(app).get('/cluster?format=json').expect(200)).body as ClusterStatus
  expect(running.transfer).toEqual({
    peer: 'was1',
    state: 'running',
    sessions: 250,
    bytes: 64_000,
    expectedSessions: 1000,
    expectedBytes: 256_000,
    startedAt: expect.any(String),
    durationMs: null,
  })
  was2.emit('sync:progress', { peer: 'was1', sessions: 1000, bytes: 256_000, expectedSessions: 1000, expectedBytes: 256_000 })
  was2.emit('sync', { peer: 'was1', sessions: 1000, durationMs: 420 })
  const done = (await request(app).get('/cluster?format=json').expect(200)).body as ClusterStatus
  expect(done.transfer).toEqual({ ...running.transfer, state: 'done', sessions: 1000, bytes: 256_000, durationMs: 420 })
})

import express from 'express'
import { MemoryStore } from 'express-session'
import signature from 'cookie-signature'
import request from 'supertest'
import { peerSession, PeerStore, type PeerSessionOptions } from '../../../lib/index.js'
import { session } from '../../helpers/sessions.js'

declare module 'express-session' {
  interface SessionData {
    user?: string
    n?: number
  }
}

const SECRET = 'express test secret'
let store: PeerStore

function app(options: Partial<PeerSessionOptions> = {}) {
  const application = express()
  application.use(peerSession({ store, secret: SECRET, resave: false, saveUninitialized: false, ...options }))
  application.get('/login', (req, res) => {
    req.session.user = 'ada'
    res.json({ sid: req.sessionID })
  })
  application.get('/me', (req, res) => {
    req.session.n = (req.session.n ?? 0) + 1
    res.json({ sid: req.sessionID, user: req.session.user ?? null, n: req.session.n, previous: req.previousSessionID ?? null })
  })
  application.get('/peek', (req, res) => res.json({ user: req.session.user ?? null }))
  return application
}

function signed(sid: string): string {
  return `connect.sid=${encodeURIComponent(`s:${signature.sign(sid, SECRET)}`)}`
}

beforeEach(() => {
  store = new PeerStore({ nodeId: 'was2' })
})
afterEach(() => store.close())

test('new sessions get ids routed to this node and a route cookie', async () => {
  const response = await request(app()).get('/login').expect(200)
  expect(response.body.sid).toMatch(/^[A-Za-z0-9_-]{24}\.was2$/)
  expect(response.headers['set-cookie']).toEqual(expect.arrayContaining(['ROUTEID=was2; Path=/; HttpOnly; SameSite=Lax']))
})

test('an anonymous visitor without a session gets no route cookie', async () => {
  const response = await request(app()).get('/peek').expect(200)
  expect(response.headers['set-cookie']).toBeUndefined()
})

test('the route cookie is not sent again once the browser has it', async () => {
  const agent = request.agent(app())
  await agent.get('/login').expect(200)
  const again = await agent.get('/peek').expect(200)
  expect((again.headers['set-cookie'] as unknown as string[] | undefined) ?? []).not.toEqual(
    expect.arrayContaining([expect.stringMatching(/^ROUTEID=/)]),
  )
})

test("the route cookie's name, format and attributes follow the options (Apache: .was2)", async () => {
  const response = await request(app({ routeCookie: { name: 'BALANCEID', format: 'dot', secure: true } }))
    .get('/login')
    .expect(200)
  expect(response.headers['set-cookie']).toEqual(expect.arrayContaining(['BALANCEID=.was2; Path=/; HttpOnly; Secure; SameSite=Lax']))
})

test("a session routed to an unknown node is taken over like another node's", async () => {
  await store.set('abcdefghijklmnopqrstuvwx.was9', session({ user: 'grace' }))
  const response = await request(app()).get('/me').set('Cookie', signed('abcdefghijklmnopqrstuvwx.was9')).expect(200)
  expect(response.body).toMatchObject({ user: 'grace', n: 1, previous: 'abcdefghijklmnopqrstuvwx.was9' })
  expect(response.body.sid).toMatch(/\.was2$/)
  expect(await store.get('abcdefghijklmnopqrstuvwx.was9')).toBeNull()
  expect(await store.get(response.body.sid)).toMatchObject({ user: 'grace', n: 1 })
})

test('a forged signature or an unsigned id gets nothing: no session, no takeover', async () => {
  await store.set('victim-session-id-000000.was1', session({ user: 'victim' }))
  for (const cookie of ['connect.sid=s%3Avictim-session-id-000000.was1.forgedsignature', 'connect.sid=victim-session-id-000000.was1']) {
    const response = await request(app()).get('/me').set('Cookie', cookie).expect(200)
    expect(response.body).toMatchObject({ user: null, previous: null })
  }
  expect(await store.get('victim-session-id-000000.was1')).toMatchObject({ user: 'victim' })
})

test('a session id without a route (made by another id generator) is left alone', async () => {
  await store.set('legacy-id-without-route', session({ user: 'old' }))
  const response = await request(app()).get('/me').set('Cookie', signed('legacy-id-without-route')).expect(200)
  expect(response.body).toMatchObject({ sid: 'legacy-id-without-route', user: 'old', previous: null })
})

describe('a plain store without a node id (a MemoryStore replacement on one server)', () => {
  let plain: PeerStore
  beforeEach(() => {
    plain = new PeerStore()
  })
  afterEach(() => plain.close())

  test('its session ids carry no route and it sets no route cookie', async () => {
    const response = await request(app({ store: plain }))
      .get('/login')
      .expect(200)
    expect(response.body.sid).toMatch(/^[A-Za-z0-9_-]{24}$/)
    const cookies = response.headers['set-cookie'] as unknown as string[]
    expect(cookies).toHaveLength(1)
    expect(cookies[0]).toMatch(/^connect\.sid=/)
  })

  test('a session id routed to some node is served as it is, not taken over', async () => {
    await plain.set('abc.was1', session({ user: 'ada' }))
    const response = await request(app({ store: plain }))
      .get('/me')
      .set('Cookie', signed('abc.was1'))
      .expect(200)
    expect(response.body).toMatchObject({ sid: 'abc.was1', user: 'ada', previous: null })
  })
})

describe('peerSession refuses what would fail every request', () => {
  test.each([
    ['no secret', { secret: undefined }],
    ['an empty secret', { secret: '' }],
    ['an empty list of secrets', { secret: [] }],
    ['a number as the secret', { secret: 8675309421 }],
  ])('%s: InvalidOptionError naming `secret`, without printing it', (_, options) => {
    expect(() => app(options as never)).toThrow(expect.objectContaining({ name: 'InvalidOptionError', option: 'secret' }))
    expect(() => app(options as never)).not.toThrow(/8675309421/)
  })

  test.each([
    ['an object', {}],
    ["express-session's MemoryStore", new MemoryStore()],
    ['nothing', undefined],
  ])('a store that is not a PeerStore (%s): InvalidOptionError naming `store`', (_, other) => {
    expect(() => app({ store: other as never })).toThrow(expect.objectContaining({ name: 'InvalidOptionError', option: 'store' }))
  })
})

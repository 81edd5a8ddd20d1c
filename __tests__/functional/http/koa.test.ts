import Koa from 'koa'
import request from 'supertest'
import { PeerStore } from '../../../lib/index.js'
import { koaStore, peerSession } from '../../../lib/koa.js'

/** Two connected stores in this process, to watch what replicates. */
async function pair(port: number): Promise<[PeerStore, PeerStore, Array<{ sid: string | null; change: string }>]> {
  const timing = { heartbeatInterval: 1000, suspectTimeout: 3000, deadTimeout: 10_000, touchFlushInterval: 10, sendMode: 'sync' as const }
  const was1 = new PeerStore([{ host: '127.0.0.72', port, nodeId: 'was2' }], { nodeId: 'was1', listen: `127.0.0.71:${port}`, ...timing })
  const was2 = new PeerStore([{ host: '127.0.0.71', port, nodeId: 'was1' }], { nodeId: 'was2', listen: `127.0.0.72:${port}`, ...timing })
  const seen: Array<{ sid: string | null; change: string }> = []
  was2.on('session:replicated', (event) => seen.push(event))
  await Promise.all([new Promise((resolve) => was1.once('sync', resolve)), new Promise((resolve) => was2.once('sync', resolve))])
  return [was1, was2, seen]
}

describe('koa-session external store', () => {
  let store: PeerStore
  beforeEach(() => {
    store = new PeerStore({ nodeId: 'was1' })
  })
  afterEach(() => store.close())

  test('get/set/destroy with a number maxAge: _expire comes back, the store expires after it', async () => {
    const external = koaStore(store)
    const expire = Date.now() + 60_000
    await external.set('k1.was1', { user: 'ada', _expire: expire, _maxAge: 60_000 }, 70_000, { changed: true, rolling: false })
    expect(await external.get('k1.was1', 60_000, { rolling: false })).toEqual({ user: 'ada', _expire: expire, _maxAge: 60_000 })
    await external.destroy('k1.was1', {})
    expect(await external.get('k1.was1', 60_000, { rolling: false })).toBeNull()
  })

  test("maxAge 'session': stored with the store's ttl, no _expire", async () => {
    const external = koaStore(store)
    await external.set('k2.was1', { user: 'ada', _session: true }, 'session', { changed: true })
    expect(await external.get('k2.was1', 'session', {})).toEqual({ user: 'ada', _session: true })
  })

  test('a rolling save that only moves _expire replicates as an expiry change, not a session change', async () => {
    const [was1, was2, seen] = await pair(4091)
    try {
      const app = new Koa()
      app.keys = ['koa test key']
      app.use(peerSession(app, { store: was1, maxAge: 60_000, rolling: true }))
      app.use((ctx) => {
        if (ctx.path === '/login') (ctx.session as unknown as Record<string, unknown>).user = 'ada'
        ctx.body = { user: (ctx.session as unknown as Record<string, unknown>).user ?? null }
      })
      const agent = request.agent(app.callback())
      await agent.get('/login').expect(200)
      seen.length = 0
      for (let i = 0; i < 5; i++) await agent.get('/peek').expect(200, { user: 'ada' })
      await new Promise((resolve) => was2.once('session:replicated', resolve))
      expect(seen.length).toBeGreaterThan(0)
      expect(seen.every((event) => event.change === 'expiry')).toBe(true)
    } finally {
      await Promise.all([was1.close(), was2.close()])
    }
  })
})

test("a session the application's valid() refuses is not taken over: it lives on under its id", async () => {
  const [was1, was2] = await pair(4092)
  try {
    const app = (store: PeerStore) => {
      const koa = new Koa()
      koa.keys = ['koa test key']
      // The application's own check, e.g. a session bound to the browser that made it.
      const valid = (ctx: Koa.Context, session: Record<string, unknown>) => session.agent === ctx.get('user-agent')
      koa.use(peerSession(koa, { store, maxAge: 60_000, valid }))
      koa.use((ctx) => {
        const session = ctx.session as unknown as Record<string, unknown>
        if (ctx.path === '/login') Object.assign(session, { user: 'ada', agent: ctx.get('user-agent') })
        ctx.body = { user: session.user ?? null }
      })
      return koa.callback()
    }
    const login = await request(app(was1)).get('/login').set('user-agent', 'victim-browser').expect(200)
    const cookies = (login.headers['set-cookie'] as unknown as string[]).map((cookie) => cookie.split(';')[0]!).join('; ')
    const sid = /koa\.sess=([^;]+)/.exec(cookies)![1]!
    // ('sync' mode: the login's save returned once was2 had applied it.)
    // Another browser presents the cookie to the other node: the application refuses the session there.
    await request(app(was2)).get('/whoami').set('cookie', cookies).set('user-agent', 'another-browser').expect(200, { user: null })
    // So it was not moved: the real holder still has it, on both nodes.
    await request(app(was1)).get('/whoami').set('cookie', cookies).set('user-agent', 'victim-browser').expect(200, { user: 'ada' })
    expect(await was1.get(sid)).toMatchObject({ user: 'ada' })
    expect(await was2.get(sid)).toMatchObject({ user: 'ada' })
  } finally {
    await Promise.all([was1.close(), was2.close()])
  }
})

describe('peerSession refuses what would fail every request', () => {
  let store: PeerStore
  beforeEach(() => {
    store = new PeerStore()
  })
  afterEach(() => store.close())

  test('an app without keys (koa-session signs its cookie with them): InvalidOptionError naming `app.keys`', () => {
    expect(() => peerSession(new Koa(), { store })).toThrow(expect.objectContaining({ name: 'InvalidOptionError', option: 'app.keys' }))
  })

  test('unsigned cookies need no keys', () => {
    expect(typeof peerSession(new Koa(), { store, signed: false })).toBe('function')
  })

  test('a store that is not a PeerStore: InvalidOptionError naming `store`', () => {
    const koa = new Koa()
    koa.keys = ['koa test key']
    expect(() => peerSession(koa, { store: {} as never })).toThrow(expect.objectContaining({ name: 'InvalidOptionError', option: 'store' }))
  })

  test('a plain store without a node id sets no route cookie and its keys carry no route', async () => {
    const koa = new Koa()
    koa.keys = ['koa test key']
    koa.use(peerSession(koa, { store, maxAge: 60_000 }))
    koa.use((ctx) => {
      ;(ctx.session as unknown as Record<string, unknown>).user = 'ada'
      ctx.body = 'ok'
    })
    const response = await request(koa.callback()).get('/').expect(200)
    const cookies = response.headers['set-cookie'] as unknown as string[]
    expect(cookies.some((cookie) => cookie.startsWith('ROUTEID='))).toBe(false)
    expect(await store.ids()).toEqual([expect.stringMatching(/^[A-Za-z0-9_-]{24}$/)])
  })
})

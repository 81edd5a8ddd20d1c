import express from 'express'
import session, { type SessionData, type SessionOptions } from 'express-session'
import request from 'supertest'
import { PeerStore } from '../../../lib/index.js'

declare module 'express-session' {
  interface SessionData {
    views?: number
    user?: string
  }
}

interface Harness {
  app: express.Express
  store: PeerStore
  calls: { set: number; touch: number }
}

function harness(options: Partial<SessionOptions> & Pick<SessionOptions, 'resave' | 'saveUninitialized'>): Harness {
  const store = new PeerStore()
  const calls = { set: 0, touch: 0 }
  const set = store.set.bind(store)
  const touch = store.touch.bind(store)
  store.set = ((...args: Parameters<typeof set>) => {
    calls.set += 1
    return set(...args)
  }) as typeof store.set
  store.touch = ((...args: Parameters<typeof touch>) => {
    calls.touch += 1
    return touch(...args)
  }) as typeof store.touch
  const app = express()
  app.use(session({ store, secret: 'test secret', cookie: { maxAge: 60_000 }, ...options }))
  app.get('/view', (req, res) => {
    req.session.views = (req.session.views ?? 0) + 1
    res.json({ id: req.sessionID, views: req.session.views })
  })
  app.get('/peek', (req, res) => {
    res.json({ id: req.sessionID, views: req.session.views ?? 0, user: req.session.user ?? null })
  })
  app.post('/login', (req, res, next) => {
    req.session.regenerate((err) => {
      if (err) return next(err)
      req.session.user = 'ada'
      res.json({ id: req.sessionID })
    })
  })
  app.post('/logout', (req, res, next) => {
    req.session.destroy((err) => (err ? next(err) : res.json({ ok: true })))
  })
  app.get('/unreplicable', (req, res, next) => {
    ;(req.session as unknown as Record<string, unknown>).callback = () => 1
    req.session.save((err) => (err ? next(err) : res.json({ ok: true })))
  })
  app.get('/reload', (req, res, next) => {
    req.session.reload((err) => (err ? next(err) : res.json({ user: req.session.user ?? null })))
  })
  app.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(500).json({ error: err.message })
  })
  return { app, store, calls }
}

let current: Harness | undefined
afterEach(async () => {
  await current?.store.close()
  current = undefined
})

function use(options: Parameters<typeof harness>[0]): Harness {
  current = harness(options)
  return current
}

function cookieOf(response: request.Response): string | undefined {
  const header = response.headers['set-cookie'] as unknown as string[] | undefined
  return header?.find((line) => line.startsWith('connect.sid='))
}

describe.each([
  { resave: false, saveUninitialized: false },
  { resave: false, saveUninitialized: true },
  { resave: true, saveUninitialized: false },
  { resave: true, saveUninitialized: true },
])('express-session with %p', (flags) => {
  test('a modified session is saved and read back on the next request', async () => {
    const { app, store } = use(flags)
    const agent = request.agent(app)
    const first = await agent.get('/view').expect(200)
    expect(first.body.views).toBe(1)
    const second = await agent.get('/view').expect(200)
    expect(second.body).toEqual({ id: first.body.id, views: 2 })
    expect(await store.get(first.body.id)).toMatchObject({ views: 2 })
  })

  test('an uninitialized session is stored only with saveUninitialized', async () => {
    const { app, store } = use(flags)
    const response = await request(app).get('/peek').expect(200)
    expect(await store.length()).toBe(flags.saveUninitialized ? 1 : 0)
    expect(cookieOf(response) !== undefined).toBe(flags.saveUninitialized)
  })

  test('an unmodified session ends in touch without resave and in set with resave', async () => {
    const { app, calls } = use(flags)
    const agent = request.agent(app)
    await agent.get('/view').expect(200)
    const before = { ...calls }
    await agent.get('/peek').expect(200)
    expect(calls.set - before.set).toBe(flags.resave ? 1 : 0)
    expect(calls.touch - before.touch).toBe(flags.resave ? 0 : 1)
  })
})

test('rolling: every response reissues the cookie and the store expiry moves with it', async () => {
  const { app, store } = use({ resave: false, saveUninitialized: false, rolling: true })
  const agent = request.agent(app)
  const first = await agent.get('/view').expect(200)
  const firstExpires = (await store.get(first.body.id))!.cookie.expires as Date
  const later = Date.now() + 10_000
  const clock = jest.spyOn(Date, 'now').mockImplementation(() => later)
  let second: request.Response
  try {
    second = await agent.get('/peek').expect(200)
  } finally {
    clock.mockRestore()
  }
  expect(cookieOf(second)).toBeDefined()
  const secondExpires = (await store.get(first.body.id))!.cookie.expires as Date
  expect(secondExpires.getTime()).toBe(later + 60_000)
  expect(secondExpires.getTime()).toBeGreaterThan(firstExpires.getTime())
})

test('regenerate: a new id, the old id gone from the store, the data cleared', async () => {
  const { app, store } = use({ resave: false, saveUninitialized: false })
  const agent = request.agent(app)
  const before = await agent.get('/view').expect(200)
  const login = await agent.post('/login').expect(200)
  expect(login.body.id).not.toBe(before.body.id)
  expect(await store.get(before.body.id)).toBeNull()
  expect(await store.get(login.body.id)).toMatchObject({ user: 'ada' })
  const after = await agent.get('/peek').expect(200)
  expect(after.body).toEqual({ id: login.body.id, views: 0, user: 'ada' })
})

test('destroy: the session is gone and its cookie no longer finds it', async () => {
  const { app, store } = use({ resave: false, saveUninitialized: false })
  const agent = request.agent(app)
  const login = await agent.post('/login').expect(200)
  await agent.post('/logout').expect(200)
  expect(await store.get(login.body.id)).toBeNull()
  const after = await agent.get('/peek').expect(200)
  expect(after.body.user).toBeNull()
  expect(after.body.id).not.toBe(login.body.id)
})

test('reload: changes made through the store by someone else are seen', async () => {
  const { app, store } = use({ resave: false, saveUninitialized: false })
  const agent = request.agent(app)
  const login = await agent.post('/login').expect(200)
  const stored = (await store.get(login.body.id))!
  await store.set(login.body.id, { ...stored, user: 'grace' })
  const reloaded = await agent.get('/reload').expect(200)
  expect(reloaded.body.user).toBe('grace')
})

test('a cookie without maxAge: a browser-session cookie, stored with the default ttl', async () => {
  const { app, store } = use({ resave: false, saveUninitialized: false, cookie: {} })
  const agent = request.agent(app)
  const first = await agent.get('/view').expect(200)
  const cookie = cookieOf(first)!
  expect(cookie).not.toMatch(/Expires=/i)
  const stored = (await store.get(first.body.id))!
  expect(stored.cookie.expires ?? null).toBeNull()
  await agent.get('/view').expect(200)
  expect(await store.get(first.body.id)).toMatchObject({ views: 2 })
})

test('a value that cannot be replicated fails that request with 500 and nothing else', async () => {
  const { app, store } = use({ resave: false, saveUninitialized: false })
  const agent = request.agent(app)
  const first = await agent.get('/view').expect(200)
  const bad = await agent.get('/unreplicable')
  expect(bad.status).toBe(500)
  expect(bad.body.error).toMatch(/`callback`/)
  expect(await store.get(first.body.id)).toMatchObject({ views: 1 })
  await agent.get('/view').expect(200)
  expect(await store.get(first.body.id)).toMatchObject({ views: 2 })
})

describe.each([
  ['the cookie cannot be written (express-session reports it)', { expires: new Date(Number.NaN) }, 1],
  ['no cookie is written (a secure cookie over http)', { expires: new Date(Number.NaN), secure: true }, 0],
])('an invalid cookie.expires when %s', (_, cookie, cookieErrors) => {
  test(`${cookieErrors} error for the request, the response 200, the session stored with the ttl`, async () => {
    const store = new PeerStore({ ttl: 60 })
    const saved = new Promise<string>((resolve) => {
      const set = store.set.bind(store)
      store.set = ((sid: string, data: SessionData, callback?: (error?: unknown) => void) =>
        set(sid, data, (error?: unknown) => {
          callback?.(error)
          resolve(sid)
        })) as typeof store.set
    })
    const errors: string[] = []
    const app = express()
    app.use(session({ store, secret: 'test secret', resave: false, saveUninitialized: false, cookie }))
    app.get('/', (req, res) => {
      req.session.views = 1
      res.end('ok')
    })
    // The response has been sent when these arrive: only count them.
    app.use((err: Error, _req: express.Request, _res: express.Response, _next: express.NextFunction) => {
      errors.push(err.message)
    })
    try {
      await request(app).get('/').expect(200, 'ok')
      const sid = await saved
      // A second error would be passed on from the store's callback, a turn or two later.
      await new Promise((resolve) => setImmediate(() => setImmediate(resolve)))
      expect(errors).toEqual(cookieErrors ? ['option expires is invalid'] : [])
      const stored = await store.get(sid)
      expect(stored).toMatchObject({ views: 1 })
      expect(stored!.cookie.expires).toBeNull()
    } finally {
      await store.close()
    }
  })
})

import type { AddressInfo } from 'node:net'
import express from 'express'
import session, { MemoryStore, type Store } from 'express-session'
import Koa from 'koa'
import request from 'supertest'
import { PeerStore } from '../../../lib/index.js'
import { peerSession as koaPeerSession } from '../../../lib/koa.js'

/**
 * Two overlapping requests of one user, each changing a different key. express-session and
 * koa-session hand the store the whole session, so the later save used to carry the stale value of
 * the other key (connect-redis #75, koa-session #50). A PeerStore merges: both changes are kept.
 * MemoryStore, run through the same steps, shows the lost update.
 */

/** A request parked inside its handler until the test lets it go; `arrived` resolves once it is there. */
interface Parked {
  arrived: Promise<void>
  release: () => void
}

/** Handlers park here by name: /slow?key=a waits for `gates.get('a')`. */
class Gates {
  readonly #parked = new Map<string, { arrive: () => void; wait: Promise<void>; release: () => void; arrived: Promise<void> }>()

  open(name: string): Parked {
    let arrive!: () => void
    let release!: () => void
    const arrived = new Promise<void>((resolve) => (arrive = resolve))
    const wait = new Promise<void>((resolve) => (release = resolve))
    this.#parked.set(name, { arrive, wait, release, arrived })
    return { arrived, release }
  }

  /** Called by the handler: says it arrived, then waits to be released. */
  async park(name: string): Promise<void> {
    const gate = this.#parked.get(name)!
    gate.arrive()
    await gate.wait
  }
}

function expressApp(store: Store, gates: Gates): express.Express {
  const app = express()
  app.use(session({ store, secret: 'merge test secret', resave: false, saveUninitialized: false, cookie: { maxAge: 60_000 } }))
  app.get('/start', (req, res) => {
    ;(req.session as unknown as Record<string, unknown>).started = true
    res.end()
  })
  app.get('/slow', async (req, res) => {
    const key = req.query.key as string
    await gates.park(key)
    ;(req.session as unknown as Record<string, unknown>)[key] = req.query.value
    res.end()
  })
  app.get('/logout', (req, res) => req.session.destroy(() => res.end()))
  app.get('/peek', (req, res) => res.json(req.session))
  return app
}

/** Runs the two overlapping requests: both load the session before either saves; `a` saves first. */
async function overlap(agent: ReturnType<typeof request.agent>, gates: Gates): Promise<void> {
  const a = gates.open('a')
  const b = gates.open('b')
  const first = agent.get('/slow?key=a&value=1').then((res) => res)
  const second = agent.get('/slow?key=b&value=2').then((res) => res)
  await Promise.all([a.arrived, b.arrived])
  a.release()
  expect((await first).status).toBe(200)
  b.release()
  expect((await second).status).toBe(200)
}

describe('express-session', () => {
  test('a PeerStore keeps both changes of two overlapping requests', async () => {
    const store = new PeerStore()
    try {
      const gates = new Gates()
      const agent = request.agent(expressApp(store, gates))
      await agent.get('/start').expect(200)
      await overlap(agent, gates)
      const peek = await agent.get('/peek').expect(200)
      expect(peek.body).toMatchObject({ started: true, a: '1', b: '2' })
      expect(store.stats().merged).toBe(1)
    } finally {
      await store.close()
    }
  })

  test('MemoryStore, through the same steps, loses the first change', async () => {
    const gates = new Gates()
    const agent = request.agent(expressApp(new MemoryStore(), gates))
    await agent.get('/start').expect(200)
    await overlap(agent, gates)
    const peek = await agent.get('/peek').expect(200)
    expect(peek.body).toMatchObject({ started: true, b: '2' })
    expect(peek.body).not.toHaveProperty('a')
  })

  test('a slow request cannot bring back a session logged out meanwhile, by saving or by touching it', async () => {
    const store = new PeerStore()
    try {
      const gates = new Gates()
      const app = expressApp(store, gates)
      const agent = request.agent(app)
      await agent.get('/start').expect(200)
      const [sid] = await store.ids()
      const slow = gates.open('a')
      const pending = agent.get('/slow?key=a&value=1').then((res) => res)
      await slow.arrived
      await agent.get('/logout').expect(200)
      slow.release()
      expect((await pending).status).toBe(200)
      expect(await store.get(sid!)).toBeNull()
      // An unchanged slow request ends in a touch: it must not revive the session either.
      await store.touch(sid!, { cookie: { originalMaxAge: 60_000, expires: new Date(Date.now() + 60_000) } })
      expect(await store.get(sid!)).toBeNull()
      expect(await store.length()).toBe(0)
    } finally {
      await store.close()
    }
  })
})

describe('koa-session, through connect-peer/koa', () => {
  test('two overlapping requests keep both changes', async () => {
    const store = new PeerStore({ nodeId: 'was1' })
    const gates = new Gates()
    const app = new Koa()
    app.keys = ['koa merge test key']
    app.use(koaPeerSession(app, { store, maxAge: 60_000 }))
    app.use(async (ctx) => {
      const data = ctx.session as unknown as Record<string, unknown>
      if (ctx.path === '/start') data.started = true
      if (ctx.path === '/slow') {
        const key = String(ctx.query.key)
        await gates.park(key)
        data[key] = String(ctx.query.value)
      }
      ctx.body = { ...data }
    })
    const server = app.listen(0, '127.0.0.1')
    try {
      await new Promise((resolve) => server.once('listening', resolve))
      const agent = request.agent(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
      await agent.get('/start').expect(200)
      await overlap(agent, gates)
      const peek = await agent.get('/peek').expect(200)
      expect(peek.body).toMatchObject({ started: true, a: '1', b: '2' })
    } finally {
      server.close()
      await store.close()
    }
  })
})

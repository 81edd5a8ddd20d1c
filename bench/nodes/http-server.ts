/**
 * Benchmark child: an Express app whose routes read, write, or serve a static file, on the session
 * store named by BENCH_VARIANT. Every request carries its own session (the load generator rotates
 * through the cookies of BENCH_SESSIONS sessions made with /login first).
 */
import path from 'node:path'
import express from 'express'
import session from 'express-session'
import { PeerStore, peerSession } from '../../lib/index.js'
import { serveParent } from '../lib/process.js'

interface BenchSession {
  profile?: { id: number; name: string; roles: string[] }
  counter?: number
}

const variant = process.env.BENCH_VARIANT!
const port = Number(process.env.BENCH_PORT)
const peerPort = Number(process.env.BENCH_PEER_PORT ?? 0)
const SECRET = 'bench session secret'
const CLUSTER_SECRET = 'bench cluster secret 0123456789'
const cookie = { maxAge: 3_600_000 }
const app = express()
let close: () => Promise<void> = async () => {}

async function sessionMiddleware(): Promise<express.RequestHandler | undefined> {
  switch (variant) {
    case 'none':
      return undefined
    case 'memory-store':
      return session({ secret: SECRET, resave: false, saveUninitialized: false, cookie })
    case 'memorystore': {
      const createMemoryStore = (await import('memorystore')).default
      const MemoryStore = createMemoryStore(session)
      const store = new MemoryStore({ checkPeriod: 60_000 })
      close = () => Promise.resolve(store.stopInterval())
      return session({ store, secret: SECRET, resave: false, saveUninitialized: false, cookie })
    }
    case 'connect-redis': {
      const { createClient } = await import('redis')
      const { RedisStore } = await import('connect-redis')
      const client = createClient({ url: 'redis://127.0.0.1:6379' })
      await client.connect()
      const prefix = `bench:${process.pid}:`
      const store = new RedisStore({ client, prefix })
      close = async () => {
        for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) if (keys.length) await client.del(keys)
        await client.quit()
      }
      return session({ store, secret: SECRET, resave: false, saveUninitialized: false, cookie })
    }
    case 'peer-store-bare': {
      // PeerStore under plain express-session: no route cookie, no rebinding, no static filter.
      const store = new PeerStore({ nodeId: 'bench' })
      close = () => store.close()
      return session({ store, secret: SECRET, resave: false, saveUninitialized: false, cookie, genid: store.genid })
    }
    case 'peer-store':
    case 'peer-2-async':
    case 'peer-2-sync': {
      const clustered = variant !== 'peer-store'
      const store = clustered
        ? new PeerStore([{ host: '127.0.0.102', port: peerPort, nodeId: 'peer' }], {
            nodeId: 'bench',
            listen: `127.0.0.101:${peerPort}`,
            ...(process.env.BENCH_PLAINTEXT ? {} : { secret: CLUSTER_SECRET }),
            sendMode: variant === 'peer-2-sync' ? 'sync' : 'async',
          })
        : new PeerStore({ nodeId: 'bench' })
      await store.ready()
      if (clustered && store.members()[0]?.state !== 'alive') await new Promise((resolve) => store.once('sync', resolve))
      close = () => store.close()
      return peerSession({ store, secret: SECRET, resave: false, saveUninitialized: false, cookie })
    }
    case 'peer-store-redis': {
      // PeerStore alone with its Redis tier, on the same Redis connect-redis uses, writes in the background.
      const prefix = `bench:${process.pid}:`
      const store = new PeerStore({ nodeId: 'bench', redis: 'redis://127.0.0.1:6379', redisPrefix: prefix })
      await store.ready()
      close = async () => {
        await store.close()
        const { Redis } = await import('ioredis')
        const client = new Redis('redis://127.0.0.1:6379')
        for (;;) {
          const keys = await client.keys(`${prefix}*`)
          if (keys.length === 0) break
          await client.del(...keys)
        }
        client.disconnect()
      }
      return peerSession({ store, secret: SECRET, resave: false, saveUninitialized: false, cookie })
    }
    default:
      throw new Error(`unknown BENCH_VARIANT ${variant}`)
  }
}

let counter = 0
void (async () => {
  const middleware = await sessionMiddleware()
  if (middleware) app.use(middleware)
  app.use('/static', express.static(path.join(__dirname, '..', 'static')))
  const sessionOf = (req: express.Request) => req.session as (express.Request['session'] & BenchSession) | undefined
  app.get('/login', (req, res) => {
    const data = sessionOf(req)
    if (data) {
      data.profile = { id: counter, name: `user-${counter++}`, roles: ['reader', 'writer'] }
      data.counter = 0
    }
    res.json({ ok: true })
  })
  app.get('/read', (req, res) => {
    const data = sessionOf(req)
    res.json({ user: data ? (data.profile?.name ?? null) : 'no sessions' })
  })
  app.get('/write', (req, res) => {
    const data = sessionOf(req)
    if (data) data.counter = (data.counter ?? 0) + 1
    else counter += 1
    res.json({ counter: data ? data.counter : counter })
  })
  const server = app.listen(port, '127.0.0.101', () => process.send?.({ event: 'ready' }))
  serveParent({
    stop: async () => {
      server.close()
      server.closeAllConnections()
      await close()
      return true
    },
  })
})()

import Redis from 'ioredis'
import { once } from 'node:events'
import { PeerStore, type PeerStoreOptions } from '../../../lib/index.js'
import { readEntry, sessionKey, WRITE_SCRIPT, writeArguments } from '../../../lib/replication/redis/redis-layout.js'
import { FaultProxy } from '../../helpers/fault-proxy.js'
import { freePort } from '../../helpers/child.js'
import { decode } from '../../../lib/codec/msgpack.js'
import { pack } from '../../helpers/msgpack.js'
import { RedisServer } from '../../helpers/redis-server.js'
import { session } from '../../helpers/sessions.js'

/**
 * Redis unreachable from one node while another still reaches it, against a real redis-server: a
 * proxy between was1 and Redis is cut and restored. was1 and was9 are not peers; Redis is all they
 * share.
 */
const LIMITS = { maxSessionBytes: 1 << 20, maxDepth: 16, maxContainerLength: 1 << 16 }
let redis: RedisServer
let proxy: FaultProxy
let proxyPort: number
let client: Redis
const stores: PeerStore[] = []

beforeEach(async () => {
  redis = await RedisServer.start()
  proxyPort = await freePort()
  proxy = await FaultProxy.start({ host: '127.0.6.20', port: proxyPort }, { host: redis.host, port: redis.port })
  client = new Redis(redis.port, redis.host)
})
afterEach(async () => {
  await Promise.all(stores.splice(0).map((store) => store.close()))
  client.disconnect()
  await proxy.close()
  await redis.stop()
})

/** A store on Redis, directly or (`throughProxy`) through the proxy; resolves once Redis is reached. */
async function open(nodeId: string, throughProxy: boolean, options: PeerStoreOptions = {}): Promise<PeerStore> {
  const address = throughProxy ? { host: '127.0.6.20', port: proxyPort } : { host: redis.host, port: redis.port }
  const store = new PeerStore({ nodeId, redis: `redis://${address.host}:${address.port}`, sendMode: 'sync', ...options })
  stores.push(store)
  await Promise.all([once(store, 'redis:up'), store.ready()])
  return store
}

async function inRedis(sid: string): Promise<Record<string, unknown> | null> {
  const fields = await client.hgetallBuffer(sessionKey('connect-peer:', sid))
  const entry = readEntry(fields, { counter: 0, origin: '' }, LIMITS)
  return entry?.blob ? (decode(entry.blob) as Record<string, unknown>) : null
}

test("while Redis is unreachable, 'sync' writes resolve from memory; once back, what it missed is written back and a newer copy there wins", async () => {
  const was1 = await open('was1', true)
  const was9 = await open('was9', false)
  await was1.set('shared', session({ by: 'was1', n: 1 }))

  const down = once(was1, 'redis:down')
  proxy.cut()
  await down
  // Nothing to wait for while Redis is away: these resolve, as for a peer that is down.
  await was1.set('shared', session({ by: 'was1', n: 2 }))
  await was1.set('made-while-down', session({ by: 'was1' }))
  expect(was1.stats().redis).toMatchObject({ connected: false })
  // Meanwhile was9 changes the same session twice: Redis's copy is now newer than was1's.
  expect(await was9.get('shared')).toMatchObject({ n: 1 })
  await was9.set('shared', session({ by: 'was9', n: 3 }))
  await was9.set('shared', session({ by: 'was9', n: 4 }))

  const readBack = new Promise<void>((resolve) =>
    was1.on('session:replicated', (event) => event.sid === 'shared' && event.from === 'redis' && resolve()),
  )
  const up = once(was1, 'redis:up')
  proxy.restore()
  const [{ sessions }] = (await up) as [{ sessions: number }]
  expect(sessions).toBe(2)
  expect(await inRedis('made-while-down')).toMatchObject({ by: 'was1' })
  expect(await inRedis('shared')).toMatchObject({ by: 'was9', n: 4 })
  expect(was1.stats().redis).toMatchObject({ connected: true })
  expect(was1.stats().redis!.staleWrites).toBeGreaterThanOrEqual(1)
  await readBack
  expect(await was1.get('shared')).toMatchObject({ by: 'was9', n: 4 })
}, 60_000)

test('more changes than redisMaxPending while Redis is unreachable: the queue gives way to a whole write-back', async () => {
  const was1 = await open('was1', true, { redisMaxPending: 10, sendMode: 'async' })
  const down = once(was1, 'redis:down')
  proxy.cut()
  await down
  for (let i = 0; i < 50; i++) await was1.set(`s${i}`, session({ i }))
  expect(was1.stats().redis).toMatchObject({ overflows: 1, pending: 0 })
  const up = once(was1, 'redis:up')
  proxy.restore()
  await up
  expect(await client.keys('connect-peer:s:*')).toHaveLength(50)
  expect(await inRedis('s49')).toMatchObject({ i: 49 })
}, 60_000)

test('a clear deletes the keys of earlier epochs and keeps what was written since', async () => {
  const was1 = await open('was1', false)
  for (let i = 0; i < 20; i++) await was1.set(`old${i}`, session({ i }))
  // An entry another node writes right after the clear (epoch 1:was1) must survive the sweep.
  client.defineCommand('cpWrite', { numberOfKeys: 1, lua: WRITE_SCRIPT })
  const after = {
    version: { counter: 1, origin: 'was2' },
    blob: pack({ cookie: { path: '/' }, by: 'was2' }),
    movedTo: null,
    expiresAt: Date.now() + 3_600_000,
    cookieExpires: null,
    rebinds: 0,
  }
  await (client as unknown as { cpWrite(...args: unknown[]): Promise<number> }).cpWrite(
    sessionKey('connect-peer:', 'written-after'),
    ...writeArguments(after, { counter: 1, origin: 'was1' }, Date.now()),
  )
  await was1.clear()
  expect(await client.keys('connect-peer:s:*')).toEqual(['connect-peer:s:{written-after}'])
}, 60_000)

describe('a change is written as the fields it changed', () => {
  const inputBytes = async () => Number(/total_net_input_bytes:(\d+)/.exec(await client.info('stats'))![1])

  test('a one-field change of a 20 KB session sends that field, not the session; a node reading it gets all of it', async () => {
    const was1 = await open('was1', false)
    const big = 'x'.repeat(20_000)
    await was1.set('large', session({ big, n: 0 }))
    const before = await inputBytes()
    for (let n = 1; n <= 50; n++) await was1.set('large', session({ big, n }))
    const perChange = ((await inputBytes()) - before) / 50
    // The whole session would be over 20,000 bytes a change; a field delta is a few hundred.
    expect(perChange).toBeLessThan(2_000)
    expect(was1.stats().redis).toMatchObject({ wholeWrites: 0, staleWrites: 0 })
    const was9 = await open('was9', false)
    expect(await was9.get('large')).toMatchObject({ big, n: 50 })
    expect(await inRedis('large')).toMatchObject({ big, n: 50 })
  }, 60_000)

  test('a removed field is removed; when Redis no longer holds the version the fields changed from, the whole session is written', async () => {
    const was1 = await open('was1', false)
    await was1.set('s1', session({ keep: 1, drop: 2 }))
    await was1.set('s1', session({ keep: 1 }))
    expect(await inRedis('s1')).toEqual(expect.not.objectContaining({ drop: expect.anything() }))
    expect(await client.hexists(sessionKey('connect-peer:', 's1'), 'f:drop')).toBe(0)
    // Redis lost it (evicted, flushed): the next change cannot be applied on it.
    await client.del(sessionKey('connect-peer:', 's1'))
    await was1.set('s1', session({ keep: 2 }))
    expect(was1.stats().redis).toMatchObject({ wholeWrites: 1 })
    expect(await inRedis('s1')).toMatchObject({ keep: 2 })
  }, 60_000)
})

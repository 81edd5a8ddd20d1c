import RedisMock from 'ioredis-mock'
import { PeerStore, type PeerStoreOptions } from '../../../lib/index.js'
import { decode } from '../../../lib/codec/msgpack.js'
import { encodeSession } from '../../../lib/codec/session-codec.js'
import { sessionKey, WRITE_SCRIPT, writeArguments } from '../../../lib/replication/redis/redis-layout.js'
import { session } from '../../helpers/sessions.js'

/**
 * The Redis tier against ioredis-mock: key layout, TTLs, tombstones, version checks, announcements
 * between nodes. The same behaviour against a real redis-server is in functional/redis.
 */
let port = 7100
const stores: PeerStore[] = []
const clients: InstanceType<typeof RedisMock>[] = []
afterEach(async () => {
  await Promise.all(stores.splice(0).map((store) => store.close()))
  for (const client of clients.splice(0)) client.disconnect()
})

/** A fresh shared mock Redis per test: every client on the same host and port shares its data. */
function redis(): () => InstanceType<typeof RedisMock> {
  const at = { host: 'redis-unit', port: port++ }
  return () => {
    const client = new RedisMock(at)
    clients.push(client)
    return client
  }
}

function store(nodeId: string, client: InstanceType<typeof RedisMock>, options: PeerStoreOptions = {}): PeerStore {
  const created = new PeerStore({ nodeId, redis: client, sendMode: 'sync', ...options })
  stores.push(created)
  return created
}

function replicated(on: PeerStore, sid: string | null): Promise<void> {
  return new Promise((resolve) => {
    const listener = (event: { sid: string | null }) => {
      if (event.sid !== sid) return
      on.off('session:replicated', listener)
      resolve()
    }
    on.on('session:replicated', listener)
  })
}

test('one session is one hash, under a hash-tagged key, expiring with the session', async () => {
  const connect = redis()
  const was1 = store('was1', connect())
  await was1.ready()
  const data = session({ user: 'ada' }, 60_000)
  await was1.set('abc.was1', data)
  const raw = connect()
  const fields = await raw.hgetallBuffer('connect-peer:s:{abc.was1}')
  const { n, 'f:cookie': cookie, 'f:user': user, ...meta } = fields
  expect(Object.fromEntries(Object.entries(meta).map(([key, value]) => [key, value.toString()]))).toEqual({
    v: '1',
    o: 'was1',
    k: 'l',
    e: String((data.cookie as { expires: Date }).expires.getTime()),
    c: String((data.cookie as { expires: Date }).expires.getTime()),
    r: '0',
    p: '0:',
  })
  // One hash field per session field, and their order.
  expect(decode(n!)).toEqual(['cookie', 'user'])
  expect(decode(user!)).toBe('ada')
  expect(decode(cookie!)).toMatchObject({ path: '/' })
  const ttl = await raw.pttl('connect-peer:s:{abc.was1}')
  expect(ttl).toBeGreaterThan(55_000)
  expect(ttl).toBeLessThanOrEqual(60_000)
})

test('a destroy leaves a tombstone in Redis, kept as long as in memory', async () => {
  const connect = redis()
  const was1 = store('was1', connect(), { tombstoneTtl: 600 })
  await was1.ready()
  await was1.set('gone', session({ user: 'ada' }, 60_000))
  await was1.destroy('gone')
  const raw = connect()
  const fields = await raw.hgetallBuffer(sessionKey('connect-peer:', 'gone'))
  expect(fields.k?.toString()).toBe('d')
  expect(fields.n).toBeUndefined()
  expect(await raw.pttl(sessionKey('connect-peer:', 'gone'))).toBeGreaterThan(590_000)
})

test('a miss reads Redis: a node that never saw a session serves it', async () => {
  const connect = redis()
  const was1 = store('was1', connect())
  const was9 = store('was9', connect())
  await Promise.all([was1.ready(), was9.ready()])
  await was1.set('s1', session({ cart: [1, 2] }))
  expect(await was9.get('s1')).toMatchObject({ cart: [1, 2] })
  expect(was9.stats().redis).toMatchObject({ reads: 1 })
})

test('a change announced by another node refreshes the copy held here', async () => {
  const connect = redis()
  const was1 = store('was1', connect())
  const was9 = store('was9', connect())
  await Promise.all([was1.ready(), was9.ready()])
  await was1.set('s1', session({ n: 1 }))
  expect(await was9.get('s1')).toMatchObject({ n: 1 })
  const refreshed = replicated(was9, 's1')
  await was1.set('s1', session({ n: 2 }))
  await refreshed
  expect(await was9.get('s1')).toMatchObject({ n: 2 })
})

test('a destroy announced by another node ends the copy held here, and no stale write brings it back', async () => {
  const connect = redis()
  const was1 = store('was1', connect())
  const was9 = store('was9', connect())
  await Promise.all([was1.ready(), was9.ready()])
  await was1.set('s1', session({ n: 1 }))
  expect(await was9.get('s1')).toMatchObject({ n: 1 })
  const destroyed = replicated(was9, 's1')
  await was1.destroy('s1')
  await destroyed
  expect(await was9.get('s1')).toBeNull()
  await was9.set('s1', session({ n: 99 }))
  expect(await was1.get('s1')).toBeNull()
})

test('a write Redis holds a newer version of is refused there, and the newer one is read back', async () => {
  const connect = redis()
  const raw = connect()
  raw.defineCommand('cpWrite', { numberOfKeys: 1, lua: WRITE_SCRIPT })
  const limits = { maxSessionBytes: 1 << 16, maxDepth: 16, maxContainerLength: 1 << 16 }
  const expiresAt = Date.now() + 3_600_000
  const newer = {
    version: { counter: 5, origin: 'was2' },
    blob: encodeSession({ n: 'newer' }, limits).blob,
    movedTo: null,
    expiresAt,
    cookieExpires: null,
    rebinds: 0,
  }
  await (raw as unknown as { cpWrite(...args: unknown[]): Promise<number> }).cpWrite(
    sessionKey('connect-peer:', 's1'),
    ...writeArguments(newer, { counter: 0, origin: '' }, Date.now()),
  )
  const was1 = store('was1', connect())
  await was1.ready()
  const readBack = replicated(was1, 's1')
  await was1.set('s1', session({ n: 'older' }))
  expect(was1.stats().redis).toMatchObject({ staleWrites: 1 })
  expect(await raw.hgetallBuffer(sessionKey('connect-peer:', 's1')).then((fields) => fields.v?.toString())).toBe('5')
  await readBack
  expect(await was1.get('s1')).toMatchObject({ n: 'newer' })
})

test('a clear reaches every node on the same Redis, and an older entry never comes back', async () => {
  const connect = redis()
  const was1 = store('was1', connect())
  const was9 = store('was9', connect())
  await Promise.all([was1.ready(), was9.ready()])
  await was1.set('s1', session({ n: 1 }))
  expect(await was9.get('s1')).toMatchObject({ n: 1 })
  const cleared = replicated(was9, null)
  await was1.clear()
  await cleared
  expect(await was9.get('s1')).toBeNull()
  expect(await connect().get('connect-peer:epoch')).toBe('1:was1')
  // A third node starting later learns the clear from Redis.
  const was7 = store('was7', connect())
  await was7.ready()
  expect(await was7.get('s1')).toBeNull()
})

test('keys and channel take the prefix', async () => {
  const connect = redis()
  const was1 = store('was1', connect(), { redisPrefix: 'shop:' })
  await was1.ready()
  await was1.set('s1', session({ n: 1 }))
  expect(await connect().keys('*')).toEqual(['shop:s:{s1}'])
})

test("a client passed in outlives the store: close() removes the store's listeners from it", async () => {
  const client = redis()()
  const before = ['ready', 'close', 'end', 'reconnecting', 'error'].map((event) => client.listenerCount(event))
  const was1 = new PeerStore({ nodeId: 'was1', redis: client })
  await was1.ready()
  expect(client.listenerCount('ready')).toBeGreaterThan(before[0]!)
  await was1.close()
  expect(['ready', 'close', 'end', 'reconnecting', 'error'].map((event) => client.listenerCount(event))).toEqual(before)
})

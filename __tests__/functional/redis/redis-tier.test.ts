import Redis from 'ioredis'
import { killAll, NodeProcess } from '../../helpers/node-process.js'
import { RedisServer } from '../../helpers/redis-server.js'
import { session } from '../../helpers/sessions.js'
import { browse, CookieJar, stopAllWebNodes, WebNode } from '../../helpers/web-node.js'

/**
 * The Redis tier against a real redis-server the test starts on a free loopback port: node processes
 * that are peers of each other, a node that is nobody's peer, Redis killed under HTTP load.
 */
const A = { nodeId: 'was1', host: '127.0.6.1', port: 4701 }
const B = { nodeId: 'was2', host: '127.0.6.2', port: 4701 }
const C = { nodeId: 'was3', host: '127.0.6.3', port: 4701 }

let redis: RedisServer
let client: Redis
beforeEach(async () => {
  redis = await RedisServer.start()
  client = new Redis(redis.port, redis.host)
})
afterEach(async () => {
  await killAll()
  await stopAllWebNodes()
  client.disconnect()
  await redis.stop()
})

function peers(sendMode: 'async' | 'sync' = 'sync') {
  const options = { redis: redis.url, sendMode }
  return Promise.all([NodeProcess.start({ ...A, peers: [B], options }), NodeProcess.start({ ...B, peers: [A], options })])
}

test('the whole cluster restarts (no snapshots): every session is still there, read from Redis', async () => {
  const [was1, was2] = await peers()
  await Promise.all([was1.waitForSync('was2'), was2.waitForSync('was1')])
  for (let i = 0; i < 100; i++) await (i % 2 ? was1 : was2).call('set', `s${i}`, session({ i }))
  await Promise.all([was1.kill('SIGKILL'), was2.kill('SIGKILL')])
  const [again1, again2] = await peers()
  for (const node of [again1, again2]) for (const i of [0, 33, 99]) expect(await node.call('get', `s${i}`)).toMatchObject({ i })
  expect(await client.keys('connect-peer:s:*')).toHaveLength(100)
}, 60_000)

test("a node that is nobody's peer, on the same Redis, serves the sessions of the others, and its writes reach them", async () => {
  const [was1, was2] = await peers()
  await Promise.all([was1.waitForSync('was2'), was2.waitForSync('was1')])
  const was3 = await NodeProcess.start({ ...C, peers: [], options: { redis: redis.url, sendMode: 'sync' } })
  await was1.call('set', 'made-on-1', session({ by: 'was1' }))
  expect(await was3.call('get', 'made-on-1')).toMatchObject({ by: 'was1' })
  await was3.call('set', 'made-on-3', session({ by: 'was3' }))
  expect(await was2.call('get', 'made-on-3')).toMatchObject({ by: 'was3' })
  // A copy held on was1 and was2 follows a change made on was3.
  const marks = [was1.mark, was2.mark]
  await was3.call('set', 'made-on-1', session({ by: 'was3 now' }))
  await Promise.all([was1.waitForReplicated('made-on-1', 'upsert', marks[0]), was2.waitForReplicated('made-on-1', 'upsert', marks[1])])
  for (const node of [was1, was2]) expect(await node.call('get', 'made-on-1')).toMatchObject({ by: 'was3 now' })
  // And a logout on was3 ends it everywhere.
  await was3.call('destroy', 'made-on-1')
  await Promise.all([was1.waitForReplicated('made-on-1', 'destroy'), was2.waitForReplicated('made-on-1', 'destroy')])
  for (const node of [was1, was2, was3]) expect(await node.call('get', 'made-on-1')).toBeNull()
}, 60_000)

test('a version race (both nodes write one session at once) ends the same in memory and in Redis', async () => {
  const [was1, was2] = await peers()
  await Promise.all([was1.waitForSync('was2'), was2.waitForSync('was1')])
  await was1.call('set', 'raced', session({ who: 'nobody' }))
  const mark = was1.mark
  await Promise.all([was1.call('set', 'raced', session({ who: 'was1' })), was2.call('set', 'raced', session({ who: 'was2' }))])
  // Equal counters: the greater node id, was2, wins everywhere.
  await was1.waitFor((event) => event.event === 'session:replicated' && event.sid === 'raced', 15_000, mark)
  for (const node of [was1, was2]) expect(await node.call('get', 'raced')).toMatchObject({ who: 'was2' })
  expect(await client.hmget('connect-peer:s:{raced}', 'v', 'o')).toEqual(['2', 'was2'])
}, 60_000)

test('Redis killed under HTTP load: no request fails, and once it is back every session written meanwhile is in Redis', async () => {
  const options = { redis: redis.url, sendMode: 'async' as const }
  const [web1, web2] = await Promise.all([
    WebNode.start({
      framework: 'express5',
      nodeId: 'was1',
      listen: '127.0.6.1:4702',
      peers: [{ host: '127.0.6.2', port: 4702, nodeId: 'was2' }],
      http: { host: '127.0.6.1', port: 3701 },
      options,
    }),
    WebNode.start({
      framework: 'express5',
      nodeId: 'was2',
      listen: '127.0.6.2:4702',
      peers: [{ host: '127.0.6.1', port: 4702, nodeId: 'was1' }],
      http: { host: '127.0.6.2', port: 3701 },
      options,
    }),
  ])
  let running = true
  let requests = 0
  const failures: string[] = []
  const user = async (n: number) => {
    const web = n % 2 ? web1 : web2
    while (running) {
      const jar = new CookieJar()
      for (const path of [`/login?user=u${n}`, '/whoami', '/whoami']) {
        const response = await browse(jar, `${web.url}${path}`).catch((error: Error) => ({ status: 0, body: { error: error.message } }))
        requests += 1
        if (response.status !== 200) failures.push(`${path}: ${response.status} ${JSON.stringify(response.body)}`)
      }
    }
  }
  const load = Promise.all([0, 1, 2, 3].map(user))
  const count = async (atLeast: number) => {
    while (requests < atLeast) await new Promise((resolve) => setImmediate(resolve))
  }
  await count(100)
  await redis.kill()
  const during = requests
  await count(during + 300)
  await redis.start()
  await count(requests + 100)
  running = false
  await load
  expect(failures).toEqual([])
  // Both nodes reconnect, write back what Redis missed (it lost everything: no persistence), and drain.
  const drained = async (web: WebNode) => {
    for (;;) {
      const stats = await web.call<{ redis: { connected: boolean; pending: number } }>('stats')
      if (stats.redis.connected && stats.redis.pending === 0) return
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  await Promise.all([drained(web1), drained(web2)])
  const ids = new Set([...(await web1.call<string[]>('ids')), ...(await web2.call<string[]>('ids'))])
  expect(ids.size).toBeGreaterThan(100)
  const missing = []
  for (const sid of ids) if ((await client.exists(`connect-peer:s:{${sid}}`)) === 0) missing.push(sid)
  expect(missing).toEqual([])
}, 120_000)

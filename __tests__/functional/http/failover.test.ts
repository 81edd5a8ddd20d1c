import { FrameDecoder } from '../../../lib/protocol/frame.js'
import { MessageType } from '../../../lib/protocol/messages.js'
import { FaultProxy } from '../../helpers/fault-proxy.js'
import { browse, CookieJar, WebNode, stopAllWebNodes, type Framework } from '../../helpers/web-node.js'

const SESSION_COOKIE: Record<Framework, string> = {
  express5: 'connect.sid',
  express4: 'connect.sid',
  koa: 'koa.sess',
  fastify: 'sessionId',
}
const DATA_TYPES = new Set<number>([MessageType.UPSERT, MessageType.DESTROY, MessageType.EXPIRY, MessageType.RENAME, MessageType.CLEAR])

describe.each<[Framework, number]>([
  ['express5', 0],
  ['express4', 1],
  ['koa', 2],
  ['fastify', 3],
])('%s', (framework, offset) => {
  const replPort = 4080 + offset
  const httpPort = 3180 + offset
  const proxyPort = 5080 + offset
  let was1: WebNode
  let was2: WebNode
  let proxy: FaultProxy
  /** Replication frames was1 sent to was2, by message type, as seen on the wire. */
  const wire = new Map<number, number>()
  const dataFrames = () => [...wire].filter(([type]) => DATA_TYPES.has(type)).reduce((sum, [, count]) => sum + count, 0)

  beforeAll(async () => {
    proxy = await FaultProxy.start({ host: '127.0.0.12', port: proxyPort }, { host: '127.0.0.12', port: replPort })
    const decoder = new FrameDecoder(1 << 26)
    proxy.tap = (chunk) => {
      for (const frame of decoder.push(chunk)) wire.set(frame.type, (wire.get(frame.type) ?? 0) + 1)
      return chunk
    }
    ;[was1, was2] = await Promise.all([
      WebNode.start({
        framework,
        nodeId: 'was1',
        listen: `127.0.0.11:${replPort}`,
        peers: [{ host: '127.0.0.12', port: proxyPort, nodeId: 'was2' }],
        http: { host: '127.0.0.11', port: httpPort },
      }),
      WebNode.start({
        framework,
        nodeId: 'was2',
        listen: `127.0.0.12:${replPort}`,
        peers: [{ host: '127.0.0.11', port: replPort, nodeId: 'was1' }],
        http: { host: '127.0.0.12', port: httpPort },
      }),
    ])
    await Promise.all([was1.waitFor((event) => event.event === 'sync'), was2.waitFor((event) => event.event === 'sync')])
  }, 60_000)

  afterAll(async () => {
    await stopAllWebNodes()
    await proxy.close()
  })

  test('a session created on node 1 is served by node 2 after a failover: rebound, old id dead everywhere, nothing lost', async () => {
    const jar = new CookieJar()
    await browse(jar, `${was1.url}/login?user=ada`)
    expect(jar.cookies.get('ROUTEID')).toBe('was1')
    const first = await browse(jar, `${was1.url}/whoami`)
    expect(first.body).toMatchObject({ node: 'was1', user: 'ada', count: 1, previous: null })
    const oldSession = jar.cookies.get(SESSION_COOKIE[framework])!
    const beforeFailover = jar.copy()

    // The balancer sends the client to was2 (was1 "failed").
    const failedOver = await browse(jar, `${was2.url}/whoami`)
    expect(failedOver.body).toMatchObject({
      node: 'was2',
      user: 'ada',
      count: 2,
      cart: [
        { sku: 'A-1', qty: 2 },
        { sku: 'B-7', qty: 1 },
      ],
    })
    expect(failedOver.body.previous).toEqual(expect.stringMatching(/\.was1$/))
    expect(jar.cookies.get(SESSION_COOKIE[framework])).not.toBe(oldSession)
    expect(jar.cookies.get('ROUTEID')).toBe('was2')
    if (failedOver.body.sid) expect(failedOver.body.sid).toMatch(/\.was2$/)

    // The new id keeps working; the old one works nowhere.
    expect((await browse(jar, `${was2.url}/whoami`)).body).toMatchObject({ node: 'was2', user: 'ada', count: 3 })
    for (const node of [was1, was2]) {
      const stale = await browse(beforeFailover.copy(), `${node.url}/whoami`)
      expect(stale.body).toMatchObject({ user: null, count: 1 })
    }
  })

  test('a takeover whose first request is a static file still replicates the move: the old id dies everywhere, the data lives on', async () => {
    const jar = new CookieJar()
    await browse(jar, `${was2.url}/login?user=alan`)
    const beforeFailover = jar.copy()
    const oldSession = jar.cookies.get(SESSION_COOKIE[framework])
    // The balancer sends the client to was1, and the first thing the page loads is a script.
    expect((await browse(jar, `${was1.url}/public/app.js`)).status).toBe(200)
    expect(jar.cookies.get(SESSION_COOKIE[framework])).not.toBe(oldSession)
    for (const node of [was1, was2]) {
      const stale = await browse(beforeFailover.copy(), `${node.url}/whoami`)
      expect(stale.body).toMatchObject({ user: null })
    }
    // was2 knows the session under its new id without having served it: the move reached it.
    expect((await browse(jar.copy(), `${was2.url}/whoami`)).body).toMatchObject({ node: 'was2', user: 'alan', count: 1 })
  })

  test('a logout at a URL the static filter matches still reaches the peer', async () => {
    const jar = new CookieJar()
    await browse(jar, `${was1.url}/login?user=barbara`)
    const loggedIn = jar.copy()
    expect((await browse(jar, `${was1.url}/public/logout.js`)).body).toEqual({ loggedOut: true })
    // 'sync' mode: the logout returned once was2 had applied it.
    for (const node of [was2, was1]) expect((await browse(loggedIn.copy(), `${node.url}/whoami`)).body).toMatchObject({ user: null })
  })

  test('1,000 requests for static files cause zero replication frames on the wire', async () => {
    const jar = new CookieJar()
    await browse(jar, `${was1.url}/login?user=grace`)
    await browse(jar, `${was1.url}/whoami`) // replicated and acknowledged ('sync' mode): the wire is quiet
    const before = dataFrames()
    for (let i = 0; i < 1000; i++) {
      const response = await browse(jar, `${was1.url}/public/app.js`)
      expect(response.status).toBe(200)
    }
    // A replicated change after them, acknowledged: anything the static requests queued went first.
    const after = await browse(jar, `${was1.url}/whoami`)
    expect(after.body).toMatchObject({ user: 'grace', count: 2 })
    expect(dataFrames() - before).toBe(1)
  }, 60_000)

  test('requests that change nothing replicate no session change, only batched expiry moves (also under rolling saves)', async () => {
    const jar = new CookieJar()
    await browse(jar, `${was1.url}/login?user=edsger`)
    const upserts = () => wire.get(MessageType.UPSERT) ?? 0
    const before = upserts()
    for (let i = 0; i < 50; i++) expect((await browse(jar, `${was1.url}/peek`)).body).toEqual({ user: 'edsger' })
    // A change after them, acknowledged: the only session change on the wire.
    await browse(jar, `${was1.url}/whoami`)
    expect(upserts() - before).toBe(1)
  })

  test('requests outside the filter do replicate: the count above can see frames', async () => {
    const jar = new CookieJar()
    await browse(jar, `${was1.url}/login?user=linus`)
    const before = dataFrames()
    for (let i = 0; i < 20; i++) await browse(jar, `${was1.url}/whoami`)
    expect(dataFrames() - before).toBeGreaterThanOrEqual(20)
  })
})

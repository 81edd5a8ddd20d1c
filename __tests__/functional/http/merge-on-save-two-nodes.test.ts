/**
 * Merge on save across two nodes (issue 17, part 2): an Express app on each of two node processes,
 * one user, two overlapping requests that loaded the same version of the session, one on each node,
 * each changing a different key. The second saves only once its node has received the first one's
 * save: without merging, it would write back the stale value of the first one's key. Both changes
 * must be kept, on both nodes.
 *
 * With plain `session({ store })` (a balancer that is not sticky) both requests save under the same
 * id. With `peerSession` the node the second request lands on takes the session over (a new id
 * routed to it): the first request's change must follow the session to its new id.
 */
import { settles } from '../../helpers/settle.js'
import { browse, CookieJar, stopAllWebNodes, WebNode, type Framework } from '../../helpers/web-node.js'

const A = { nodeId: 'web1', host: '127.0.20.11' }
const B = { nodeId: 'web2', host: '127.0.20.12' }

afterEach(stopAllWebNodes)

/** Two Express nodes that see each other: replication on `port`, HTTP on `port` - 1000. */
async function pair(port: number, plainSession: boolean, framework: Framework = 'express5'): Promise<[WebNode, WebNode]> {
  const start = (self: typeof A, other: typeof A) =>
    WebNode.start({
      framework,
      plainSession,
      nodeId: self.nodeId,
      listen: `${self.host}:${port}`,
      peers: [{ host: other.host, port, nodeId: other.nodeId }],
      http: { host: self.host, port: port - 1000 },
    })
  const nodes = await Promise.all([start(A, B), start(B, A)])
  await Promise.all(nodes.map((node) => node.waitFor((event) => event.event === 'sync')))
  return nodes
}

type Stored = Record<string, unknown> | null

/** Waits until `node`'s store holds `sid` with the values of `expected` (null: holds nothing); resolves with what it holds. */
async function holds(node: WebNode, sid: string, expected: Record<string, unknown> | null): Promise<Stored> {
  let seen: Stored = null
  await settles(
    async () => {
      seen = await node.call<Stored>('get', sid)
      if (expected === null) return seen === null
      return seen !== null && Object.entries(expected).every(([key, value]) => seen![key] === value)
    },
    10_000,
    () => `${node.spec.nodeId} holds ${JSON.stringify(seen)} under ${sid}, not ${JSON.stringify(expected)}`,
  )
  return seen
}

/**
 * Logs in on `was1`, then starts the two requests (theme=dark on was1, lang=fr on was2) and waits
 * until both have loaded the session and stopped before answering, which saves.
 */
async function overlappingRequests(was1: WebNode, was2: WebNode) {
  const jar = new CookieJar()
  const login = await browse(jar, `${was1.url}/login?user=ada`)
  expect(login.status).toBe(200)
  const sid = login.body.sid as string
  await holds(was2, sid, { user: 'ada' })
  const first = browse(jar.copy(), `${was1.url}/slow?key=theme&value=dark&gate=first`)
  const second = browse(jar.copy(), `${was2.url}/slow?key=lang&value=fr&gate=second`)
  const [, arrived] = await Promise.all([
    was1.waitFor((event) => event.event === 'gate' && event.gate === 'first'),
    was2.waitFor((event) => event.event === 'gate' && event.gate === 'second'),
  ])
  return { sid, first, second, secondSid: arrived.sid as string }
}

const BOTH = { user: 'ada', count: 0, theme: 'dark', lang: 'fr' }

test('plain session({ store }): two overlapping requests on two nodes, each changing a different key, keep both changes', async () => {
  const [was1, was2] = await pair(4211, true)
  const { sid, first, second } = await overlappingRequests(was1, was2)

  // The first saves on was1, and was2 receives it while the second is still in flight there.
  await was1.call('open', 'first')
  expect((await first).status).toBe(200)
  await holds(was2, sid, { theme: 'dark' })

  // The second saves over a newer version than the one it loaded: only its own key is applied.
  await was2.call('open', 'second')
  expect((await second).status).toBe(200)

  expect(await holds(was1, sid, { lang: 'fr' })).toMatchObject(BOTH)
  expect(await was2.call('get', sid)).toMatchObject(BOTH)
  expect((await was2.call<{ merged: number }>('stats')).merged).toBe(1)
  expect((await was1.call<{ merged: number }>('stats')).merged).toBe(0)
}, 60_000)

test.each([
  ['Express', 'express5', 4212],
  ['Fastify', 'fastify', 4213],
] as const)(
  'peerSession (%s): the second node takes the session over meanwhile; the first request’s change follows it to its new id',
  async (_, framework, port) => {
    const [was1, was2] = await pair(port, false, framework)
    const { sid, first, second, secondSid } = await overlappingRequests(was1, was2)
    expect(secondSid).not.toBe(sid)
    expect(secondSid).toMatch(/\.web2$/)
    // was1 knows of the takeover before the first request saves: it saves into a moved id.
    await holds(was1, sid, null)

    await was1.call('open', 'first')
    expect((await first).status).toBe(200)
    await holds(was2, secondSid, { theme: 'dark' })

    await was2.call('open', 'second')
    expect((await second).status).toBe(200)

    expect(await holds(was1, secondSid, { lang: 'fr' })).toMatchObject(BOTH)
    expect(await was2.call('get', secondSid)).toMatchObject(BOTH)
    for (const node of [was1, was2]) expect(await node.call('get', sid)).toBeNull()
  },
  60_000,
)

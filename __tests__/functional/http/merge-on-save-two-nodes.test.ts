/**
 * Merge on save across two nodes (issue 17, part 2): an Express app on each of two node processes
 * (plain `session({ store })`, as behind a balancer that is not sticky), one user, two overlapping
 * requests that loaded the same version of the session, one on each node, each changing a different
 * key. The second saves only once its node has received the first one's save: without merging, it
 * would write back the stale value of the first one's key. Both changes must be kept, on both nodes.
 */
import { settles } from '../../helpers/settle.js'
import { browse, CookieJar, stopAllWebNodes, WebNode } from '../../helpers/web-node.js'

const A = { nodeId: 'web1', host: '127.0.20.11' }
const B = { nodeId: 'web2', host: '127.0.20.12' }
const REPLICATION_PORT = 4211
const HTTP_PORT = 3211

let was1: WebNode
let was2: WebNode

beforeAll(async () => {
  const start = (self: typeof A, other: typeof A) =>
    WebNode.start({
      framework: 'express5',
      plainSession: true,
      nodeId: self.nodeId,
      listen: `${self.host}:${REPLICATION_PORT}`,
      peers: [{ host: other.host, port: REPLICATION_PORT, nodeId: other.nodeId }],
      http: { host: self.host, port: HTTP_PORT },
    })
  ;[was1, was2] = await Promise.all([start(A, B), start(B, A)])
  await Promise.all([was1.waitFor((event) => event.event === 'sync'), was2.waitFor((event) => event.event === 'sync')])
}, 60_000)

afterAll(stopAllWebNodes)

type Stored = Record<string, unknown> | null

/** Waits until `node`'s store holds `sid` with the values of `expected`; resolves with what it holds. */
async function holds(node: WebNode, sid: string, expected: Record<string, unknown>): Promise<Stored> {
  let seen: Stored = null
  await settles(
    async () => {
      seen = await node.call<Stored>('get', sid)
      return seen !== null && Object.entries(expected).every(([key, value]) => seen![key] === value)
    },
    10_000,
    () => `${node.spec.nodeId} holds ${JSON.stringify(seen)}, not ${JSON.stringify(expected)}`,
  )
  return seen
}

test('two overlapping requests on two nodes, each changing a different key: both changes are kept', async () => {
  const jar = new CookieJar()
  const login = await browse(jar, `${was1.url}/login?user=ada`)
  expect(login.status).toBe(200)
  const sid = login.body.sid as string
  await holds(was2, sid, { user: 'ada' })

  // Both requests load the session (the same version) and stop before answering, which saves.
  const first = browse(jar.copy(), `${was1.url}/slow?key=theme&value=dark&gate=first`)
  const second = browse(jar.copy(), `${was2.url}/slow?key=lang&value=fr&gate=second`)
  await Promise.all([
    was1.waitFor((event) => event.event === 'gate' && event.gate === 'first'),
    was2.waitFor((event) => event.event === 'gate' && event.gate === 'second'),
  ])

  // The first saves on was1, and was2 receives it while the second is still in flight there.
  await was1.call('open', 'first')
  expect((await first).status).toBe(200)
  await holds(was2, sid, { theme: 'dark' })

  // The second saves over a newer version than the one it loaded: only its own key is applied.
  await was2.call('open', 'second')
  expect((await second).status).toBe(200)

  const expected = { user: 'ada', count: 0, theme: 'dark', lang: 'fr' }
  expect(await holds(was1, sid, { lang: 'fr' })).toMatchObject(expected)
  expect(await was2.call('get', sid)).toMatchObject(expected)
  expect((await was2.call<{ merged: number }>('stats')).merged).toBe(1)
  expect((await was1.call<{ merged: number }>('stats')).merged).toBe(0)
}, 60_000)

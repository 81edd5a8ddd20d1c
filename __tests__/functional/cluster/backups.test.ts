import { settles } from '../../helpers/settle.js'
import { browse, CookieJar, stopAllWebNodes, WebNode, type WebNodeSpec } from '../../helpers/web-node.js'

/**
 * `{ backups: 1 }` on five real processes: each session is held by two nodes, any node serves it
 * (fetching it from its holders and taking it over), and an owner SIGKILLed under load loses no
 * acknowledged write while the survivors restore two copies.
 */
const HOSTS = ['127.0.10.1', '127.0.10.2', '127.0.10.3', '127.0.10.4', '127.0.10.5', '127.0.10.6']
const REPLICATION_PORT = 4055
const HTTP_PORT = 3055
const ids = HOSTS.map((_, i) => `was${i + 1}`)
/** The five nodes the cluster starts with; the sixth joins at run time. */
const FIRST = 5

/** Node i, configured with the first five (whichever of them it is not). */
function spec(i: number): WebNodeSpec {
  return {
    framework: 'express5',
    nodeId: ids[i]!,
    listen: `${HOSTS[i]}:${REPLICATION_PORT}`,
    peers: HOSTS.slice(0, FIRST).flatMap((host, j) => (j === i ? [] : [{ host, port: REPLICATION_PORT, nodeId: ids[j]! }])),
    http: { host: HOSTS[i]!, port: HTTP_PORT },
    options: { replication: { backups: 1 }, sendMode: 'sync' },
  }
}

let nodes: WebNode[] = []

beforeAll(async () => {
  nodes = await Promise.all(HOSTS.slice(0, FIRST).map((_, i) => WebNode.start(spec(i))))
  // Every node sees the four others alive: only then do all five agree on who holds what.
  await Promise.all(nodes.flatMap((node) => nodes.filter((other) => other !== node).map((other) => seesAlive(node, other))))
}, 60_000)

function seesAlive(node: WebNode, peer: WebNode): Promise<unknown> {
  return node.waitFor((event) => {
    const member = event.member as { nodeId?: string; state?: string } | undefined
    return event.event === 'peer:state' && member?.nodeId === peer.spec.nodeId && member.state === 'alive'
  }, 30_000)
}

afterAll(() => stopAllWebNodes())

/** How many of `live` hold each session id (from each node's own table, no fetching). */
async function copies(live: WebNode[]): Promise<Map<string, number>> {
  const counts = new Map<string, number>()
  for (const held of await Promise.all(live.map((node) => node.call<string[]>('ids')))) {
    for (const sid of held) counts.set(sid, (counts.get(sid) ?? 0) + 1)
  }
  return counts
}

/** The session id in a jar's signed cookie (`s:<id>.<signature>`). */
function sidOf(jar: CookieJar): string {
  const cookie = decodeURIComponent(jar.cookies.get('connect.sid')!)
  return cookie.slice(2, cookie.lastIndexOf('.'))
}

async function expectTwoCopiesOf(sids: readonly string[], live: WebNode[]): Promise<void> {
  let seen = new Map<string, number>()
  await settles(
    async () => {
      seen = await copies(live)
      return sids.every((sid) => seen.get(sid) === 2) && [...seen.values()].every((count) => count <= 2)
    },
    15_000,
    () => JSON.stringify(Object.fromEntries(seen)),
  )
  expect(sids.map((sid) => seen.get(sid))).toEqual(sids.map(() => 2))
}

test('each session is held by exactly two of the five nodes, and every node serves it, taking it over', async () => {
  const jars = Array.from({ length: 10 }, () => new CookieJar())
  for (const [j, jar] of jars.entries()) {
    expect((await browse(jar, `${nodes[j % 5]!.url}/login?user=user${j}`)).status).toBe(200)
  }
  await expectTwoCopiesOf(
    jars.map((jar) => sidOf(jar)),
    nodes,
  )

  // One user walks through all five nodes: each serves the session with its data and takes it over.
  const jar = jars[0]!
  for (const [i, node] of nodes.entries()) {
    const { body } = await browse(jar, `${node.url}/whoami`)
    expect(body).toMatchObject({ node: ids[i], user: 'user0', count: i + 1 })
    expect(jar.cookies.get('ROUTEID')).toBe(ids[i])
  }
  await expectTwoCopiesOf(
    jars.map((each) => sidOf(each)),
    nodes,
  )
}, 60_000)

test('an owner SIGKILLed under load: every acknowledged write survives, served elsewhere, two copies again', async () => {
  const victim = nodes[1]!
  const users = Array.from({ length: 8 }, () => new CookieJar())
  for (const [j, jar] of users.entries()) await browse(jar, `${victim.url}/login?user=load${j}`)
  const acknowledged = users.map(() => 0)

  // Load: each user writes on the victim until it dies; a 200 is an acknowledged (sync) write.
  let killed = false
  const load = users.map(async (jar, j) => {
    while (!killed) {
      const response = await browse(jar, `${victim.url}/whoami`).catch(() => undefined)
      if (response?.status === 200) acknowledged[j] = response.body.count as number
    }
  })
  await settles(
    () => acknowledged.every((count) => count >= 3),
    15_000,
    () => `acknowledged ${acknowledged.join(', ')}`,
  )
  await victim.kill()
  killed = true
  await Promise.all(load)

  const survivors = nodes.filter((node) => node !== victim)
  for (const [j, jar] of users.entries()) {
    // The balancer sends each user to some survivor: every acknowledged write is there.
    const { status, body } = await browse(jar, `${survivors[j % survivors.length]!.url}/whoami`)
    expect(status).toBe(200)
    expect(body).toMatchObject({ user: `load${j}` })
    expect(body.count as number).toBeGreaterThan(acknowledged[j]!)
  }
  await expectTwoCopiesOf(
    users.map((jar) => sidOf(jar)),
    survivors,
  )
}, 60_000)

test('a sixth node added at run time, then one removed: sessions rebalance, none lost, two copies each', async () => {
  // The survivors of the previous test, and every session they hold.
  let live = nodes.filter((node) => node !== nodes[1])
  const sessions = [...(await copies(live)).keys()]
  expect(sessions.length).toBeGreaterThanOrEqual(18)

  const sixth = await WebNode.start(spec(FIRST))
  for (const node of live) await node.call('addPeer', `${sixth.spec.nodeId}@${sixth.spec.listen}`)
  await Promise.all(live.flatMap((node) => [seesAlive(node, sixth), seesAlive(sixth, node)]))
  live = [...live, sixth]
  await expectTwoCopiesOf(sessions, live)
  // The newcomer took its share (about 2 in 5 of the sessions), not all of them.
  const held = await sixth.call<string[]>('ids')
  expect(held.length).toBeGreaterThan(0)
  expect(held.length).toBeLessThan(sessions.length)

  // was3 leaves: the others forget it, then it stops; its copies are restored from the other holders.
  const leaving = nodes[2]!
  live = live.filter((node) => node !== leaving)
  for (const node of live) await node.call('removePeer', leaving.spec.nodeId)
  await leaving.kill()
  await expectTwoCopiesOf(sessions, live)
  expect([...(await copies(live)).keys()].sort()).toEqual([...sessions].sort())
}, 60_000)

/**
 * Five web nodes on a real (namespaced) network: each in its own network namespace at 10.10.10.1-5,
 * replication on port 4055, every link with 1 ms of delay each way and 1% loss, `sync` send mode;
 * the HTTP client in a namespace of its own (10.10.10.100). See helpers/netns.ts. Needs root.
 */
import { NetnsClient } from '../../helpers/netns-client.js'
import { NetnsNetwork, netnsUnavailable } from '../../helpers/netns.js'
import { CookieJar, WebNode, type WebNodeSpec } from '../../helpers/web-node.js'

/** Where sessions are placed: 'all' (every node holds every session) or `{ backups: k }`. */
const REPLICATION = { backups: 1 } as 'all' | { backups: number }
const NODES = 5
const PORT = 4055
const HTTP_PORT = 8080
const SECRET = 'netns test cluster secret'
/** How many nodes hold each session once settled. */
const COPIES = REPLICATION === 'all' ? NODES : REPLICATION.backups + 1

const unavailable = netnsUnavailable()
if (unavailable) console.log(`netns-backups.test.ts skipped: ${unavailable}`)
const describeNetns = unavailable ? describe.skip : describe

interface Member {
  nodeId: string | null
  state: string
}

describeNetns(`five nodes on a namespaced network, 1 ms and 1% loss per link, sync, replication ${JSON.stringify(REPLICATION)}`, () => {
  let network: NetnsNetwork
  let client: NetnsClient
  const nodes: WebNode[] = []
  const url = (node: number, route: string) => `http://${network.address(node)}:${HTTP_PORT}${route}`

  beforeAll(async () => {
    network = await NetnsNetwork.create({ nodes: NODES, link: { delayMs: 1, lossPercent: 1 } })
    const all = Array.from({ length: NODES }, (_, i) => i + 1)
    const spec = (i: number): WebNodeSpec => ({
      framework: 'express5',
      nodeId: `node${i}`,
      listen: `${network.address(i)}:${PORT}`,
      peers: all.filter((j) => j !== i).map((j) => ({ host: network.address(j), port: PORT, nodeId: `node${j}` })),
      http: { host: network.address(i), port: HTTP_PORT },
      // Not loopback: the cluster needs a secret.
      options: { secret: SECRET, ...(REPLICATION === 'all' ? {} : { replication: REPLICATION }) },
    })
    const started = await Promise.all(all.map((i) => WebNode.start(spec(i), { network, endpoint: i })))
    nodes.push(...started)
    client = await NetnsClient.start(network)
    await until('every node sees every other alive', async () => {
      const views = await Promise.all(nodes.map((node) => node.call<Member[]>('members')))
      return views.every((members) => members.length === NODES - 1 && members.every((member) => member.state === 'alive'))
    })
  }, 45_000)

  afterAll(async () => {
    await Promise.all(nodes.map((node) => node.kill()))
    await client?.close()
    await network?.destroy()
  })

  /** Polls `check` every 100 ms until it holds; fails with `what` after `timeoutMs`. */
  async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }

  /** The nodes (1-based) whose store holds `sid`. */
  async function holders(sid: string): Promise<number[]> {
    const ids = await Promise.all(nodes.map((node) => node.call<string[]>('ids')))
    return ids.flatMap((held, i) => (held.includes(sid) ? [i + 1] : []))
  }

  test('the owner cut off: its session is served with its data by the others, writes are acknowledged, and after healing every holder converges', async () => {
    // Three users, each logged in through a different node (which owns the session).
    const users = [
      { name: 'ada', owner: 1, jar: new CookieJar() },
      { name: 'alan', owner: 2, jar: new CookieJar() },
      { name: 'grace', owner: 3, jar: new CookieJar() },
    ]
    const sids = new Map<string, string>()
    for (const user of users) {
      const login = await client.browse(user.jar, url(user.owner, `/login?user=${user.name}`))
      expect(login.body).toMatchObject({ node: `node${user.owner}` })
      sids.set(user.name, login.body.sid as string)
    }
    // 'sync': each login returned once the copies were applied, so every holder has them now.
    for (const user of users) expect(await holders(sids.get(user.name)!)).toHaveLength(COPIES)

    // Ada's owner is cut off from everyone; the balancer sends her to a node that holds no copy of
    // her session where there is one (with backups, it must fetch it from the surviving holder).
    const ada = users[0]!
    const oldSid = sids.get('ada')!
    const held = await holders(oldSid)
    const target = [2, 3, 4, 5].find((i) => !held.includes(i)) ?? 2
    await network.cut(ada.owner)
    const failedOver = await client.browse(ada.jar, url(target, '/whoami'))
    expect(failedOver.status).toBe(200)
    expect(failedOver.body).toMatchObject({
      node: `node${target}`,
      user: 'ada',
      count: 1,
      cart: [
        { sku: 'A-1', qty: 2 },
        { sku: 'B-7', qty: 1 },
      ],
    })
    const newSid = failedOver.body.sid as string
    expect(failedOver.body.previous).toBe(oldSid)
    expect(newSid.endsWith(`.node${target}`)).toBe(true)
    // Writes on the new owner are acknowledged, and each one is readable by the next request.
    for (let count = 2; count <= 5; count++) {
      const write = await client.browse(ada.jar, url(target, '/whoami'))
      expect(write.body).toMatchObject({ node: `node${target}`, user: 'ada', count })
    }
    // The other users' sessions still answer on nodes that were not cut.
    expect((await client.browse(users[1]!.jar, url(2, '/peek'))).body).toEqual({ user: 'alan' })
    expect((await client.browse(users[2]!.jar, url(3, '/peek'))).body).toEqual({ user: 'grace' })

    // Healed: the cut node catches up. Every holder of Ada's session has count 5, the old id is
    // held nowhere, and the nodes together hold each session exactly COPIES times.
    await network.heal(ada.owner)
    await until(`Ada's session (${newSid}) converged on ${COPIES} holders, the old id gone everywhere`, async () => {
      const holding = await holders(newSid)
      if (holding.length !== COPIES || (await holders(oldSid)).length > 0) return false
      const copies = await Promise.all(holding.map((i) => nodes[i - 1]!.call<{ user?: string; count?: number } | null>('get', newSid)))
      return copies.every((copy) => copy?.user === 'ada' && copy.count === 5)
    })
    await until(`the nodes' stats add up to ${users.length} sessions x ${COPIES} copies`, async () => {
      const stats = await Promise.all(nodes.map((node) => node.call<{ sessions: number }>('stats')))
      return stats.reduce((sum, each) => sum + each.sessions, 0) === users.length * COPIES
    })
    if (COPIES === NODES) expect(await holders(newSid)).toContain(ada.owner)
    // And Ada goes on where she was, on the node the balancer sticks her to.
    expect((await client.browse(ada.jar, url(target, '/whoami'))).body).toMatchObject({ node: `node${target}`, user: 'ada', count: 6 })
  }, 45_000)
})

/**
 * Five web nodes on a real (namespaced) network: each in its own network namespace at 10.10.10.1-5,
 * replication on port 4055, every link with 1 ms of delay each way and 1% loss, `sync` send mode;
 * the HTTP client in a namespace of its own (10.10.10.100). See helpers/netns.ts. Needs root.
 */
import { holdersOf, meshForTests } from '../../helpers/netns-mesh.js'
import { netnsUnavailable } from '../../helpers/netns.js'
import { settles } from '../../helpers/settle.js'
import { CookieJar } from '../../helpers/web-node.js'

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

describeNetns(`five nodes on a namespaced network, 1 ms and 1% loss per link, sync, replication ${JSON.stringify(REPLICATION)}`, () => {
  // Not loopback: the cluster needs a secret.
  const options = { secret: SECRET, ...(REPLICATION === 'all' ? {} : { replication: REPLICATION }) }
  const mesh = meshForTests({ count: NODES, link: { delayMs: 1, lossPercent: 1 }, port: PORT, httpPort: HTTP_PORT, options })
  const { nodes, url } = mesh

  const holders = (sid: string) => holdersOf(nodes, sid)

  test('the owner cut off: its session is served with its data by the others, writes are acknowledged, and after healing every holder converges', async () => {
    // Three users, each logged in through a different node (which owns the session).
    const users = [
      { name: 'ada', owner: 1, jar: new CookieJar() },
      { name: 'alan', owner: 2, jar: new CookieJar() },
      { name: 'grace', owner: 3, jar: new CookieJar() },
    ]
    const sids = new Map<string, string>()
    for (const user of users) {
      const login = await mesh.client.browse(user.jar, url(user.owner, `/login?user=${user.name}`))
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
    await mesh.network.cut(ada.owner)
    const failedOver = await mesh.client.browse(ada.jar, url(target, '/whoami'))
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
      const write = await mesh.client.browse(ada.jar, url(target, '/whoami'))
      expect(write.body).toMatchObject({ node: `node${target}`, user: 'ada', count })
    }
    // The other users' sessions still answer on nodes that were not cut.
    expect((await mesh.client.browse(users[1]!.jar, url(2, '/peek'))).body).toEqual({ user: 'alan' })
    expect((await mesh.client.browse(users[2]!.jar, url(3, '/peek'))).body).toEqual({ user: 'grace' })

    // Healed: the cut node catches up. Every holder of Ada's session has count 5, the old id is
    // held nowhere, and the nodes together hold each session exactly COPIES times.
    await mesh.network.heal(ada.owner)
    await settles(
      async () => {
        const holding = await holders(newSid)
        if (holding.length !== COPIES || (await holders(oldSid)).length > 0) return false
        const copies = await Promise.all(holding.map((i) => nodes[i - 1]!.call<{ user?: string; count?: number } | null>('get', newSid)))
        return copies.every((copy) => copy?.user === 'ada' && copy.count === 5)
      },
      20_000,
      () => `Ada's session (${newSid}) did not converge on ${COPIES} holders, the old id gone everywhere`,
      100,
    )
    await settles(
      async () => {
        const stats = await Promise.all(nodes.map((node) => node.call<{ sessions: number }>('stats')))
        return stats.reduce((sum, each) => sum + each.sessions, 0) === users.length * COPIES
      },
      20_000,
      () => `the nodes' stats do not add up to ${users.length} sessions x ${COPIES} copies`,
      100,
    )
    if (COPIES === NODES) expect(await holders(newSid)).toContain(ada.owner)
    // And Ada goes on where she was, on the node the balancer sticks her to.
    expect((await mesh.client.browse(ada.jar, url(target, '/whoami'))).body).toMatchObject({ node: `node${target}`, user: 'ada', count: 6 })
  }, 45_000)
})

/**
 * A race found in `{ backups: 1 }` mode, kept as a regression test (as root): a trim that fired while
 * a node without a copy was fetching a session on a miss let go of the copy it had just fetched,
 * and the request started a fresh, empty session (the user logged out) although the backup still
 * held the session. The fetch waited for every candidate, and one of them (the owner, cut off and
 * not yet declared dead) stayed silent for the whole `fetchTimeout`.
 *
 * Now a copy fetched for a request survives trims for `deadTimeout`, and a fetch returns as soon as
 * one holder has answered with the session. The test puts a trim due on the node (an earlier miss
 * that fetched another session) just as the request's fetch waits for the silent owner.
 */
import { weight } from '../../../lib/replication/placement.js'
import { holdersOf, meshForTests } from '../../helpers/netns-mesh.js'
import { netnsUnavailable } from '../../helpers/netns.js'
import { FAST } from '../../helpers/sessions.js'
import { CookieJar } from '../../helpers/web-node.js'

const NODES = 5
const PORT = 4055
const HTTP_PORT = 8080

const unavailable = netnsUnavailable()
if (unavailable) console.log(`netns-trim-race.test.ts skipped: ${unavailable}`)
const describeNetns = unavailable ? describe.skip : describe

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describeNetns('backups: a trim during a miss fetched from the backup', () => {
  const options = { secret: 'netns test cluster secret', replication: { backups: 1 } }
  const mesh = meshForTests({ count: NODES, link: { delayMs: 1 }, port: PORT, httpPort: HTTP_PORT, options })
  const { nodes, url } = mesh

  test('the owner cut off, a trim pending on a non-holder: the session is still served there', async () => {
    const holders = (sid: string) => holdersOf(nodes, sid)
    // The candidates a node asks on a miss (BackupPlacement.candidates): the top 2 of the others.
    const asks = (node: number, sid: string) =>
      Array.from({ length: NODES }, (_, i) => `node${i + 1}`)
        .filter((other) => other !== `node${node}`)
        .sort((a, b) => weight(b, sid) - weight(a, sid) || (a < b ? -1 : 1))
        .slice(0, 2)
    // A session owned by node 1 and a node without a copy that would ask node 1 for it.
    let jar = new CookieJar()
    let sid = ''
    let target: number | undefined
    for (let attempt = 0; attempt < 20 && target === undefined; attempt++) {
      jar = new CookieJar()
      sid = (await mesh.client.browse(jar, url(1, '/login?user=ada'))).body.sid as string
      const held = await holders(sid)
      target = [2, 3, 4, 5].find((i) => !held.includes(i) && asks(i, sid).includes('node1'))
    }
    if (target === undefined) throw new Error('no session in 20 whose non-holders ask node 1')
    await sleep(FAST.deadTimeout + 200) // no trim pending anywhere

    // A miss on the target that fetches another session (one it holds no copy of) schedules a trim
    // there, deadTimeout later.
    let other = new CookieJar()
    for (let attempt = 0; attempt < 20; attempt++) {
      other = new CookieJar()
      const otherSid = (await mesh.client.browse(other, url(2 + ((target - 1) % 4), '/login?user=bob'))).body.sid as string
      if (!(await holders(otherSid)).includes(target)) break
    }
    expect((await mesh.client.browse(other, url(target, '/peek'))).body).toMatchObject({ user: 'bob' })
    const trimAt = Date.now() + FAST.deadTimeout
    // Node 1 cut off; its connections stay open (silent) for about deadTimeout.
    await sleep(400)
    await mesh.network.cut(1)
    // Ada's request reaches the target while the trim is 250 ms away: its fetch waits for node 1.
    await sleep(trimAt - 250 - Date.now())
    const failedOver = await mesh.client.browse(jar, url(target, '/whoami'))
    expect(failedOver.body).toMatchObject({ user: 'ada', previous: sid })
  }, 45_000)
})

import { Browser } from '../../helpers/demo-nodes.js'
import { keyOf, startDemo, type DemoAddresses } from '../../helpers/demo.js'
import type { WatchedProcess } from '../../helpers/process-lines.js'

/**
 * Where the nodes' own addresses cannot be bound (macOS has only 127.0.0.1 unless aliases are
 * added), the demo puts both nodes on the balancer's address with ports of their own. DEMO_FALLBACK=1
 * makes it act so here; the rest is the real thing end to end.
 */
const AT: DemoAddresses = { host: '127.0.7.30', hosts: ['127.0.7.31', '127.0.7.32'], balancer: 3700, http: 3701, replication: 4701 }
let demo: WatchedProcess

beforeAll(async () => {
  demo = await startDemo(AT, { DEMO_FALLBACK: '1' })
}, 60_000)

afterAll(async () => {
  await demo?.kill('SIGINT')
  await demo?.closed
})

test('it says so in one line, and each node listens on ports of its own on the one address', () => {
  const said = demo.lines.filter((line) => line.includes('cannot be used here'))
  expect(said).toEqual([
    '[demo] 127.0.7.31 and 127.0.7.32 cannot be used here (macOS has only 127.0.0.1 by default): both nodes run on 127.0.7.30, was1 on ports 3701 and 4701, was2 on 3702 and 4702',
  ])
  expect(demo.lines).toContain('[was1] web on http://127.0.7.30:3701, replication on 127.0.7.30:4701')
  expect(demo.lines).toContain('[was2] web on http://127.0.7.30:3702, replication on 127.0.7.30:4702')
})

test('through the balancer: sticky, and the session replicated to the other node survives a kill', async () => {
  const browser = new Browser(`http://${AT.host}:${AT.balancer}`)
  const served = (await browser.post('/count')).node as string
  expect(await browser.post('/count')).toEqual({ node: served, count: 2 })
  const other = served === 'was1' ? 'was2' : 'was1'

  let mark = demo.mark
  demo.send(keyOf(served))
  await demo.waitFor(new RegExp(`\\[demo\\] ${served} stopped \\(SIGKILL\\)`), 10_000, mark)
  expect(await browser.post('/count')).toEqual({ node: other, count: 3 })

  mark = demo.mark
  demo.send(keyOf(served))
  await demo.waitFor(new RegExp(`\\[${served}\\] received [1-9]\\d* sessions? from ${other}`), 20_000, mark)
  await demo.waitFor(new RegExp(`\\[${other}\\] peer ${served} is up`), 20_000, mark)
  expect(await browser.post('/count')).toEqual({ node: other, count: 4 })
}, 60_000)

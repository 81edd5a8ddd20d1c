import { connect } from 'node:net'
import { Browser } from '../../helpers/demo-nodes.js'
import { keyOf, startDemo } from '../../helpers/demo.js'
import type { WatchedProcess } from '../../helpers/process-lines.js'

const PORTS = { balancer: 3300, http: 3301, replication: 4301 }
let demo: WatchedProcess

beforeAll(async () => {
  demo = await startDemo(PORTS)
}, 60_000)

afterAll(async () => {
  await demo?.kill('SIGKILL')
})

test('the demo balancer is sticky; killing the node keeps the session; the restarted node recovers every session', async () => {
  const browser = new Browser(`http://127.0.0.1:${PORTS.balancer}`)
  const first = await browser.post('/count')
  const served = first.node as string
  for (let i = 2; i <= 3; i++) expect(await browser.post('/count')).toEqual({ node: served, count: i })

  const other = served === 'was1' ? 'was2' : 'was1'
  let mark = demo.mark
  demo.send(keyOf(served))
  await demo.waitFor(new RegExp(`\\[demo\\] ${served} stopped \\(SIGKILL\\)`), 10_000, mark)
  expect(await browser.post('/count')).toEqual({ node: other, count: 4 })

  mark = demo.mark
  demo.send(keyOf(served))
  await demo.waitFor(new RegExp(`\\[${served}\\] received [1-9]\\d* sessions from ${other}`), 20_000, mark)
  await demo.waitFor(new RegExp(`\\[${other}\\] peer ${served} is up`), 20_000, mark)
  expect(await browser.post('/count')).toEqual({ node: other, count: 5 })
}, 60_000)

test('the page and its static assets are served through the balancer', async () => {
  const browser = new Browser(`http://127.0.0.1:${PORTS.balancer}`)
  await browser.post('/count')
  const page = await browser.get('/')
  expect(page).toEqual({}) // HTML, not JSON
  const response = await fetch(`http://127.0.0.1:${PORTS.balancer}/public/style.css`)
  expect(response.status).toBe(200)
  expect(await response.text()).toContain('.served')
})

test('if the demo itself is killed, its nodes stop too instead of lingering', async () => {
  const other = await startDemo({ balancer: 3310, http: 3311, replication: 4311 })
  const mark = other.mark
  await other.kill('SIGKILL')
  // The nodes write to the same output, and say why they stop.
  await Promise.all([
    other.waitFor(/\[was1\] launcher gone: shutting down/, 10_000, mark),
    other.waitFor(/\[was2\] launcher gone: shutting down/, 10_000, mark),
  ])
}, 60_000)

test('Ctrl-C stops everything cleanly: the demo exits 0 and its ports are free', async () => {
  demo.child.kill('SIGINT')
  const { code } = await demo.exited
  expect(code).toBe(0)
  expect(demo.lines).toContain('[demo] stopped.')
  for (const [host, port] of [
    ['127.0.0.1', PORTS.balancer],
    ['127.0.0.11', PORTS.http],
    ['127.0.0.12', PORTS.replication],
  ] as const) {
    const refused = await new Promise<boolean>((resolve) => {
      const socket = connect({ host, port })
      socket.once('connect', () => {
        socket.destroy()
        resolve(false)
      })
      socket.once('error', () => resolve(true))
    })
    expect(refused).toBe(true)
  }
}, 30_000)

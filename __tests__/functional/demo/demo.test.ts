import { Browser } from '../../helpers/demo-nodes.js'
import { keyOf, startDemo, type DemoAddresses } from '../../helpers/demo.js'
import type { WatchedProcess } from '../../helpers/process-lines.js'

/** The demo as a user drives it: through its balancer, with its keys. Stopping it: demo-lifecycle.test.ts. */
const AT: DemoAddresses = { host: '127.0.7.1', hosts: ['127.0.7.2', '127.0.7.3'], balancer: 3300, http: 3301, replication: 4301 }
const FRONT = `http://${AT.host}:${AT.balancer}`
let demo: WatchedProcess

beforeAll(async () => {
  demo = await startDemo(AT)
}, 60_000)

afterAll(async () => {
  await demo?.kill('SIGINT')
  await demo?.closed
})

test('the nodes run on their own addresses where these can be bound (no fallback)', () => {
  expect(demo.lines.filter((line) => line.includes('cannot be used here'))).toEqual([])
  expect(demo.lines).toContain(`[was1] web on http://${AT.hosts[0]}:${AT.http}, replication on ${AT.hosts[0]}:${AT.replication}`)
  expect(demo.lines).toContain(`[was2] web on http://${AT.hosts[1]}:${AT.http}, replication on ${AT.hosts[1]}:${AT.replication}`)
})

test('the demo balancer is sticky; killing the node keeps the session; the restarted node recovers every session', async () => {
  const browser = new Browser(FRONT)
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
  const received = await demo.waitFor(new RegExp(`\\[${served}\\] received \\d+ sessions? from ${other}`), 20_000, mark)
  // Its transfer's progress came first (not a terminal here: a line per tenth, the last at 100%).
  const progress = demo.lines.slice(mark).filter((line) => line.startsWith(`[${served}] receiving from ${other} [`))
  expect(progress.at(-1)).toMatch(/\] 100% (\d+)\/\1 sessions?, /)
  expect(demo.lines.indexOf(progress.at(-1)!, mark)).toBeLessThan(demo.lines.indexOf(received, mark))
  // "1 session", "2 sessions": never "1 sessions".
  const [, count, noun] = /received (\d+) (sessions?)/.exec(received)!
  expect(Number(count)).toBeGreaterThan(0)
  expect(noun).toBe(count === '1' ? 'session' : 'sessions')
  await demo.waitFor(new RegExp(`\\[${other}\\] peer ${served} is up`), 20_000, mark)
  expect(await browser.post('/count')).toEqual({ node: other, count: 5 })
}, 60_000)

test('the page says no session is stored until the first write, then shows the stored id', async () => {
  const browser = new Browser(FRONT)
  const before = await fetch(`${FRONT}/`)
  const html = await before.text()
  expect(html).toContain('id="no-session"')
  expect(html).not.toContain('id="session-id"')
  // Nothing stored, so nothing to remember: no session cookie either.
  expect(before.headers.get('set-cookie') ?? '').not.toContain('connect.sid')

  await browser.post('/count')
  const sid = decodeURIComponent(browser.cookies.get('connect.sid')!)
    .replace(/^s:/, '')
    .replace(/\.[^.]+$/, '')
  const state = await browser.get('/api/state')
  expect(state).toMatchObject({ sessionId: sid, previousSessionId: null, count: 1 })
})

test('the pages, their static assets and the favicon are served through the balancer', async () => {
  const browser = new Browser(FRONT)
  await browser.post('/count')
  expect(await browser.get('/')).toEqual({}) // HTML, not JSON
  // "Your sessions" (sessions-browser.test.ts logs in): without a login, the login form.
  const sessions = await fetch(`${FRONT}/sessions`)
  expect(sessions.status).toBe(200)
  expect(await sessions.text()).toMatch(/id="not-logged-in"[^]*id="login-form"/)
  const style = await fetch(`${FRONT}/public/style.css`)
  expect(style.status).toBe(200)
  expect(await style.text()).toContain('.served')
  const icon = await fetch(`${FRONT}/favicon.ico`)
  expect(icon.status).toBe(200)
  expect(icon.headers.get('content-type')).toMatch(/^image\//)
  // An ICO file: reserved 0, type 1 (icon).
  expect([...new Uint8Array(await icon.arrayBuffer()).subarray(0, 4)]).toEqual([0, 0, 1, 0])
})

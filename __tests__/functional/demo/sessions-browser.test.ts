import path from 'node:path'
import type { BrowserContext, Page } from 'playwright-core'
import type { DemoAddresses } from '../../helpers/demo.js'
import { demoInChromium, TEST_OUTPUT } from '../../helpers/demo-browser.js'
import { settles } from '../../helpers/settle.js'

/**
 * The demo's "your sessions" page in a real browser (Chromium, two contexts: two devices of one
 * user) through the demo's balancer: both sessions listed on each, each marking its own; "log out
 * everywhere" on one ends both, on both nodes.
 */
const AT: DemoAddresses = { host: '127.0.19.10', hosts: ['127.0.19.11', '127.0.19.12'], balancer: 3190, http: 3191, replication: 4191 }
const FRONT = `http://${AT.host}:${AT.balancer}/`
const NAME = 'ada lovelace'
const running = demoInChromium(AT)

interface Device {
  readonly context: BrowserContext
  readonly page: Page
  /** Responses of 400 and above: none is expected. */
  readonly failed: string[]
}

async function device(): Promise<Device> {
  const context = await running.browser.newContext({ viewport: { width: 1000, height: 900 } })
  const page = await context.newPage()
  const failed: string[] = []
  page.on('response', (response) => {
    if (response.status() >= 400) failed.push(`${response.status()} ${response.url()}`)
  })
  return { context, page, failed }
}

/**
 * Logs in through the balancer's front page; resolves on the sessions page, with the session id and
 * the raw cookie. With `node`, the browser comes with a route cookie naming it, as one the balancer
 * sent there before would: the balancer's round robin would otherwise put both devices on one node.
 */
async function logIn({ context, page }: Device, node?: string): Promise<{ sid: string; cookie: string; node: string }> {
  if (node) await context.addCookies([{ name: 'ROUTEID', value: node, url: FRONT }])
  await page.goto(FRONT)
  await page.fill('#login-name', NAME)
  await page.click('#login')
  await page.waitForURL(`${FRONT}sessions`)
  expect(await page.textContent('#user')).toBe(NAME)
  const cookie = (await context.cookies(FRONT)).find((each) => each.name === 'connect.sid')!
  expect(cookie.sameSite).toBe('Lax')
  const sid = decodeURIComponent(cookie.value)
    .replace(/^s:/, '')
    .replace(/\.[^.]+$/, '')
  return { sid, cookie: `connect.sid=${cookie.value}`, node: (await page.textContent('#node'))! }
}

/** How the page shows a session id: the last 6 characters of its random part. */
const masked = (sid: string) => `…${sid.slice(0, sid.lastIndexOf('.')).slice(-6)}`

/** Reloads the sessions page until it lists `count` sessions (the other node's may still be on its way). */
async function untilListed(page: Page, count: number): Promise<void> {
  await settles(
    async () => {
      await page.reload()
      return (await page.locator('tr.session').count()) === count
    },
    10_000,
    () => `expected ${count} sessions listed on ${page.url()}`,
    100,
  )
}

/**
 * What each node says of a cookie, asked directly (not through the balancer). Only for a cookie
 * whose session should be gone: a node other than the one a live session routes to takes it over
 * (a new id), so this also makes sure neither node has any copy of it left.
 */
async function stateOnEachNode(cookie: string): Promise<{ node: unknown; sessionId: unknown; user: unknown }[]> {
  return Promise.all(
    AT.hosts.map(async (host) => {
      const response = await fetch(`http://${host}:${AT.http}/api/state`, { headers: { cookie } })
      const { node, sessionId, user } = (await response.json()) as Record<string, unknown>
      return { node, sessionId, user }
    }),
  )
}

/** What the node a session routes to says of it: asking only there leaves a live session as it is. */
async function userOnOwner(sid: string, cookie: string): Promise<unknown> {
  const host = AT.hosts[sid.endsWith('.was1') ? 0 : 1]
  const response = await fetch(`http://${host}:${AT.http}/api/state`, { headers: { cookie } })
  const { sessionId, user } = (await response.json()) as Record<string, unknown>
  expect(sessionId).toBe(sid)
  return user
}

test('two devices of one name: each lists both sessions and marks its own; log out everywhere ends both on both nodes', async () => {
  const a = await device()
  const b = await device()
  const first = await logIn(a)
  const second = await logIn(b, first.node === 'was1' ? 'was2' : 'was1')
  // One device on each node: each lists a session that the other node created.
  expect(second.node).not.toBe(first.node)
  expect(first.sid).not.toBe(second.sid)

  // Both sessions on each device, in the order they were created, each device marking its own.
  for (const [{ page }, own, other] of [
    [a, first, second],
    [b, second, first],
  ] as const) {
    await untilListed(page, 2)
    expect(await page.textContent('#session-count')).toBe('2 sessions')
    expect(await page.locator('tr.session .sid').allTextContents()).toEqual([masked(first.sid), masked(second.sid)])
    expect(await page.locator('tr.session.current .sid').allTextContents()).toEqual([masked(own.sid)])
    expect(await page.locator('tr.session.current .this-device').textContent()).toBe('this device')
    // Who served each: the node the id routes to, as the page says.
    expect(await page.locator('tr.session .served-by').allTextContents()).toEqual([first.node, second.node])
    // Another device's id is its credential: never on the page in full (nor its random part).
    const html = await page.content()
    expect(html).not.toContain(other.sid.slice(0, other.sid.lastIndexOf('.')))
  }
  await b.page.screenshot({ path: path.join(TEST_OUTPUT, 'demo-your-sessions.png'), fullPage: true })

  await b.page.click('#logout-everywhere')
  await b.page.waitForSelector('#logged-out >> text="Logged out everywhere: 2 sessions ended, on every node."')
  expect(await b.page.isVisible('#login-form')).toBe(true)

  // A is logged out too: on reload (its node may hear of the destroy a moment later), and its
  // cookie, as its old session's, finds nothing on either node.
  await settles(
    async () => {
      await a.page.reload()
      return a.page.isVisible('#not-logged-in')
    },
    10_000,
    () => `device A still sees ${a.page.url()} logged in`,
    100,
  )
  expect(await a.page.isVisible('#sessions')).toBe(false)
  for (const { cookie } of [first, second]) {
    let seen: Awaited<ReturnType<typeof stateOnEachNode>> = []
    await settles(
      async () => {
        seen = await stateOnEachNode(cookie)
        return seen.every(({ sessionId, user }) => sessionId === null && user === null)
      },
      10_000,
      () => JSON.stringify(seen),
      100,
    )
    expect(seen.map(({ node }) => node)).toEqual(['was1', 'was2'])
  }
  expect([...a.failed, ...b.failed]).toEqual([])
  await a.context.close()
  await b.context.close()
}, 60_000)

test('"log out other devices" keeps this one; a cross-site form post is refused', async () => {
  const a = await device()
  const b = await device()
  const first = await logIn(a)
  const second = await logIn(b)
  await untilListed(b.page, 2)
  await b.page.click('#logout-others')
  await b.page.waitForURL(`${FRONT}sessions`)
  await untilListed(b.page, 1)
  expect(await b.page.locator('tr.session.current .sid').allTextContents()).toEqual([masked(second.sid)])
  await settles(
    async () => (await stateOnEachNode(first.cookie)).every(({ user }) => user === null),
    10_000,
    () => 'device A still logged in on a node',
    100,
  )
  expect(await userOnOwner(second.sid, second.cookie)).toBe(NAME)

  // A form on another site posting here, with B's cookie (as if SameSite did not hold it back).
  const response = await fetch(`${FRONT}sessions/logout-everywhere`, {
    method: 'POST',
    headers: { origin: 'http://elsewhere.example', cookie: second.cookie },
    redirect: 'manual',
  })
  expect(response.status).toBe(403)
  expect(await userOnOwner(second.sid, second.cookie)).toBe(NAME)
  expect([...a.failed, ...b.failed]).toEqual([])
  await a.context.close()
  await b.context.close()
}, 60_000)

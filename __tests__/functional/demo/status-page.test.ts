import { copyFileSync } from 'node:fs'
import path from 'node:path'
import type { Page } from 'playwright-core'
import { ROOT } from '../../helpers/child.js'
import type { DemoAddresses } from '../../helpers/demo.js'
import { demoInChromium, TEST_OUTPUT } from '../../helpers/demo-browser.js'

/**
 * The status page in a real browser (Debian's Chromium, driven by playwright-core) through the
 * demo's balancer: it draws the cluster, refreshes itself, and shows a killed node go dead. The
 * screenshot goes to test-output/status-page.png; with UPDATE_SCREENSHOTS=1 also to
 * docs/status-page.png, the one the README shows.
 */
const AT: DemoAddresses = { host: '127.0.17.50', hosts: ['127.0.17.51', '127.0.17.52'], balancer: 3490, http: 3491, replication: 4491 }
const FRONT = `http://${AT.host}:${AT.balancer}/`
const running = demoInChromium(AT)
let page: Page

beforeAll(async () => {
  page = await running.browser.newPage({ viewport: { width: 960, height: 540 } })
})

test('the page shows the cluster and, with no reload, a killed node going dead', async () => {
  const failed: string[] = []
  const elsewhere: string[] = []
  const violations: string[] = []
  page.on('response', (response) => {
    if (response.status() >= 400) failed.push(`${response.status()} ${response.url()}`)
  })
  page.on('request', (request) => {
    if (!request.url().startsWith(FRONT)) elsewhere.push(request.url())
  })
  // A Content-Security-Policy refusal (an inline script or style the policy does not allow) is logged.
  page.on('console', (message) => {
    if (/Content.Security.Policy/i.test(message.text())) violations.push(message.text())
  })
  await page.goto(`${FRONT}cluster`)
  await page.waitForSelector('#node-id >> text=/^was[12]$/')
  // The balancer takes turns without a route cookie: within a few refreshes was1 answers, and its
  // view shows was2 alive, with the state transfer it received from it at start.
  await page.waitForSelector('tr[data-peer="was2"] td.state-alive', { timeout: 15_000 })
  expect(await page.textContent('#node-id')).toBe('was1')
  expect(await page.textContent('tr[data-peer="was2"] td.address')).toBe(`${AT.hosts[1]}:${AT.replication}`)
  expect(await page.textContent('#transfer-peer')).toBe('was2')
  expect(await page.textContent('#sessions')).toBe('0')
  // Five clients through the balancer, five sessions: the page counts them, on either node.
  for (let i = 0; i < 5; i++) {
    const response = await fetch(`${FRONT}count`, { method: 'POST', headers: { accept: 'application/json' } })
    expect(response.status).toBe(200)
  }
  await page.waitForSelector('#sessions >> text="5"', { timeout: 10_000 })

  const mark = running.demo.mark
  running.demo.send('2')
  await running.demo.waitFor(/\[demo\] was2 stopped/, 10_000, mark)
  // No reload: the page's own refresh, now always answered by was1, shows was2 go down.
  await page.waitForSelector('tr[data-peer="was2"] td.state-dead', { timeout: 20_000 })
  expect(await page.textContent('#node-id')).toBe('was1')
  expect(await page.textContent('#problem')).toBe('')
  await page.screenshot({ path: path.join(TEST_OUTPUT, 'status-page.png'), fullPage: true })
  if (process.env.UPDATE_SCREENSHOTS === '1')
    copyFileSync(path.join(TEST_OUTPUT, 'status-page.png'), path.join(ROOT, 'docs', 'status-page.png'))

  // The requests the balancer failed over are retried there: the page never saw an error.
  expect(failed).toEqual([])
  expect(elsewhere).toEqual([])
  expect(violations).toEqual([])
}, 60_000)

import path from 'node:path'
import type { Page } from 'playwright-core'
import { keyOf, type DemoAddresses } from '../../helpers/demo.js'
import { demoInChromium, TEST_OUTPUT } from '../../helpers/demo-browser.js'

/**
 * A real browser (Debian's Chromium, driven by playwright-core) through the demo's balancer: the
 * counter must carry on after the node that served it is killed.
 */
const AT: DemoAddresses = { host: '127.0.7.10', hosts: ['127.0.7.11', '127.0.7.12'], balancer: 3400, http: 3401, replication: 4401 }
const FRONT = `http://${AT.host}:${AT.balancer}/`
const running = demoInChromium(AT)
let page: Page

beforeAll(async () => {
  page = await running.browser.newPage({ viewport: { width: 900, height: 900 } })
})

test('the counter continues on the other node after the node that served it is killed', async () => {
  // Every request the page makes, assets and icon included, must succeed.
  const failed: string[] = []
  page.on('response', (response) => {
    if (response.status() >= 400) failed.push(`${response.status()} ${response.url()}`)
  })
  await page.goto(FRONT)
  // Nothing stored yet: the page must not show an id that will never be saved.
  expect(await page.isVisible('#no-session')).toBe(true)
  expect(await page.$('#session-id')).toBeNull()
  for (let i = 1; i <= 3; i++) {
    await page.click('#increment')
    await page.waitForSelector(`#count >> text="${i}"`)
  }
  await page.fill('#note-input', 'written before the failover')
  await page.click('button:has-text("Save")')
  await page.waitForSelector('#note >> text="written before the failover"')
  const served = (await page.textContent('#node'))!
  expect(['was1', 'was2']).toContain(served)
  expect(await page.textContent('#route')).toBe(served)
  const before = (await page.textContent('#session-id'))!
  expect(before).toMatch(new RegExp(`\\.${served}$`))
  expect(await page.$('#previous-session-id')).toBeNull()
  await page.screenshot({ path: path.join(TEST_OUTPUT, 'demo-before-failover.png'), fullPage: true })

  const mark = running.demo.mark
  running.demo.send(keyOf(served))
  await running.demo.waitFor(new RegExp(`\\[demo\\] ${served} stopped`), 10_000, mark)
  await page.reload()
  const survivor = served === 'was1' ? 'was2' : 'was1'
  expect(await page.textContent('#node')).toBe(survivor)
  expect(await page.textContent('#count')).toBe('3')
  expect(await page.textContent('#note')).toBe('written before the failover')
  expect(await page.textContent('#rebound')).toContain(`took this session over from ${served}`)
  // The id it had, and the one it has now, routed to the survivor.
  expect(await page.textContent('#previous-session-id')).toBe(before)
  expect(await page.textContent('#session-id')).toMatch(new RegExp(`\\.${survivor}$`))
  await page.screenshot({ path: path.join(TEST_OUTPUT, 'demo-after-failover.png'), fullPage: true })
  await page.click('#increment')
  await page.waitForSelector('#count >> text="4"')
  expect(await page.textContent('#node')).toBe(survivor)
  expect(await page.textContent('#route')).toBe(survivor)
  // Still told after the next request (a POST and its redirect): the takeover is not forgotten.
  expect(await page.textContent('#previous-session-id')).toBe(before)

  const icon = await page.request.get(`${FRONT}favicon.ico`)
  expect(icon.status()).toBe(200)
  expect(icon.headers()['content-type']).toMatch(/^image\//)
  expect(failed).toEqual([])
}, 60_000)

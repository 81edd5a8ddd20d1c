import { mkdirSync } from 'node:fs'
import path from 'node:path'
import type { Browser } from 'playwright-core'
import { ROOT } from './child.js'
import { launchChromium } from './chromium.js'
import { startDemo, type DemoAddresses } from './demo.js'
import type { WatchedProcess } from './process-lines.js'

/** Where the browser tests write their screenshots (ignored by git). */
export const TEST_OUTPUT = path.join(ROOT, 'test-output')

/** The demo and the browser of a test file, there once its `beforeAll` ran. */
export interface DemoInBrowser {
  readonly demo: WatchedProcess
  readonly browser: Browser
}

/**
 * For a test file: the demo at `at` and a headless Chromium, started before its tests and stopped
 * after them. Call it at the top of the file (it registers `beforeAll` and `afterAll`).
 */
export function demoInChromium(at: DemoAddresses): DemoInBrowser {
  let demo: WatchedProcess | undefined
  let browser: Browser | undefined
  beforeAll(async () => {
    mkdirSync(TEST_OUTPUT, { recursive: true })
    demo = await startDemo(at)
    browser = await launchChromium()
  }, 60_000)
  afterAll(async () => {
    await browser?.close()
    await demo?.kill('SIGINT')
    await demo?.closed
  })
  return {
    get demo() {
      return demo!
    },
    get browser() {
      return browser!
    },
  }
}

import { accessSync, constants, statSync } from 'node:fs'
import path from 'node:path'
import { chromium, type Browser } from 'playwright-core'

/** Chromium's flags for the tests: no sandbox (they run as root), and no background traffic on a closed network. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
] as const

/** A headless Chromium with the tests' flags (close it after). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath(), args: [...CHROMIUM_ARGS] })
}

/**
 * The browser the tests drive, found as scripts/prepare.mjs finds it (it installed or named it
 * before Jest started): CHROMIUM_PATH, else /usr/bin/chromium, else `chromium` on the PATH.
 */
export function chromiumPath(): string {
  if (process.env.CHROMIUM_PATH) return process.env.CHROMIUM_PATH
  const candidates = [
    '/usr/bin/chromium',
    ...(process.env.PATH ?? '')
      .split(path.delimiter)
      .filter(Boolean)
      .map((dir) => path.join(dir, 'chromium')),
  ]
  const found = candidates.find(isExecutable)
  if (!found) throw new Error('no Chromium: set CHROMIUM_PATH, or run npm test (scripts/prepare.mjs says what to install)')
  return found
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK)
    return statSync(file).isFile()
  } catch {
    return false
  }
}

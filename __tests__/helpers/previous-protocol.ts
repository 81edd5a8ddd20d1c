import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { FIXTURES } from './child.js'

/** The previous protocol version's library, compiled and frozen by scripts/freeze-previous-protocol.mjs. */
export const PREVIOUS_PROTOCOL_TARBALL = path.join(FIXTURES, 'previous-protocol', 'connect-peer-protocol2.tgz')

/** An extracted copy of the frozen previous release: pass `dist` as a NodeSpec's `dist`; `remove()` when done. */
export interface PreviousRelease {
  readonly dist: string
  /** The protocol version it speaks, and the commit it was built from (its package.json). */
  readonly protocol: number
  readonly revision: string
  remove(): void
}

/** Extracts the frozen previous release into a directory of its own under the system's temp directory. */
export function extractPreviousRelease(): PreviousRelease {
  const where = mkdtempSync(path.join(tmpdir(), 'connect-peer-previous-'))
  execFileSync('tar', ['-xzf', PREVIOUS_PROTOCOL_TARBALL, '-C', where])
  const { protocol, revision } = JSON.parse(readFileSync(path.join(where, 'package.json'), 'utf8')) as {
    protocol: number
    revision: string
  }
  const dist = path.join(where, 'dist')
  if (!existsSync(path.join(dist, 'index.js'))) throw new Error(`${PREVIOUS_PROTOCOL_TARBALL} holds no dist/index.js`)
  return { dist, protocol, revision, remove: () => rmSync(where, { recursive: true, force: true }) }
}

import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import fc from 'fast-check'
import { SnapshotError } from '../../../lib/base/errors.js'
import { encodeSession } from '../../../lib/codec/session-codec.js'
import { readSnapshot, writeSnapshot } from '../../../lib/persistence/snapshot-file.js'
import type { Snapshot } from '../../../lib/protocol/messages.js'
import { deriveSecretKey, type SecretKey } from '../../../lib/security/keys.js'

/** The snapshot file on its own: what is written comes back, and nothing spoilt is ever loaded. */
const session = { maxSessionBytes: 1 << 16, maxDepth: 16, maxContainerLength: 1 << 16 }
const limits = { session, maxBatch: 10_000, maxChunkBytes: 1 << 20 }
const owner = { cluster: 'shop', nodeId: 'was1' }
const LATER = Date.now() + 3_600_000

let folder: string
let key: SecretKey
beforeAll(async () => {
  folder = await mkdtemp(path.join(tmpdir(), 'connect-peer-snapshot-file-'))
  key = await deriveSecretKey('unit test secret, sixteen+')
})
afterAll(() => rm(folder, { recursive: true, force: true }))

function entries(count: number): Snapshot[] {
  return Array.from({ length: count }, (_, i) => ({
    sid: `s${i}`,
    version: { counter: i + 1, origin: 'was1' },
    expiresAt: LATER,
    cookieExpires: i % 2 ? LATER : null,
    blob: i % 10 === 3 ? null : encodeSession({ i, name: `user-${i}` }, session).blob,
    movedTo: i % 10 === 3 ? `t${i}` : null,
    rebinds: i % 3,
  }))
}

async function write(file: string, written: Snapshot[], sealing: SecretKey | undefined): Promise<void> {
  const handle = await open(file, 'w')
  const chunks = [written.slice(0, 40), written.slice(40, 90), written.slice(90)]
  await writeSnapshot(handle, { ...owner, writtenAt: 1, epoch: { counter: 2, origin: 'was2' } }, sealing, chunks)
  await handle.close()
}

describe.each([
  ['sealed with the cluster secret', true],
  ['checked only (no secret)', false],
])('%s', (_, sealed) => {
  const file = () => path.join(folder, sealed ? 'sealed.snapshot' : 'checked.snapshot')
  const keys = () => (sealed ? [key] : [])

  beforeAll(() => write(file(), entries(120), sealed ? key : undefined))

  test('what was written is read back, epoch and all', async () => {
    const { header, entries: read } = await readSnapshot(file(), owner, keys(), limits)
    expect(header).toMatchObject({ ...owner, epoch: { counter: 2, origin: 'was2' } })
    expect(read).toEqual(entries(120))
  })

  test('a flipped byte anywhere is refused, never loaded as something else', async () => {
    const original = await readFile(file())
    const spoilt = path.join(folder, 'spoilt.snapshot')
    await fc.assert(
      fc.asyncProperty(fc.nat(original.length - 1), fc.integer({ min: 1, max: 255 }), async (at, flip) => {
        const bytes = Buffer.from(original)
        bytes[at] = (bytes[at] ?? 0) ^ flip
        await writeFile(spoilt, bytes)
        await expect(readSnapshot(spoilt, owner, keys(), limits)).rejects.toBeInstanceOf(SnapshotError)
      }),
      { numRuns: 200 },
    )
  })

  test('a file cut short anywhere is refused', async () => {
    const original = await readFile(file())
    const spoilt = path.join(folder, 'short.snapshot')
    for (let length = 0; length < original.length; length += 97) {
      await writeFile(spoilt, original.subarray(0, length))
      const error = await readSnapshot(spoilt, owner, keys(), limits).catch((caught: unknown) => caught)
      expect(error).toBeInstanceOf(SnapshotError)
      expect(['truncated', 'corrupt', 'format']).toContain((error as SnapshotError).reason)
    }
  })
})

test('a sealed file shows no session data in clear', async () => {
  const file = path.join(folder, 'clear.snapshot')
  await write(file, entries(20), key)
  const bytes = await readFile(file)
  expect(bytes.includes('user-7')).toBe(false)
})

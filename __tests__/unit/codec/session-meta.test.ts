import { decodeSession, encodeSession } from '../../../lib/codec/session-codec.js'
import { META_KEY, readMeta, withMeta } from '../../../lib/codec/session-meta.js'
import * as msgpack from '../../../lib/codec/msgpack.js'
import { layoutOf } from '../../../lib/codec/session-layout.js'

const limits = { maxSessionBytes: 1024 * 1024, maxDepth: 32, maxContainerLength: 1024 * 1024 }
const meta = { createdAt: 1_700_000_000_000, principal: 'ann' }

/** Bytes as a peer could send them: a session map whose facts field holds `value`. */
function withValue(value: unknown): Buffer {
  return Buffer.from(msgpack.packr.pack({ n: 1, [META_KEY]: value }))
}

test('the facts are stored first, read back, and never shown to the application', () => {
  const { blob } = encodeSession({ n: 1, user: 'ann' }, limits, null, meta)
  expect(layoutOf(blob)[0]!.key).toBe(META_KEY)
  expect(readMeta(blob)).toEqual(meta)
  expect(decodeSession(blob, null)).toEqual({ n: 1, user: 'ann' })
})

test('facts found anywhere in the map are read (a peer may have appended them)', () => {
  expect(readMeta(withValue([5, null]))).toEqual({ createdAt: 5, principal: null })
})

test.each([
  ['not an array', { createdAt: 1 }],
  ['three items', [1, 'a', 2]],
  ['a negative time', [-1, null]],
  ['a fractional time', [1.5, null]],
  ['a numeric principal', [1, 42]],
  ['a principal over 256 characters', [1, 'x'.repeat(257)]],
])('malformed facts from a peer are ignored: %s', (_, value) => {
  expect(readMeta(withValue(value))).toBeUndefined()
})

test('facts too large to be well formed are not decoded at all', () => {
  const decode = jest.spyOn(msgpack, 'decode')
  try {
    expect(readMeta(withValue(new Array(100_000).fill(null)))).toBeUndefined()
    expect(readMeta(withValue([1, 'ann']))).toEqual({ createdAt: 1, principal: 'ann' })
    // Only the well-formed one was decoded.
    expect(decode).toHaveBeenCalledTimes(1)
  } finally {
    decode.mockRestore()
  }
})

test('withMeta replaces the facts and recomputes the delta against the stored bytes', () => {
  const stored = encodeSession({ n: 1 }, limits, null, meta).blob
  const changed = encodeSession({ n: 2 }, limits, stored, meta)
  const replaced = withMeta(changed, stored, { createdAt: meta.createdAt, principal: 'bob' }, limits)
  expect(readMeta(replaced.blob)).toEqual({ createdAt: meta.createdAt, principal: 'bob' })
  expect(replaced.delta.set.map(([key]) => key).sort()).toEqual([META_KEY, 'n'].sort())
})

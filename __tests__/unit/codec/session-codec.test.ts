import { applyFields } from '../../../lib/codec/field-delta.js'
import { decodeSession, encodeSession } from '../../../lib/codec/session-codec.js'
import { layoutOf } from '../../../lib/codec/session-layout.js'

const limits = { maxSessionBytes: 65_536, maxDepth: 16, maxContainerLength: 65_536 }

test('cookie.expires is held beside the bytes, so the bytes do not change when only the expiry does', () => {
  const first = encodeSession({ cookie: { path: '/', expires: new Date(1000) }, n: 1 }, limits)
  const second = encodeSession({ cookie: { path: '/', expires: new Date(2000) }, n: 1 }, limits)
  expect(first.blob.equals(second.blob)).toBe(true)
  expect([first.cookieExpires, second.cookieExpires]).toEqual([1000, 2000])
  expect(decodeSession(second.blob, second.cookieExpires).cookie.expires).toEqual(new Date(2000))
})

test('a cookie without expires stays without expires', () => {
  const encoded = encodeSession({ cookie: { path: '/' } }, limits)
  expect(encoded.cookieExpires).toBeNull()
  expect(decodeSession(encoded.blob, null).cookie).toEqual({ path: '/' })
})

test('layoutOf and applyFields rebuild the same bytes, whatever the number of fields', () => {
  for (const count of [0, 1, 15, 16, 65_535, 65_536, 70_000]) {
    const session = Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${i}`, i % 3 === 0 ? { i } : i]))
    const { blob } = encodeSession(session, { ...limits, maxSessionBytes: 4_000_000, maxContainerLength: 100_000 })
    const layout = layoutOf(blob)
    expect(layout.length).toBe(count)
    const set = layout.map((field) => [field.key, blob.subarray(field.valueStart, field.valueEnd)] as const)
    expect(applyFields(null, { set, remove: [] }).equals(blob)).toBe(true)
  }
})

test("express-session's millisecond jitter in originalMaxAge is not a change; real values are kept", () => {
  const exact = encodeSession({ cookie: { originalMaxAge: 600_000, path: '/' } }, limits)
  const jittered = encodeSession({ cookie: { originalMaxAge: 599_999, path: '/' } }, limits)
  expect(jittered.blob.equals(exact.blob)).toBe(true)
  expect(decodeSession(jittered.blob, null).cookie.originalMaxAge).toBe(600_000)
  expect(decodeSession(encodeSession({ cookie: { originalMaxAge: 1500 } }, limits).blob, null).cookie.originalMaxAge).toBe(1500)
  expect(decodeSession(encodeSession({ cookie: { originalMaxAge: null } }, limits).blob, null).cookie.originalMaxAge).toBeNull()
})

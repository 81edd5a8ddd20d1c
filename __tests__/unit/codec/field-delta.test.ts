import { encodeSession } from '../../../lib/codec/session-codec.js'
import { applyFields, diffFields } from '../../../lib/codec/field-delta.js'
import { decode } from '../../../lib/codec/msgpack.js'

const limits = { maxSessionBytes: 1 << 20, maxDepth: 16, maxContainerLength: 1 << 20 }
const blob = (session: Record<string, unknown>) => encodeSession(session, limits).blob

test('a create sets every field', () => {
  const delta = diffFields(null, blob({ a: 1, b: { c: 2 } }))
  expect(delta.set.map(([key]) => key)).toEqual(['a', 'b'])
  expect(delta.remove).toEqual([])
})

test('only changed fields travel; removed fields are named', () => {
  const before = blob({ user: { name: 'ada' }, cart: [1, 2], big: 'x'.repeat(4000), gone: true })
  const after = blob({ user: { name: 'ada' }, cart: [1, 2, 3], big: 'x'.repeat(4000) })
  const delta = diffFields(before, after)
  expect(delta.set.map(([key]) => key)).toEqual(['cart'])
  expect(delta.remove).toEqual(['gone'])
  const bytes = delta.set.reduce((sum, [key, value]) => sum + key.length + value.length, 0)
  expect(bytes / after.length).toBeLessThan(0.05)
})

test('an in-place change deep inside a field is a change of that field', () => {
  const session = { user: { profile: { email: 'a@example.com' } }, other: 1 }
  const before = blob(session)
  session.user.profile.email = 'b@example.com'
  const delta = diffFields(before, blob(session))
  expect(delta.set.map(([key]) => key)).toEqual(['user'])
})

test('identical bytes make an empty delta', () => {
  const same = blob({ a: 1 })
  expect(diffFields(same, Buffer.from(same))).toEqual({ set: [], remove: [] })
})

test('applying the delta to the old bytes gives the new session', () => {
  const before = blob({ a: 1, b: 2, c: { d: [1] } })
  const after = blob({ a: 1, c: { d: [1, 2] }, e: 'new' })
  const rebuilt = applyFields(before, diffFields(before, after))
  expect(decode(rebuilt)).toEqual(decode(after))
  expect(decode(applyFields(null, diffFields(null, after)))).toEqual(decode(after))
})

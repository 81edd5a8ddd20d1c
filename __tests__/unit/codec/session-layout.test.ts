import { applyFields, diffFields, fullDelta } from '../../../lib/codec/field-delta.js'
import { decode, packr } from '../../../lib/codec/msgpack.js'
import { readMapFields } from '../../../lib/codec/msgpack-scan.js'
import { encodeSession } from '../../../lib/codec/session-codec.js'
import { encodeKey, findField, layoutOf, skipTrusted } from '../../../lib/codec/session-layout.js'
import { NotReplicableError } from '../../../lib/base/errors.js'

const limits = { maxSessionBytes: 8 << 20, maxDepth: 16, maxContainerLength: 1 << 20 }
const blob = (session: Record<string, unknown>) => encodeSession(session, limits).blob
const value = (v: unknown) => Buffer.from(packr.pack(v))

/** The reference: what a Map of decoded fields gives (the old split/join semantics). */
function reference(current: Buffer | null, set: ReadonlyArray<readonly [string, unknown]>, remove: readonly string[]) {
  const fields = new Map<string, unknown>(current ? Object.entries(decode(current) as object) : [])
  for (const key of remove) fields.delete(key)
  for (const [key, v] of set) fields.set(key, v)
  return fields
}

describe('layoutOf / findField / skipTrusted', () => {
  test('agree with the untrusted scanner on every field', () => {
    const bytes = blob({
      a: 1,
      ünïcödé: 'x',
      ['k'.repeat(40)]: { deep: [1, [2, [3, { four: new Date(5) }]]] },
      bin: Buffer.alloc(300, 1),
      long: 'y'.repeat(70_000),
      neg: -123456789,
      f: 1.5,
      nil: null,
    })
    const layout = layoutOf(bytes)
    const scanned = readMapFields(bytes, limits)
    expect(layout.map(({ key, valueStart, valueEnd }) => ({ key, valueStart, valueEnd }))).toEqual(
      scanned.map(({ key, valueStart, valueEnd }) => ({ key, valueStart, valueEnd })),
    )
    for (const field of layout) {
      expect(findField(bytes, field.key)).toBe(field.valueStart)
      expect(skipTrusted(bytes, field.valueStart)).toBe(field.valueEnd)
      expect(bytes.subarray(field.keyStart, field.valueStart).equals(encodeKey(field.key))).toBe(true)
    }
    expect(findField(bytes, 'missing')).toBe(-1)
    expect(findField(bytes, 'ünïcödX')).toBe(-1)
  })

  test('map header sizes at the 15/16 and 65535/65536 boundaries', () => {
    for (const count of [0, 15, 16, 65_535, 65_536]) {
      const bytes = blob(Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${i}`, i])))
      expect(layoutOf(bytes).length).toBe(count)
      if (count > 0) expect(findField(bytes, `k${count - 1}`)).toBeGreaterThan(0)
    }
  })

  test('skipTrusted is iterative: nesting far deeper than the stack allows', () => {
    const depth = 200_000
    const bytes = Buffer.alloc(depth + 1, 0x91) // [[[[...]]]]
    bytes[depth] = 0x01
    expect(skipTrusted(bytes, 0)).toBe(depth + 1)
  })
})

describe('diffFields', () => {
  test('a create sets every field; no change is an empty delta', () => {
    const b = blob({ a: 1, b: { c: 2 } })
    expect(fullDelta(b).set.map(([key]) => key)).toEqual(['a', 'b'])
    expect(diffFields(b, Buffer.from(b))).toEqual({ set: [], remove: [] })
  })

  test('fields in another order are compared by name', () => {
    const delta = diffFields(blob({ a: 1, b: 2, c: 3 }), blob({ c: 3, a: 9, d: 4 }))
    expect(delta.set.map(([key]) => key)).toEqual(['a', 'd'])
    expect(delta.remove).toEqual(['b'])
  })
})

describe('applyFields', () => {
  const cases: Array<[string, Record<string, unknown> | null, Array<[string, unknown]>, string[]]> = [
    ['empty delta', { a: 1, b: 2 }, [], []],
    [
      'create',
      null,
      [
        ['a', 1],
        ['b', { c: [1, 2] }],
      ],
      [],
    ],
    ['set in place', { a: 1, b: 2, c: 3 }, [['b', 'two']], []],
    ['removed and set: set wins, at the end', { a: 1, b: 2, c: 3 }, [['a', 'again']], ['a']],
    [
      'duplicate keys: last value wins',
      { a: 1 },
      [
        ['x', 1],
        ['a', 2],
        ['x', 3],
        ['a', 4],
      ],
      [],
    ],
    ['remove only', { a: 1, b: 2 }, [], ['a', 'missing']],
    ['remove everything', { a: 1 }, [], ['a']],
  ]
  test.each(cases)('%s', (_name, before, set, remove) => {
    const current = before === null ? null : blob(before)
    const out = applyFields(current, { set: set.map(([key, v]) => [key, value(v)] as const), remove })
    readMapFields(out, limits) // well formed, unique keys
    const expected = reference(current, set, remove)
    expect(layoutOf(out).map((field) => field.key)).toEqual([...expected.keys()])
    expect(decode(out)).toEqual(Object.fromEntries(expected))
  })

  test('crossing the 15/16 and 65535/65536 header boundaries both ways', () => {
    for (const [count, add, drop] of [
      [15, 1, 0],
      [16, 0, 1],
      [65_535, 1, 0],
      [65_536, 0, 1],
    ] as const) {
      const current = blob(Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${i}`, i])))
      const set = Array.from({ length: add }, (_, i) => [`new${i}`, value(i)] as const)
      const remove = Array.from({ length: drop }, (_, i) => `k${i}`)
      const out = applyFields(current, { set, remove })
      expect(readMapFields(out, limits).length).toBe(count + add - drop)
    }
  })

  test('Map and Set values from another encoder are carried as bytes', () => {
    const current = blob({ a: 1 })
    const out = applyFields(current, {
      set: [
        ['m', value(new Map([['x', 1]]))],
        ['s', value([1, 2])],
      ],
      remove: [],
    })
    expect(decode(out)).toEqual({ a: 1, m: { x: 1 }, s: [1, 2] })
  })

  test('the delta of a write applied to the old bytes gives the new bytes', () => {
    const before = blob({ a: 1, b: 2, c: { d: [1] } })
    const after = blob({ a: 1, c: { d: [1, 2] }, e: 'new' })
    expect(decode(applyFields(before, diffFields(before, after)))).toEqual(decode(after))
  })
})

describe('encodeSession against the stored bytes', () => {
  test('unchanged: the stored buffer itself, and an empty delta', () => {
    const stored = blob({ user: 'ada', cart: [1, 2] })
    const again = encodeSession({ user: 'ada', cart: [1, 2] }, limits, stored)
    expect(again.blob).toBe(stored)
    expect(again.delta).toEqual({ set: [], remove: [] })
  })

  test('changed: only the changed fields, as views into the new bytes', () => {
    const stored = blob({ user: 'ada', cart: [1, 2], gone: 1 })
    const next = encodeSession({ user: 'ada', cart: [1, 2, 3] }, limits, stored)
    expect(next.base).toBe(stored)
    expect(next.delta.set.map(([key]) => key)).toEqual(['cart'])
    expect(next.delta.remove).toEqual(['gone'])
    expect(next.delta.set[0]![1].buffer).toBe(next.blob.buffer)
    expect(decode(applyFields(stored, next.delta))).toEqual(decode(next.blob))
  })

  test('only changed fields are checked in depth; top-level kinds are always checked', () => {
    const stored = blob({ a: {}, b: null })
    // Encodes like the stored empty map / nil, but is not plain: still refused.
    expect(() => encodeSession({ a: new Map(), b: null }, limits, stored)).toThrow(NotReplicableError)
    expect(() => encodeSession({ a: {}, b: () => 1 }, limits, stored)).toThrow(NotReplicableError)
    // A changed field is checked in depth.
    expect(() => encodeSession({ a: { m: new Map() }, b: null }, limits, stored)).toThrow(NotReplicableError)
    // Without stored bytes, everything is.
    expect(() => encodeSession({ a: { f: () => 1 } }, limits)).toThrow(NotReplicableError)
  })

  test('a circular reference is refused as not replicable, not as a stack overflow', () => {
    const session: Record<string, unknown> = { a: {} }
    ;(session.a as Record<string, unknown>).self = session.a
    expect(() => encodeSession(session, limits)).toThrow(NotReplicableError)
    expect(() => encodeSession(session, limits, blob({ a: 1 }))).toThrow(NotReplicableError)
  })
})

import { Packr } from 'msgpackr'
import { pack } from '../../helpers/msgpack.js'
import { assertWellFormed, readMapFields, scanValue } from '../../../lib/codec/msgpack-scan.js'
import { ErrorCodes } from '../../../lib/index.js'

const limits = { maxDepth: 8, maxContainerLength: 1000 }

const values: [string, unknown][] = [
  ['fixints', [0, 1, 127, -1, -32]],
  ['ints of every width', [200, -100, 40_000, -30_000, 3_000_000_000, -2_000_000_000, 2 ** 53 - 1, -(2 ** 53)]],
  ['floats', [0.5, -1.25, Number.MAX_VALUE, Number.NaN, Number.POSITIVE_INFINITY]],
  ['strings of every width', ['', 'a', 'é'.repeat(20), 'x'.repeat(300), 'y'.repeat(70_000)]],
  ['binaries of every width', [Buffer.alloc(3), Buffer.alloc(300), Buffer.alloc(70_000)]],
  ['nil and booleans', [null, true, false]],
  ['dates as 32, 64 and 96 bit timestamps', [new Date(1000), new Date(1500), new Date(-1), new Date(8.64e15)]],
  [
    'maps and arrays of every width',
    {
      small: [1, 2],
      medium: Array.from({ length: 20 }, (_, i) => i),
      map: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])),
    },
  ],
]

describe('scanValue', () => {
  test.each(values)('accepts %s and ends exactly where the value ends', (_, value) => {
    const bytes = pack(value)
    expect(scanValue(bytes, 0, { maxDepth: 8, maxContainerLength: 100_000 })).toBe(bytes.length)
  })

  test('every truncation of a valid value is refused, never read past the end', () => {
    const bytes = pack({ user: { name: 'ada', roles: ['a', 'b'], at: new Date(5) }, n: 3.5, big: 2 ** 40, bin: Buffer.alloc(4) })
    for (let cut = 0; cut < bytes.length; cut++) {
      expect(() => assertWellFormed(bytes.subarray(0, cut), limits)).toThrow(expect.objectContaining({ code: ErrorCodes.MALFORMED_DATA }))
    }
  })

  test('trailing bytes are refused', () => {
    expect(() => assertWellFormed(Buffer.concat([pack(1), Buffer.from([1])]), limits)).toThrow(/after the value/)
  })

  test('nesting deeper than maxDepth is refused before decoding', () => {
    let deep: unknown = 1
    for (let i = 0; i < 9; i++) deep = [deep]
    expect(() => assertWellFormed(pack(deep), limits)).toThrow(/deeper than 8/)
  })

  test('a container longer than maxContainerLength is refused, even when its bytes are missing', () => {
    expect(() => assertWellFormed(Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff]), limits)).toThrow(/4294967295 items/)
    expect(() => assertWellFormed(Buffer.from([0xdf, 0x00, 0x01, 0x00, 0x00]), limits)).toThrow(/65536 items/)
  })

  test.each([
    ['msgpackr records', new Packr({ useRecords: true }).pack({ a: 1 })],
    ['a Set (ext 0x73)', new Packr({ useRecords: false, moreTypes: true }).pack(new Set([1]))],
    ['an Error (ext 0x65)', new Packr({ useRecords: false }).pack(new Error('x'))],
    ['a RegExp (ext 0x78)', new Packr({ useRecords: false, moreTypes: true }).pack(/x/)],
    ['undefined (ext 0)', Buffer.from([0xd4, 0x00, 0x00])],
    ['the never-used byte 0xc1', Buffer.from([0xc1])],
    ['ext 8 of an unknown type', Buffer.from([0xc7, 0x01, 0x05, 0x00])],
    ['a map with a non-string key', Buffer.from([0x81, 0x01, 0x02])],
    ['a __proto__ key', Buffer.from([0x81, 0xa9, ...Buffer.from('__proto__'), 0x01])],
    ['a key that is not UTF-8', Buffer.from([0x81, 0xa2, 0xff, 0xfe, 0x01])],
  ])('refuses %s', (_, bytes) => {
    expect(() => assertWellFormed(bytes, limits)).toThrow(expect.objectContaining({ code: ErrorCodes.MALFORMED_DATA }))
  })
})

describe('readMapFields', () => {
  test('lists each top-level key with the exact bytes of its value', () => {
    const bytes = pack({ a: 1, b: { c: [1, 2] }, s: 'text' })
    const fields = readMapFields(bytes, limits)
    expect(fields.map((field) => field.key)).toEqual(['a', 'b', 's'])
    const b = fields[1]!
    expect(bytes.subarray(b.valueStart, b.valueEnd)).toEqual(pack({ c: [1, 2] }))
  })

  test('refuses duplicate keys and values that are not maps', () => {
    expect(() => readMapFields(Buffer.from([0x82, 0xa1, 0x61, 0x01, 0xa1, 0x61, 0x02]), limits)).toThrow(/duplicate/)
    expect(() => readMapFields(pack([1]), limits)).toThrow(/expected a map/)
  })
})

import { Packr } from 'msgpackr'
import { pack } from '../../helpers/msgpack.js'
import { assertSessionMap, assertWellFormed, isValidUtf8, readMapFields, scanValue } from '../../../lib/codec/msgpack-scan.js'
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

describe('nested map keys are checked in place', () => {
  const utf8 = new TextDecoder('utf-8', { fatal: true })
  const strict = (bytes: Uint8Array) => {
    try {
      utf8.decode(bytes)
      return true
    } catch {
      return false
    }
  }

  test('isValidUtf8 judges like a fatal TextDecoder', () => {
    const samples: number[][] = [
      [0x41],
      [0xc2, 0x80],
      [0xc1, 0x80],
      [0xe0, 0x9f, 0x80],
      [0xe0, 0xa0, 0x80],
      [0xed, 0x9f, 0xbf],
      [0xed, 0xa0, 0x80],
      [0xef, 0xbf, 0xbf],
      [0xf0, 0x8f, 0x80, 0x80],
      [0xf0, 0x90, 0x80, 0x80],
      [0xf4, 0x8f, 0xbf, 0xbf],
      [0xf4, 0x90, 0x80, 0x80],
      [0xf5, 0x80, 0x80, 0x80],
      [0xe2, 0x82],
      [0x80],
      [0xff],
    ]
    for (const sample of samples)
      expect([sample, isValidUtf8(Uint8Array.from(sample), 0, sample.length)]).toEqual([sample, strict(Uint8Array.from(sample))])
    let seed = 7
    for (let n = 0; n < 20_000; n++) {
      const length = (n % 6) + 1
      const bytes = new Uint8Array(length)
      for (let i = 0; i < length; i++) {
        seed = (seed * 1_103_515_245 + 12_345) & 0x7fffffff
        bytes[i] = seed % 3 === 0 ? 0x80 | (seed & 0x3f) : (seed >> 8) & 0xff
      }
      expect(isValidUtf8(bytes, 0, length)).toBe(strict(bytes))
    }
  })

  test('__proto__ and invalid UTF-8 are refused as nested keys, other keys pass', () => {
    const map = (key: number[]) => Buffer.from([0x81, 0xa1, 0x61, 0x81, 0xa0 | key.length, ...key, 0x01])
    expect(() => assertWellFormed(map([...Buffer.from('__proto__')]), limits)).toThrow(/__proto__/)
    expect(() => assertWellFormed(map([0xc3, 0x28]), limits)).toThrow(/UTF-8/)
    expect(() => assertWellFormed(map([...Buffer.from('__proto_x')]), limits)).not.toThrow()
    expect(() => assertWellFormed(map([...Buffer.from('é')]), limits)).not.toThrow()
  })
})

test('assertSessionMap accepts and refuses exactly what readMapFields does', () => {
  const packer = new Packr({ useRecords: false, mapsAsObjects: true })
  const packValue = (value: unknown) => packer.pack(value)
  const samples = [
    packValue({ a: 1, b: 'two', c: [1, { d: null }], é: true }),
    packValue(Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i]))),
    Buffer.from([0x82, 0xa1, 0x61, 0x01, 0xa1, 0x61, 0x02]), // duplicate
    Buffer.from([0x81, 0xa2, 0xc3, 0x28, 0x01]), // bad UTF-8 key
  ]
  let seed = 3
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) & 0x7fffffff
    return seed
  }
  const outcome = (check: () => unknown) => {
    try {
      check()
      return 'ok'
    } catch (error) {
      return (error as Error).name
    }
  }
  for (const sample of samples) {
    for (let n = 0; n < 3000; n++) {
      const bytes = Buffer.from(sample)
      if (n > 0) bytes[random() % bytes.length] = random() & 0xff
      const cut = n % 7 === 0 ? bytes.subarray(0, random() % (bytes.length + 1)) : bytes
      expect([cut.toString('hex'), outcome(() => assertSessionMap(cut, limits))]).toEqual([
        cut.toString('hex'),
        outcome(() => readMapFields(cut, limits)),
      ])
    }
  }
})

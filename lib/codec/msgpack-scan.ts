import { MalformedDataError } from '../base/errors.js'

/**
 * A bounded walk over msgpack bytes that decodes nothing. It runs before msgpackr sees any bytes
 * from the network, and it splits a stored session into its top-level fields.
 *
 * It accepts the plain msgpack types and exactly one extension, the standard timestamp (-1), so
 * decoding can never construct anything but plain objects, arrays, primitives, Buffers and Dates.
 */
export interface ScanLimits {
  /** Deepest allowed nesting of arrays and maps; the top-level value is depth 1. */
  readonly maxDepth: number
  /** Largest allowed number of items in one array or entries in one map. */
  readonly maxContainerLength: number
}

const TIMESTAMP_EXTENSION = 0xff // -1 as an unsigned byte

/** Returns the offset just past the value that starts at `offset`; throws `MalformedDataError`. */
export function scanValue(bytes: Uint8Array, offset: number, limits: ScanLimits, depth = 1): number {
  return scan(bytes, offset, limits, depth)
}

/** Checks that `bytes` hold exactly one acceptable msgpack value. */
export function assertWellFormed(bytes: Uint8Array, limits: ScanLimits): void {
  const end = scanValue(bytes, 0, limits)
  if (end !== bytes.length) throw new MalformedDataError(`${bytes.length - end} bytes after the value`)
}

/** One top-level entry of a msgpack map: its key and where its value's bytes lie. */
export interface MapField {
  readonly key: string
  readonly valueStart: number
  readonly valueEnd: number
}

/** Lists the entries of the map that fills `bytes`; keys must be strings and unique. */
export function readMapFields(bytes: Uint8Array, limits: ScanLimits): MapField[] {
  const header = readMapHeader(bytes, 0)
  checkLength(header.count, limits)
  const fields: MapField[] = []
  const seen = new Set<string>()
  let offset = header.next
  for (let i = 0; i < header.count; i++) {
    const key = readString(bytes, offset)
    if (seen.has(key.value)) throw new MalformedDataError(`duplicate map key ${JSON.stringify(key.value)}`)
    seen.add(key.value)
    const valueEnd = scan(bytes, key.next, limits, 2)
    fields.push({ key: key.value, valueStart: key.next, valueEnd })
    offset = valueEnd
  }
  if (offset !== bytes.length) throw new MalformedDataError(`${bytes.length - offset} bytes after the map`)
  return fields
}

/**
 * Checks that `bytes` hold exactly one map of acceptable values with unique string keys, as
 * `readMapFields` does, without building its list or the keys' strings (for session bytes that
 * arrive whole and are stored as they are).
 */
export function assertSessionMap(bytes: Uint8Array, limits: ScanLimits): void {
  const header = readMapHeader(bytes, 0)
  checkLength(header.count, limits)
  // Few keys: compared as bytes (valid UTF-8 has one encoding per string); many: as strings in a Set.
  if (header.count > 16) {
    readMapFields(bytes, limits)
    return
  }
  const keyStarts: number[] = []
  const keyEnds: number[] = []
  let offset = header.next
  for (let i = 0; i < header.count; i++) {
    const next = checkKeyUtf8(bytes, offset)
    const start = next - keyLength(bytes, offset)
    for (let j = 0; j < keyStarts.length; j++) {
      if (sameRange(bytes, keyStarts[j]!, keyEnds[j]!, start, next)) {
        throw new MalformedDataError(`duplicate map key ${JSON.stringify(readString(bytes, offset).value)}`)
      }
    }
    keyStarts.push(start)
    keyEnds.push(next)
    offset = scan(bytes, next, limits, 2)
  }
  if (offset !== bytes.length) throw new MalformedDataError(`${bytes.length - offset} bytes after the map`)
}

function keyLength(bytes: Uint8Array, offset: number): number {
  const type = bytes[offset]!
  if (type >= 0xa0 && type <= 0xbf) return type & 0x1f
  if (type === 0xd9) return bytes[offset + 1]!
  if (type === 0xda) return uint16(bytes, offset + 1)
  return uint32(bytes, offset + 1)
}

function sameRange(bytes: Uint8Array, aStart: number, aEnd: number, bStart: number, bEnd: number): boolean {
  if (aEnd - aStart !== bEnd - bStart) return false
  for (let i = 0; i < aEnd - aStart; i++) if (bytes[aStart + i] !== bytes[bStart + i]) return false
  return true
}

function scan(bytes: Uint8Array, offset: number, limits: ScanLimits, depth: number): number {
  if (depth > limits.maxDepth) throw new MalformedDataError(`nesting deeper than ${limits.maxDepth}`)
  need(bytes, offset, 1)
  const type = bytes[offset]!
  const at = offset + 1
  if (type <= 0x7f || type >= 0xe0) return at // positive and negative fixint
  if (type <= 0x8f) return scanMap(bytes, at, type & 0x0f, limits, depth)
  if (type <= 0x9f) return scanArray(bytes, at, type & 0x0f, limits, depth)
  if (type <= 0xbf) return skip(bytes, at, type & 0x1f) // fixstr
  switch (type) {
    case 0xc0: // nil
    case 0xc2: // false
    case 0xc3: // true
      return at
    case 0xc4: // bin 8
    case 0xd9: // str 8
      need(bytes, at, 1)
      return skip(bytes, at + 1, bytes[at]!)
    case 0xc5: // bin 16
    case 0xda: // str 16
      need(bytes, at, 2)
      return skip(bytes, at + 2, uint16(bytes, at))
    case 0xc6: // bin 32
    case 0xdb: // str 32
      need(bytes, at, 4)
      return skip(bytes, at + 4, uint32(bytes, at))
    case 0xca: // float 32
      return skip(bytes, at, 4)
    case 0xcb: // float 64
      return skip(bytes, at, 8)
    case 0xcc: // uint 8
    case 0xd0: // int 8
      return skip(bytes, at, 1)
    case 0xcd:
    case 0xd1:
      return skip(bytes, at, 2)
    case 0xce:
    case 0xd2:
      return skip(bytes, at, 4)
    case 0xcf:
    case 0xd3:
      return skip(bytes, at, 8)
    case 0xd6: // fixext 4: timestamp 32
      return scanTimestamp(bytes, at, 4)
    case 0xd7: // fixext 8: timestamp 64
      return scanTimestamp(bytes, at, 8)
    case 0xc7: // ext 8: timestamp 96
      need(bytes, at, 1)
      if (bytes[at] !== 12) throw new MalformedDataError(`extension type 0x${type.toString(16)} is not allowed`)
      return scanTimestamp(bytes, at + 1, 12)
    case 0xdc:
      need(bytes, at, 2)
      return scanArray(bytes, at + 2, uint16(bytes, at), limits, depth)
    case 0xdd:
      need(bytes, at, 4)
      return scanArray(bytes, at + 4, uint32(bytes, at), limits, depth)
    case 0xde:
      need(bytes, at, 2)
      return scanMap(bytes, at + 2, uint16(bytes, at), limits, depth)
    case 0xdf:
      need(bytes, at, 4)
      return scanMap(bytes, at + 4, uint32(bytes, at), limits, depth)
    default: // 0xc1 (never used) and every other extension
      throw new MalformedDataError(`type byte 0x${type.toString(16)} is not allowed`)
  }
}

function scanTimestamp(bytes: Uint8Array, at: number, length: number): number {
  need(bytes, at, 1)
  if (bytes[at] !== TIMESTAMP_EXTENSION) throw new MalformedDataError(`extension type ${(bytes[at]! << 24) >> 24} is not allowed`)
  return skip(bytes, at + 1, length)
}

function scanArray(bytes: Uint8Array, at: number, count: number, limits: ScanLimits, depth: number): number {
  checkLength(count, limits)
  let offset = at
  for (let i = 0; i < count; i++) offset = scanItem(bytes, offset, limits, depth + 1)
  return offset
}

/** `scan`, with the commonest scalars (small ints, short strings, nil, booleans) skipped inline. */
function scanItem(bytes: Uint8Array, offset: number, limits: ScanLimits, depth: number): number {
  const type = bytes[offset]
  if (type === undefined || depth > limits.maxDepth) return scan(bytes, offset, limits, depth)
  if (type <= 0x7f || type >= 0xe0 || type === 0xc0 || type === 0xc2 || type === 0xc3) return offset + 1
  if (type >= 0xa0 && type <= 0xbf) return skip(bytes, offset + 1, type & 0x1f)
  return scan(bytes, offset, limits, depth)
}

function scanMap(bytes: Uint8Array, at: number, count: number, limits: ScanLimits, depth: number): number {
  checkLength(count, limits)
  let offset = at
  for (let i = 0; i < count; i++) offset = scanItem(bytes, checkKey(bytes, offset), limits, depth + 1)
  return offset
}

/**
 * Checks a nested map key where it lies, building no string: a msgpack string of valid UTF-8 that
 * is not `__proto__`. Returns the offset after it.
 */
function checkKey(bytes: Uint8Array, offset: number): number {
  const start = stringStart(bytes, offset)
  const length = keyLength(bytes, offset)
  const next = skip(bytes, start, length)
  if (length === PROTO.length && isProto(bytes, start)) throw new MalformedDataError('map key "__proto__" is not allowed')
  return checkUtf8(bytes, start, next)
}

/** As `checkKey`, for a top-level key of a session map, where `__proto__` is not refused here. */
function checkKeyUtf8(bytes: Uint8Array, offset: number): number {
  const start = stringStart(bytes, offset)
  return checkUtf8(bytes, start, skip(bytes, start, keyLength(bytes, offset)))
}

/**
 * Where the characters of the msgpack string at `offset` start, its header checked to lie within
 * `bytes`; anything but a string is refused (map keys must be strings). Its length: `keyLength`.
 */
function stringStart(bytes: Uint8Array, offset: number): number {
  need(bytes, offset, 1)
  const type = bytes[offset]!
  const header = type >= 0xa0 && type <= 0xbf ? 1 : type === 0xd9 ? 2 : type === 0xda ? 3 : type === 0xdb ? 5 : 0
  if (header === 0) throw new MalformedDataError(`map keys must be strings, found type byte 0x${type.toString(16)}`)
  need(bytes, offset + 1, header - 1)
  return offset + header
}

function checkUtf8(bytes: Uint8Array, start: number, next: number): number {
  // Keys are nearly always ASCII: only a key with a byte past 0x7f needs the full UTF-8 check.
  for (let i = start; i < next; i++) {
    if (bytes[i]! >= 0x80) {
      if (!isValidUtf8(bytes, i, next)) throw new MalformedDataError('map key is not valid UTF-8')
      break
    }
  }
  return next
}

const PROTO = Buffer.from('__proto__', 'latin1')

function isProto(bytes: Uint8Array, start: number): boolean {
  for (let i = 0; i < PROTO.length; i++) if (bytes[start + i] !== PROTO[i]) return false
  return true
}

/**
 * Whether `bytes[start, end)` is well-formed UTF-8, as a fatal TextDecoder judges it: no overlong
 * forms, no surrogates, nothing past U+10FFFF, no truncated sequence.
 */
export function isValidUtf8(bytes: Uint8Array, start: number, end: number): boolean {
  let i = start
  while (i < end) {
    const byte = bytes[i]!
    if (byte < 0x80) {
      i += 1
      continue
    }
    if (byte >= 0xc2 && byte <= 0xdf) {
      if (i + 1 >= end || (bytes[i + 1]! & 0xc0) !== 0x80) return false
      i += 2
      continue
    }
    if (byte >= 0xe0 && byte <= 0xef) {
      if (i + 2 >= end) return false
      const second = bytes[i + 1]!
      // E0: no overlong (second >= A0); ED: no surrogates (second <= 9F).
      const low = byte === 0xe0 ? 0xa0 : 0x80
      const high = byte === 0xed ? 0x9f : 0xbf
      if (second < low || second > high || (bytes[i + 2]! & 0xc0) !== 0x80) return false
      i += 3
      continue
    }
    if (byte >= 0xf0 && byte <= 0xf4) {
      if (i + 3 >= end) return false
      const second = bytes[i + 1]!
      // F0: no overlong (second >= 90); F4: nothing past U+10FFFF (second <= 8F).
      const low = byte === 0xf0 ? 0x90 : 0x80
      const high = byte === 0xf4 ? 0x8f : 0xbf
      if (second < low || second > high || (bytes[i + 2]! & 0xc0) !== 0x80 || (bytes[i + 3]! & 0xc0) !== 0x80) return false
      i += 4
      continue
    }
    return false
  }
  return true
}

function readMapHeader(bytes: Uint8Array, offset: number): { count: number; next: number } {
  need(bytes, offset, 1)
  const type = bytes[offset]!
  if (type >= 0x80 && type <= 0x8f) return { count: type & 0x0f, next: offset + 1 }
  if (type === 0xde) {
    need(bytes, offset + 1, 2)
    return { count: uint16(bytes, offset + 1), next: offset + 3 }
  }
  if (type === 0xdf) {
    need(bytes, offset + 1, 4)
    return { count: uint32(bytes, offset + 1), next: offset + 5 }
  }
  throw new MalformedDataError(`expected a map, found type byte 0x${type.toString(16)}`)
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

function readString(bytes: Uint8Array, offset: number): { value: string; next: number } {
  const start = stringStart(bytes, offset)
  const next = skip(bytes, start, keyLength(bytes, offset))
  // Keys are short and nearly always ASCII: build those directly, and leave the rest to a strict decoder.
  let ascii = ''
  for (let i = start; i < next; i++) {
    const byte = bytes[i]!
    if (byte >= 0x80) {
      try {
        return { value: utf8.decode(bytes.subarray(start, next)), next }
      } catch (cause) {
        throw new MalformedDataError('map key is not valid UTF-8', { cause })
      }
    }
    ascii += String.fromCharCode(byte)
  }
  return { value: ascii, next }
}

function uint16(bytes: Uint8Array, at: number): number {
  return (bytes[at]! << 8) | bytes[at + 1]!
}

function uint32(bytes: Uint8Array, at: number): number {
  return bytes[at]! * 0x1000000 + ((bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!)
}

function checkLength(count: number, limits: ScanLimits): void {
  if (count > limits.maxContainerLength) {
    throw new MalformedDataError(`container of ${count} items, more than ${limits.maxContainerLength}`)
  }
}

function skip(bytes: Uint8Array, at: number, length: number): number {
  need(bytes, at, length)
  return at + length
}

function need(bytes: Uint8Array, at: number, length: number): void {
  if (at + length > bytes.length) throw new MalformedDataError('value runs past the end of the data')
}

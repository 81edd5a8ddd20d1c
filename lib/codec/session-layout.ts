/**
 * Reading the layout of stored session bytes: where each top-level field's key and value lie.
 *
 * Trusted input only: bytes this node encoded itself, or that `msgpack-scan` accepted when they
 * arrived. Nothing here checks bounds or types; `msgpack-scan.ts` does that for untrusted bytes.
 * The point is speed on the write path: comparing a new encoding with the stored one field by
 * field, and splicing fields into stored bytes, without decoding anything.
 */

/** One top-level field of a stored session map. */
export interface FieldLayout {
  readonly key: string
  /** Where the key's msgpack string starts (its header byte). */
  readonly keyStart: number
  readonly valueStart: number
  readonly valueEnd: number
}

/** The fields of the map that fills `blob`, in order. */
export function layoutOf(blob: Uint8Array): FieldLayout[] {
  const count = fieldCount(blob)
  let offset = firstKeyOffset(blob)
  const fields: FieldLayout[] = new Array<FieldLayout>(count)
  for (let i = 0; i < count; i++) {
    const keyStart = offset
    const start = stringStart(blob, offset)
    const end = start + stringLength(blob, offset)
    const key = readKey(blob, start, end)
    const valueEnd = skipTrusted(blob, end)
    fields[i] = { key, keyStart, valueStart: end, valueEnd }
    offset = valueEnd
  }
  return fields
}

/** Number of entries of the map that starts `blob`. */
export function fieldCount(blob: Uint8Array): number {
  const type = blob[0]!
  if (type <= 0x8f) return type & 0x0f
  if (type === 0xde) return (blob[1]! << 8) | blob[2]!
  return readUint32(blob, 1)
}

/** Offset of the first key of the map that starts `blob`. */
function firstKeyOffset(blob: Uint8Array): number {
  const type = blob[0]!
  return type <= 0x8f ? 1 : type === 0xde ? 3 : 5
}

/**
 * Where the value of `key` starts in `blob`, or -1; its end is `skipTrusted(blob, start)`. Allocates
 * nothing: keys are compared byte by byte.
 */
export function findField(blob: Uint8Array, key: string): number {
  const count = fieldCount(blob)
  let offset = firstKeyOffset(blob)
  const encoded = isAscii(key) ? undefined : utf8Of(key)
  for (let i = 0; i < count; i++) {
    const start = stringStart(blob, offset)
    const length = stringLength(blob, offset)
    const end = start + length
    if (encoded === undefined ? asciiEquals(blob, start, length, key) : bytesEqual(blob, start, length, encoded)) return end
    offset = skipTrusted(blob, end)
  }
  return -1
}

/**
 * The offset just past the msgpack value at `offset`. Iterative (a count of items still to skip),
 * so no nesting depth can overflow the stack; checks nothing.
 */
export function skipTrusted(bytes: Uint8Array, offset: number): number {
  let pending = 1
  let at = offset
  while (pending > 0) {
    pending -= 1
    const type = bytes[at]!
    if (type <= 0x7f || type >= 0xe0) {
      at += 1
    } else if (type <= 0x8f) {
      pending += (type & 0x0f) * 2
      at += 1
    } else if (type <= 0x9f) {
      pending += type & 0x0f
      at += 1
    } else if (type <= 0xbf) {
      at += 1 + (type & 0x1f)
    } else {
      switch (type) {
        case 0xc0:
        case 0xc2:
        case 0xc3:
          at += 1
          break
        case 0xc4:
        case 0xd9:
          at += 2 + bytes[at + 1]!
          break
        case 0xc5:
        case 0xda:
          at += 3 + ((bytes[at + 1]! << 8) | bytes[at + 2]!)
          break
        case 0xc6:
        case 0xdb:
          at += 5 + readUint32(bytes, at + 1)
          break
        case 0xc7:
          at += 3 + bytes[at + 1]!
          break
        case 0xc8:
          at += 4 + ((bytes[at + 1]! << 8) | bytes[at + 2]!)
          break
        case 0xc9:
          at += 6 + readUint32(bytes, at + 1)
          break
        case 0xca:
          at += 5
          break
        case 0xcb:
          at += 9
          break
        case 0xcc:
        case 0xd0:
          at += 2
          break
        case 0xcd:
        case 0xd1:
          at += 3
          break
        case 0xce:
        case 0xd2:
          at += 5
          break
        case 0xcf:
        case 0xd3:
          at += 9
          break
        case 0xd4:
          at += 3
          break
        case 0xd5:
          at += 4
          break
        case 0xd6:
          at += 6
          break
        case 0xd7:
          at += 10
          break
        case 0xd8:
          at += 18
          break
        case 0xdc:
          pending += (bytes[at + 1]! << 8) | bytes[at + 2]!
          at += 3
          break
        case 0xdd:
          pending += readUint32(bytes, at + 1)
          at += 5
          break
        case 0xde:
          pending += ((bytes[at + 1]! << 8) | bytes[at + 2]!) * 2
          at += 3
          break
        case 0xdf:
          pending += readUint32(bytes, at + 1) * 2
          at += 5
          break
        default:
          // 0xc1 is never written; trusted bytes cannot hold it.
          throw new Error(`skipTrusted: type byte 0x${type.toString(16)} in trusted bytes`)
      }
    }
  }
  return at
}

/** The msgpack header of a map of `count` entries. */
export function mapHeaderBytes(count: number): Buffer {
  if (count < 16) return Buffer.of(0x80 | count)
  if (count < 0x10000) return Buffer.of(0xde, count >> 8, count & 0xff)
  const header = Buffer.allocUnsafe(5)
  header[0] = 0xdf
  header.writeUInt32BE(count, 1)
  return header
}

/** How long the header of a map of `count` entries is. */
export function mapHeaderLength(count: number): number {
  return count < 16 ? 1 : count < 0x10000 ? 3 : 5
}

/** Writes the header of a map of `count` entries at `offset`; returns the offset after it. */
export function writeMapHeader(target: Uint8Array, offset: number, count: number): number {
  if (count < 16) {
    target[offset] = 0x80 | count
    return offset + 1
  }
  if (count < 0x10000) {
    target[offset] = 0xde
    target[offset + 1] = count >> 8
    target[offset + 2] = count & 0xff
    return offset + 3
  }
  target[offset] = 0xdf
  target[offset + 1] = count >>> 24
  target[offset + 2] = (count >>> 16) & 0xff
  target[offset + 3] = (count >>> 8) & 0xff
  target[offset + 4] = count & 0xff
  return offset + 5
}

const KEY_CACHE_SIZE = 1024
const keyCache = new Map<string, Buffer>()

/**
 * A field name as a msgpack string (header and UTF-8 bytes). Field names repeat from session to
 * session, so the encodings of the most recent ones are kept; do not modify the result.
 */
export function encodeKey(key: string): Buffer {
  let encoded = keyCache.get(key)
  if (encoded !== undefined) return encoded
  const utf8 = Buffer.from(key, 'utf8')
  const length = utf8.length
  const header = length < 32 ? 1 : length < 0x100 ? 2 : length < 0x10000 ? 3 : 5
  encoded = Buffer.allocUnsafeSlow(header + length)
  if (header === 1) encoded[0] = 0xa0 | length
  else if (header === 2) {
    encoded[0] = 0xd9
    encoded[1] = length
  } else if (header === 3) {
    encoded[0] = 0xda
    encoded.writeUInt16BE(length, 1)
  } else {
    encoded[0] = 0xdb
    encoded.writeUInt32BE(length, 1)
  }
  encoded.set(utf8, header)
  if (keyCache.size >= KEY_CACHE_SIZE) keyCache.clear()
  keyCache.set(key, encoded)
  return encoded
}

// ---- helpers -------------------------------------------------------------------------------------

function stringStart(blob: Uint8Array, offset: number): number {
  const type = blob[offset]!
  if (type <= 0xbf) return offset + 1
  return type === 0xd9 ? offset + 2 : type === 0xda ? offset + 3 : offset + 5
}

function stringLength(blob: Uint8Array, offset: number): number {
  const type = blob[offset]!
  if (type <= 0xbf) return type & 0x1f
  if (type === 0xd9) return blob[offset + 1]!
  if (type === 0xda) return (blob[offset + 1]! << 8) | blob[offset + 2]!
  return readUint32(blob, offset + 1)
}

const utf8Decoder = new TextDecoder()

function readKey(blob: Uint8Array, start: number, end: number): string {
  if (end - start > 64) return utf8Decoder.decode(blob.subarray(start, end))
  let ascii = ''
  for (let i = start; i < end; i++) {
    const byte = blob[i]!
    if (byte >= 0x80) return utf8Decoder.decode(blob.subarray(start, end))
    ascii += String.fromCharCode(byte)
  }
  return ascii
}

function isAscii(key: string): boolean {
  for (let i = 0; i < key.length; i++) if (key.charCodeAt(i) >= 0x80) return false
  return true
}

function asciiEquals(blob: Uint8Array, start: number, length: number, key: string): boolean {
  if (length !== key.length) return false
  for (let i = 0; i < length; i++) if (blob[start + i] !== key.charCodeAt(i)) return false
  return true
}

function bytesEqual(blob: Uint8Array, start: number, length: number, bytes: Uint8Array): boolean {
  if (length !== bytes.length) return false
  for (let i = 0; i < length; i++) if (blob[start + i] !== bytes[i]) return false
  return true
}

function utf8Of(key: string): Buffer {
  const encoded = encodeKey(key)
  return encoded.subarray(encoded.length - Buffer.byteLength(key))
}

function readUint32(bytes: Uint8Array, at: number): number {
  return bytes[at]! * 0x1000000 + ((bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!)
}

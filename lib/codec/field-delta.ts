import {
  encodeKey,
  fieldCount,
  findField,
  layoutOf,
  mapHeaderLength,
  skipTrusted,
  writeMapHeader,
  type FieldLayout,
} from './session-layout.js'

/** The top-level fields a change sets (with their new encoded values) and removes. */
export interface FieldDelta {
  readonly set: ReadonlyArray<readonly [string, Buffer]>
  readonly remove: readonly string[]
}

const EMPTY: FieldDelta = { set: [], remove: [] }

/** A create: every field of `blob` is set (its values are views into `blob`). */
export function fullDelta(blob: Buffer): FieldDelta {
  const layout = layoutOf(blob)
  if (layout.length === 0) return EMPTY
  return { set: layout.map((field) => [field.key, blob.subarray(field.valueStart, field.valueEnd)] as const), remove: [] }
}

/**
 * Compares two stored versions of a session field by field, from their bytes (both trusted: encoded
 * here, or checked on arrival). Only fields whose bytes differ travel, so a request that changes
 * one key of a 4 KB session sends that key alone. `previous` is null for a create: every field is set.
 */
export function diffFields(previous: Buffer | null, next: Buffer): FieldDelta {
  if (previous === null) return fullDelta(next)
  return diffLayouts(previous, layoutOf(previous), next, layoutOf(next))
}

/** As `diffFields`, with both layouts already read. Set values are views into `next`. */
export function diffLayouts(previous: Buffer, before: readonly FieldLayout[], next: Buffer, after: readonly FieldLayout[]): FieldDelta {
  let set: Array<readonly [string, Buffer]> | undefined
  let remove: string[] | undefined
  // Usually both have the same fields in the same order: compare position by position first.
  const sameOrder = before.length === after.length && before.every((field, i) => field.key === after[i]!.key)
  let index: Map<string, FieldLayout> | undefined
  if (!sameOrder) {
    index = new Map()
    for (const field of before) index.set(field.key, field)
  }
  for (let i = 0; i < after.length; i++) {
    const field = after[i]!
    const old = sameOrder ? before[i] : index!.get(field.key)
    if (old === undefined || !sameBytes(previous, old.valueStart, old.valueEnd, next, field.valueStart, field.valueEnd)) {
      ;(set ??= []).push([field.key, next.subarray(field.valueStart, field.valueEnd)])
    }
    index?.delete(field.key)
  }
  if (index) for (const key of index.keys()) (remove ??= []).push(key)
  return set === undefined && remove === undefined ? EMPTY : { set: set ?? [], remove: remove ?? [] }
}

/**
 * Applies a delta to stored bytes (null: nothing stored yet) and returns the new bytes, spliced
 * together without decoding anything: fields the delta leaves alone are copied as they are. Set
 * values must already have passed the untrusted scanner (the wire decoder does that); `current` is
 * trusted. Order follows a Map of the fields: a set field keeps its place, a new one (or one both
 * removed and set) goes to the end; when a key is set twice, the last value wins.
 */
export function applyFields(current: Buffer | null, delta: FieldDelta): Buffer {
  const { set, remove } = delta
  if (current !== null && remove.length === 0 && set.length === 1) return setOne(current, set[0]![0], set[0]![1])
  // Last value wins: note, per key, the index of its last occurrence in `set`.
  let lastSet: Map<string, number> | undefined
  if (set.length > 1) {
    lastSet = new Map()
    for (let i = 0; i < set.length; i++) lastSet.set(set[i]![0], i)
  }
  const setIndex = (key: string): number => {
    if (lastSet !== undefined) return lastSet.get(key) ?? -1
    return set.length === 1 && set[0]![0] === key ? 0 : -1
  }
  const removed = remove.length === 0 ? undefined : new Set(remove)

  // Existing fields, in order: kept as they are, replaced in place, or dropped.
  const layout = current === null || fieldCount(current) === 0 ? [] : layoutOf(current)
  const placed = new Set<string>()
  let count = 0
  let length = 0
  // For each existing field: -1 dropped, -2 kept, else the index in `set` of its new value.
  const plan = new Int32Array(layout.length)
  for (let i = 0; i < layout.length; i++) {
    const field = layout[i]!
    if (removed?.has(field.key)) {
      plan[i] = -1
      continue
    }
    const at = setIndex(field.key)
    count += 1
    if (at === -1) {
      plan[i] = -2
      length += field.valueEnd - field.keyStart
    } else {
      plan[i] = at
      placed.add(field.key)
      length += field.valueStart - field.keyStart + set[at]![1].length
    }
  }
  // New fields (and fields both removed and set), where they first appear, with their last value.
  const appended: number[] = []
  for (let i = 0; i < set.length; i++) {
    const key = set[i]![0]
    if (placed.has(key)) continue
    const at = setIndex(key)
    placed.add(key)
    appended.push(at)
    count += 1
    length += encodeKey(key).length + set[at]![1].length
  }

  const headerLength = count < 16 ? 1 : count < 0x10000 ? 3 : 5
  // Stored for long: a buffer of its own, not a share of a pooled slab (see ownedCopy).
  const out = Buffer.allocUnsafeSlow(headerLength + length)
  let offset = writeMapHeader(out, 0, count)
  for (let i = 0; i < layout.length; i++) {
    const field = layout[i]!
    const action = plan[i]!
    if (action === -1) continue
    if (action === -2) {
      out.set(current!.subarray(field.keyStart, field.valueEnd), offset)
      offset += field.valueEnd - field.keyStart
    } else {
      out.set(current!.subarray(field.keyStart, field.valueStart), offset)
      offset += field.valueStart - field.keyStart
      const value = set[action]![1]
      out.set(value, offset)
      offset += value.length
    }
  }
  for (const at of appended) {
    const [key, value] = set[at]!
    const encodedKey = encodeKey(key)
    out.set(encodedKey, offset)
    offset += encodedKey.length
    out.set(value, offset)
    offset += value.length
  }
  return out
}

/**
 * The commonest change, one field set, spliced with nothing allocated but the result: the bytes
 * before the old value, the new value, the bytes after it (or, for a new field, the rest of the map
 * under a header counting one more entry, then the field).
 */
function setOne(current: Buffer, key: string, value: Buffer): Buffer {
  const start = findField(current, key)
  if (start !== -1) {
    const end = skipTrusted(current, start)
    const out = Buffer.allocUnsafeSlow(current.length - (end - start) + value.length)
    out.set(current.subarray(0, start), 0)
    out.set(value, start)
    out.set(current.subarray(end), start + value.length)
    return out
  }
  const count = fieldCount(current)
  const oldHeader = mapHeaderLength(count)
  const encodedKey = encodeKey(key)
  const out = Buffer.allocUnsafeSlow(mapHeaderLength(count + 1) + current.length - oldHeader + encodedKey.length + value.length)
  let offset = writeMapHeader(out, 0, count + 1)
  out.set(current.subarray(oldHeader), offset)
  offset += current.length - oldHeader
  out.set(encodedKey, offset)
  out.set(value, offset + encodedKey.length)
  return out
}

function sameBytes(a: Buffer, aStart: number, aEnd: number, b: Buffer, bStart: number, bEnd: number): boolean {
  if (aEnd - aStart !== bEnd - bStart) return false
  return a.compare(b, bStart, bEnd, aStart, aEnd) === 0
}

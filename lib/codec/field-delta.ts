import { readMapFields, type MapField, type ScanLimits } from './msgpack-scan.js'
import { joinFields, splitFields } from './session-codec.js'

/** The top-level fields a change sets (with their new encoded values) and removes. */
export interface FieldDelta {
  readonly set: ReadonlyArray<readonly [string, Buffer]>
  readonly remove: readonly string[]
}

/**
 * Compares two stored versions of a session field by field. Only fields whose bytes differ travel,
 * so a request that changes one key of a 4 KB session sends that key alone. `previous` is null for
 * a create: every field is set.
 */
export function diffFields(previous: Buffer | null, next: Buffer, limits: ScanLimits): FieldDelta {
  const set: Array<readonly [string, Buffer]> = []
  const remove: string[] = []
  // Compare byte ranges in place: only the fields that changed become Buffers of their own.
  const before = new Map<string, MapField>()
  if (previous) for (const field of readMapFields(previous, limits)) before.set(field.key, field)
  const after = readMapFields(next, limits)
  for (const field of after) {
    const old = before.get(field.key)
    const same = old !== undefined && next.compare(previous!, old.valueStart, old.valueEnd, field.valueStart, field.valueEnd) === 0
    if (!same) set.push([field.key, next.subarray(field.valueStart, field.valueEnd)])
    before.delete(field.key)
  }
  for (const key of before.keys()) remove.push(key)
  return { set, remove }
}

/** Applies a delta to stored bytes (null: nothing stored yet) and returns the new bytes. */
export function applyFields(current: Buffer | null, delta: FieldDelta, limits: ScanLimits): Buffer {
  const fields: Map<string, Uint8Array> = current ? splitFields(current, limits) : new Map<string, Uint8Array>()
  for (const key of delta.remove) fields.delete(key)
  for (const [key, value] of delta.set) fields.set(key, value)
  return joinFields(fields)
}

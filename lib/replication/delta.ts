import type { ScanLimits } from '../codec/msgpack-scan.js'
import { joinFields, splitFields } from '../codec/session-codec.js'

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
  const after = splitFields(next, limits)
  const set: Array<readonly [string, Buffer]> = []
  const remove: string[] = []
  const before = previous ? splitFields(previous, limits) : new Map<string, Buffer>()
  for (const [key, value] of after) {
    const old = before.get(key)
    if (!old || !old.equals(value)) set.push([key, value])
  }
  for (const key of before.keys()) if (!after.has(key)) remove.push(key)
  return { set, remove }
}

/** Applies a delta to stored bytes (null: nothing stored yet) and returns the new bytes. */
export function applyFields(current: Buffer | null, delta: FieldDelta, limits: ScanLimits): Buffer {
  const fields: Map<string, Uint8Array> = current ? splitFields(current, limits) : new Map()
  for (const key of delta.remove) fields.delete(key)
  for (const [key, value] of delta.set) fields.set(key, value)
  return joinFields(fields)
}

import { ProtocolError } from '../base/errors.js'
import { assertSessionMap, assertWellFormed, type ScanLimits } from '../codec/msgpack-scan.js'
import { MAX_SESSION_ID_LENGTH } from '../codec/session-codec.js'
import { NODE_ID_PATTERN } from '../table/node-id.js'
import { MAX_COUNTER, type Version } from '../table/version.js'
import { PROTOCOL_VERSION } from './frame.js'

/**
 * The field types messages are declared with (see `messages.ts`). Each knows how to write a value
 * as msgpack items and how to read it back from untrusted items, checking type and bounds, so a
 * message's layout is written once and both directions follow from it.
 */

/** Bounds on what one message may carry; derived from the store's options. */
export interface MessageLimits {
  /** Limits for each session value and blob (the store's own). */
  readonly session: ScanLimits & { readonly maxSessionBytes: number }
  /** Most items in one batch (digest entries, fetched ids, expiry changes). */
  readonly maxBatch: number
}

/** Where decoding is: what to blame, the limits that apply, and the protocol version of the frame (the newest when absent). */
export interface DecodeContext {
  readonly limits: MessageLimits
  readonly protocol?: number
  fail(reason: string): never
}

/**
 * A value that is one msgpack item: a field, or an item of a list. `protocol` is the version the
 * value is written in (the newest when absent): fields added later (`since`) are left out of older ones.
 */
export interface ItemCodec<T> {
  encode(value: T, protocol?: number): unknown
  decode(value: unknown, context: DecodeContext): T
}

/** A field of a message: usually one item; a version takes two (counter, origin). */
export interface FieldCodec<T> {
  write(value: T, out: unknown[], protocol?: number): void
  read(reader: WireReader): T
}

export type FieldCodecs = Record<string, FieldCodec<unknown>>

/** The values a set of fields holds (their docs carry over to the message types). */
export type ValuesOf<F> = { readonly [K in keyof F]: F[K] extends FieldCodec<infer T> ? T : never }

/** Reads the items of a decoded array in order, for the fields of one message or record. */
export class WireReader implements DecodeContext {
  readonly limits: MessageLimits
  readonly protocol: number
  readonly #items: readonly unknown[]
  readonly #what: string
  #next = 0

  constructor(value: unknown, what: string, limits: MessageLimits, protocol: number = PROTOCOL_VERSION) {
    this.#what = what
    this.limits = limits
    this.protocol = protocol
    if (!Array.isArray(value)) throw new ProtocolError(`${what} is not an array`)
    this.#items = value
  }

  take(): unknown {
    if (this.#next >= this.#items.length) this.fail('too few items')
    return this.#items[this.#next++]
  }

  end(): void {
    if (this.#next !== this.#items.length) this.fail(`${this.#items.length - this.#next} unexpected trailing items`)
  }

  fail(reason: string): never {
    throw new ProtocolError(`${this.#what}, item ${Math.max(this.#next - 1, 0)}: ${reason}`)
  }
}

/** A field that is one item. */
export function one<T>(item: ItemCodec<T>): FieldCodec<T> {
  return {
    write: (value, out, protocol) => void out.push(item.encode(value, protocol)),
    read: (reader) => item.decode(reader.take(), reader),
  }
}

/**
 * A field added in protocol `version`: written and read only in that version and later ones; in an
 * older one it is not on the wire, and reads as `absent`.
 */
export function since<T, A>(version: number, field: FieldCodec<T>, absent: A): FieldCodec<T | A> {
  return {
    write: (value, out, protocol = PROTOCOL_VERSION) => {
      if (protocol >= version) field.write(value as T, out, protocol)
    },
    read: (reader) => (reader.protocol >= version ? field.read(reader) : absent),
  }
}

/** Reads `fields` from `reader` in order, into an object. */
export function readFields<F extends FieldCodecs>(
  entries: ReadonlyArray<readonly [string, FieldCodec<unknown>]>,
  reader: WireReader,
): ValuesOf<F> {
  const value: Record<string, unknown> = {}
  for (const [key, codec] of entries) value[key] = codec.read(reader)
  return value as ValuesOf<F>
}

/** Writes `value`'s fields in the order `entries` declares them, as protocol `protocol` has them. */
export function writeFields(
  entries: ReadonlyArray<readonly [string, FieldCodec<unknown>]>,
  value: object,
  out: unknown[],
  protocol?: number,
): void {
  const fields = value as Record<string, unknown>
  for (const [key, codec] of entries) codec.write(fields[key], out, protocol)
}

// ---- items ---------------------------------------------------------------------------------------

const identity = <T>(value: T): unknown => value

function item<T>(decode: (value: unknown, context: DecodeContext) => T): ItemCodec<T> {
  return { encode: identity, decode }
}

export const integerItem = item((value: unknown, context: DecodeContext) => {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) context.fail('expected a non-negative integer')
  return value
})

export const booleanItem = item((value: unknown, context: DecodeContext) => {
  if (typeof value !== 'boolean') context.fail('expected a boolean')
  return value
})

export function textItem(maxLength: number): ItemCodec<string> {
  return item((value: unknown, context: DecodeContext) => {
    if (typeof value !== 'string' || value.length > maxLength) context.fail(`expected a string of at most ${maxLength} characters`)
    return value
  })
}

/** One of a fixed set of strings. */
export function enumItem<const T extends string>(values: readonly T[], what: string): ItemCodec<T> {
  const allowed = new Set<string>(values)
  return item((value: unknown, context: DecodeContext) => {
    if (typeof value !== 'string' || !allowed.has(value)) context.fail(`expected ${what}`)
    return value as T
  })
}

export const nodeIdItem = item((value: unknown, context: DecodeContext) => {
  if (typeof value !== 'string' || !NODE_ID_PATTERN.test(value)) context.fail('expected a node id')
  return value
})

export const sidItem = item((value: unknown, context: DecodeContext) => {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_SESSION_ID_LENGTH) context.fail('bad session id')
  return value
})

const MAX_FIELD_NAME_LENGTH = 1024

/** A top-level session field name. */
export const fieldNameItem = item((value: unknown, context: DecodeContext) => {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_FIELD_NAME_LENGTH || value === '__proto__') {
    context.fail('bad session field name')
  }
  return value
})

/** A time in ms since the epoch. */
export const timeItem = item((value: unknown, context: DecodeContext) => {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) context.fail('expected a time in ms')
  return value
})

export function bytesItem(length: number): ItemCodec<Buffer> {
  return item((value: unknown, context: DecodeContext) => {
    if (!Buffer.isBuffer(value) || value.length !== length) context.fail(`expected ${length} bytes`)
    return value
  })
}

/** Session bytes within `maxSessionBytes`: the value of one field, or (with `whole`) a whole session map. */
function sessionBytes(whole: boolean): ItemCodec<Buffer> {
  return item((value: unknown, context: DecodeContext) => {
    const { session } = context.limits
    if (!Buffer.isBuffer(value) || value.length > session.maxSessionBytes) context.fail('expected session bytes within maxSessionBytes')
    // A field value sits one level below the session map.
    if (whole) assertSessionMap(value, session)
    else assertWellFormed(value, fieldLimits(session))
    return value
  })
}

const fieldLimitsCache = new WeakMap<ScanLimits, ScanLimits>()

/** The limits of one field's value: one level less deep than the session's. Made once per session limits. */
function fieldLimits(session: ScanLimits): ScanLimits {
  let limits = fieldLimitsCache.get(session)
  if (limits === undefined) {
    limits = { maxDepth: session.maxDepth - 1, maxContainerLength: session.maxContainerLength }
    fieldLimitsCache.set(session, limits)
  }
  return limits
}
export const sessionValueItem = sessionBytes(false)
export const sessionBlobItem = sessionBytes(true)

/** `T`, or null. */
export function optional<T>(codec: ItemCodec<T>): ItemCodec<T | null> {
  return {
    encode: (value, protocol) => (value === null ? null : codec.encode(value, protocol)),
    decode: (value, context) => (value === null ? null : codec.decode(value, context)),
  }
}

/** A list of at most `max(limits)` items. */
export function listOf<T>(codec: ItemCodec<T>, max: (limits: MessageLimits) => number): ItemCodec<readonly T[]> {
  return {
    encode: (values, protocol) => values.map((value) => codec.encode(value, protocol)),
    decode: (value, context) => {
      const limit = max(context.limits)
      if (!Array.isArray(value) || value.length > limit) context.fail(`expected a list of at most ${limit} items`)
      return (value as unknown[]).map((each) => codec.decode(each, context))
    },
  }
}

/** A pair, as a two-item array. */
export function pairOf<A, B>(first: ItemCodec<A>, second: ItemCodec<B>): ItemCodec<readonly [A, B]> {
  return {
    encode: ([a, b], protocol) => [first.encode(a, protocol), second.encode(b, protocol)],
    decode: (value, context) => {
      if (!Array.isArray(value) || value.length !== 2) context.fail('expected a pair')
      const [a, b] = value as [unknown, unknown]
      return [first.decode(a, context), second.decode(b, context)] as const
    },
  }
}

/**
 * A record: named fields in a nested array (a digest entry, a snapshot). `check` refuses
 * combinations the fields allow one by one.
 */
export function recordOf<F extends FieldCodecs>(
  name: string,
  fields: F,
  check?: (value: ValuesOf<F>) => string | undefined,
): ItemCodec<ValuesOf<F>> {
  const entries = Object.entries(fields)
  return {
    encode: (value, protocol) => {
      const out: unknown[] = []
      writeFields(entries, value, out, protocol)
      return out
    },
    decode: (value, context) => {
      const reader = new WireReader(value, name, context.limits, context.protocol)
      const record = readFields<F>(entries, reader)
      reader.end()
      const problem = check?.(record)
      if (problem) context.fail(problem)
      return record
    },
  }
}

// ---- fields --------------------------------------------------------------------------------------

export const integer = one(integerItem)
export const boolean = one(booleanItem)
export const text = (maxLength: number) => one(textItem(maxLength))
export const nodeId = one(nodeIdItem)
export const sid = one(sidItem)
export const time = one(timeItem)
export const optionalTime = one(optional(timeItem))
export const optionalSid = one(optional(sidItem))

/** A version: counter and origin. `allowNone` admits the "no version" (0, '') of a create's base or an epoch. */
export function version(allowNone: boolean): FieldCodec<Version> {
  return {
    write: (value, out) => void out.push(value.counter, value.origin),
    read: (reader: WireReader) => {
      const counter = integerItem.decode(reader.take(), reader)
      const origin = reader.take()
      if (allowNone && counter === 0 && origin === '') return { counter, origin }
      if (counter === 0 || counter > MAX_COUNTER || typeof origin !== 'string' || !NODE_ID_PATTERN.test(origin))
        reader.fail('expected a version')
      return { counter, origin }
    },
  }
}

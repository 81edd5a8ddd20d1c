import { applyFields, diffFields } from './field-delta.js'
import { decode, packr } from './msgpack.js'
import { findField, skipTrusted } from './session-layout.js'
import { SessionTooLargeError } from '../base/errors.js'
import type { EncodedSession, SessionLimits } from './session-codec.js'

/**
 * The store's own facts about a session (when it was created, whose it is), kept inside the
 * session's bytes under a key no application can write (`encodeSession` refuses it) and cut out by
 * `decodeSession`. Inside the bytes they travel with the session to every node, in snapshots and in
 * Redis, for free: a field that does not change is never sent again. The field comes first where
 * this node encodes the session, so that reading it costs one key comparison.
 */
export const META_KEY = '\u0000connect-peer'

/** Longest principal kept, in UTF-16 code units: longer ones are refused where they are computed. */
export const MAX_PRINCIPAL_LENGTH = 256

export interface SessionMeta {
  /** When the session was created, in ms since the epoch (`absoluteTimeout` counts from it). */
  readonly createdAt: number
  /** The user the session belongs to (the `principal` option), or null for an anonymous session. */
  readonly principal: string | null
}

/**
 * The most bytes a well-formed value can take: a two-item array header, a float64 or uint64, a
 * string header and the principal's UTF-8 (up to 3 bytes per UTF-16 unit). Bytes from a peer that
 * are longer are not decoded at all.
 */
const MAX_META_BYTES = 1 + 9 + 3 + 3 * MAX_PRINCIPAL_LENGTH

/** The value stored under `META_KEY`: a two-item array, smaller than a map. */
export function metaValue(meta: SessionMeta): [number, string | null] {
  return [meta.createdAt, meta.principal]
}

/**
 * The facts kept in `blob`, or undefined when it has none or they are malformed (bytes from a peer
 * have passed the untrusted scanner, so decoding is bounded; their shape is checked here).
 */
export function readMeta(blob: Uint8Array): SessionMeta | undefined {
  const start = findField(blob, META_KEY)
  if (start === -1) return undefined
  const end = skipTrusted(blob, start)
  if (end - start > MAX_META_BYTES) return undefined
  const value = decode(blob.subarray(start, end))
  if (!Array.isArray(value) || value.length !== 2) return undefined
  const [createdAt, principal] = value as unknown[]
  if (typeof createdAt !== 'number' || !Number.isSafeInteger(createdAt) || createdAt < 0) return undefined
  if (principal !== null && (typeof principal !== 'string' || principal.length > MAX_PRINCIPAL_LENGTH)) return undefined
  return { createdAt, principal }
}

/** `encoded` with its facts replaced by `meta`; its delta recomputed against `base`. */
export function withMeta(encoded: EncodedSession, base: Buffer, meta: SessionMeta, limits: SessionLimits): EncodedSession {
  const value = Buffer.from(packr.pack(metaValue(meta)))
  const blob = applyFields(encoded.blob, { set: [[META_KEY, value]], remove: [] })
  if (blob.length > limits.maxSessionBytes) throw new SessionTooLargeError(blob.length, limits.maxSessionBytes)
  return { ...encoded, blob, delta: diffFields(base, blob), base }
}

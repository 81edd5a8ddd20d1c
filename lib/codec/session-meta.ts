import { decode } from './msgpack.js'
import { findField, skipTrusted } from './session-layout.js'

/**
 * The store's own facts about a session (when it was created, whose it is), kept inside the
 * session's bytes under a key no application can write (`encodeSession` refuses it) and cut out by
 * `decodeSession`. Inside the bytes they travel with the session to every node, in snapshots and in
 * Redis, for free: a field that does not change is never sent again.
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
  const value = decode(blob.subarray(start, skipTrusted(blob, start)))
  if (!Array.isArray(value) || value.length !== 2) return undefined
  const [createdAt, principal] = value as unknown[]
  if (typeof createdAt !== 'number' || !Number.isSafeInteger(createdAt) || createdAt < 0) return undefined
  if (principal !== null && (typeof principal !== 'string' || principal.length > MAX_PRINCIPAL_LENGTH)) return undefined
  return { createdAt, principal }
}

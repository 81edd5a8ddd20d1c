import { Packr, type Options } from 'msgpackr'

/** msgpackr supports `skipValues` but its typings do not declare it yet. */
interface PackrOptions extends Options {
  skipValues?: unknown[]
}

const options: PackrOptions = {
  // Plain msgpack maps: no msgpackr record extension, so the decoder needs no shared structures.
  useRecords: false,
  mapsAsObjects: true,
  // `undefined` behaves as in JSON: object properties holding it are left out, array slots become nil.
  encodeUndefinedAsNil: true,
  skipValues: [undefined],
  int64AsType: 'number',
  // Decoded Buffers are copies, never views into stored or received bytes.
  copyBuffers: true,
}

/**
 * The one msgpackr configuration used for session data and for the wire. Dates use the standard
 * timestamp extension (-1), the only extension type `scanValue` lets through.
 */
export const packr = new Packr(options)

/**
 * A copy in memory of its own, for bytes the store keeps for a long time. Small Buffers normally
 * share 8 KiB slabs with whatever else was allocated at the same moment (request parsing, other
 * encodings); one long-lived session would then keep its whole slab, garbage included, alive.
 */
export function ownedCopy(bytes: Uint8Array): Buffer {
  const copy = Buffer.allocUnsafeSlow(bytes.length)
  copy.set(bytes)
  return copy
}

/** Decodes bytes that `scanValue` has already accepted. */
export function decode(bytes: Uint8Array): unknown {
  return packr.unpack(bytes)
}

/**
 * The same format, for message envelopes: Buffers decoded from it are views into the received bytes,
 * not copies. Whatever is kept beyond the message (a fetched session's bytes) must be copied with
 * `ownedCopy`; everything else is read and dropped within the message's handling.
 */
const viewPackr = new Packr({ ...options, copyBuffers: false })

/** As `decode`, with Buffers as views into `bytes` (see `viewPackr`). */
export function decodeViews(bytes: Uint8Array): unknown {
  return viewPackr.unpack(bytes)
}

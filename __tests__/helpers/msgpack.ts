import { packr } from '../../lib/codec/msgpack.js'

/** `value` in msgpack as lib/ encodes it, in a Buffer of its own (not a view into msgpackr's shared buffer). */
export function pack(value: unknown): Buffer {
  return Buffer.from(packr.pack(value))
}

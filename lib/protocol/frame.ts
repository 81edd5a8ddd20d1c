import { ProtocolError } from '../base/errors.js'

/**
 * Framing of the peer protocol. Every frame is
 *
 *     u32 length (big endian) | u8 protocol version | u8 message type | payload
 *
 * where `length` counts the version, type and payload bytes. The decoder is incremental: bytes may
 * arrive split anywhere, and a length above the cap is refused before any of the frame is buffered.
 */
export const PROTOCOL_VERSION = 2
export const FRAME_HEADER_BYTES = 6
/** The frame type of an encrypted record, which holds whole frames (see `security/record.ts`). */
export const SEALED_RECORD = 0x7f
const LENGTH_BYTES = 4

export interface Frame {
  readonly version: number
  readonly type: number
  readonly payload: Buffer
}

/** The six header bytes of a frame with `payloadLength` bytes of payload. */
export function frameHeader(type: number, payloadLength: number): Buffer {
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES)
  header.writeUInt32BE(payloadLength + 2, 0)
  header[4] = PROTOCOL_VERSION
  header[5] = type
  return header
}

export function encodeFrame(type: number, payload: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length)
  frame.writeUInt32BE(payload.length + 2, 0)
  frame[4] = PROTOCOL_VERSION
  frame[5] = type
  frame.set(payload, FRAME_HEADER_BYTES)
  return frame
}

export class FrameDecoder {
  #maxFrameBytes: number
  #chunks: Buffer[] = []
  #buffered = 0

  /** `maxFrameBytes` caps the whole frame, header included. */
  constructor(maxFrameBytes: number) {
    this.#maxFrameBytes = maxFrameBytes
  }

  /** Raises (or lowers) the cap: small during the handshake, the full size once the peer is known. */
  set maxFrameBytes(bytes: number) {
    this.#maxFrameBytes = bytes
  }

  /** Bytes received but not yet part of a complete frame. */
  get bufferedBytes(): number {
    return this.#buffered
  }

  /** Feeds bytes in; returns the frames they complete. Throws `ProtocolError` on a bad length. */
  push(chunk: Buffer): Frame[] {
    if (chunk.length > 0) {
      this.#chunks.push(chunk)
      this.#buffered += chunk.length
    }
    const frames: Frame[] = []
    while (this.#buffered >= LENGTH_BYTES) {
      const length = this.#peekLength()
      if (length < 2) throw new ProtocolError(`frame length ${length} is shorter than its header`)
      if (length + LENGTH_BYTES > this.#maxFrameBytes) {
        throw new ProtocolError(`frame of ${length + LENGTH_BYTES} bytes exceeds the ${this.#maxFrameBytes}-byte limit`)
      }
      if (this.#buffered < LENGTH_BYTES + length) break
      const bytes = this.#take(LENGTH_BYTES + length)
      frames.push({ version: bytes[4]!, type: bytes[5]!, payload: bytes.subarray(FRAME_HEADER_BYTES) })
    }
    return frames
  }

  #peekLength(): number {
    const first = this.#chunks[0]!
    if (first.length >= LENGTH_BYTES) return first.readUInt32BE(0)
    return this.#take(LENGTH_BYTES, true).readUInt32BE(0)
  }

  /** Removes `count` bytes from the front (or only reads them, with `peek`). */
  #take(count: number, peek = false): Buffer {
    const first = this.#chunks[0]!
    if (first.length >= count) {
      if (peek) return first
      this.#consume(count)
      return first.subarray(0, count)
    }
    const joined = Buffer.concat(this.#chunks, this.#buffered)
    this.#chunks = [joined]
    if (peek) return joined
    this.#consume(count)
    return joined.subarray(0, count)
  }

  #consume(count: number): void {
    const first = this.#chunks[0]!
    this.#buffered -= count
    if (first.length === count) this.#chunks.shift()
    else this.#chunks[0] = first.subarray(count)
  }
}

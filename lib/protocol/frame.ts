import { ProtocolError } from '../base/errors.js'

/**
 * Framing of the peer protocol. Every frame is
 *
 *     u32 length (big endian) | u8 protocol version | u8 message type | payload
 *
 * where `length` counts the version, type and payload bytes. The decoder is incremental: bytes may
 * arrive split anywhere, and a length above the cap is refused before any of the frame is buffered.
 *
 * A node speaks its own protocol version and the previous one; each connection agrees on one in its
 * handshake (see `cluster/handshake.ts` and docs/rolling-upgrades.md), and every frame after the
 * handshake carries that version. The handshake's own frames always carry `HANDSHAKE_FRAME_VERSION`
 * and keep their layout, so that any two versions can read each other's HELLO and REFUSE.
 */
/** The newest protocol version, the one this node proposes. 3 added `sentAt` to changes and `bytes` to digest entries. */
export const PROTOCOL_VERSION = 3
/** The protocol versions this node speaks, newest first: its own and the previous one. */
export const PROTOCOL_VERSIONS: readonly number[] = [PROTOCOL_VERSION, PROTOCOL_VERSION - 1]
/** The version byte of handshake frames (HELLO, WELCOME, AUTH, READY, REFUSE), whatever is agreed. */
export const HANDSHAKE_FRAME_VERSION = 2
export const FRAME_HEADER_BYTES = 6
/** The frame type of an encrypted record, which holds whole frames (see `security/record.ts`). */
export const SEALED_RECORD = 0x7f
const LENGTH_BYTES = 4

export interface Frame {
  readonly version: number
  readonly type: number
  readonly payload: Buffer
}

/** The six header bytes of a frame with `payloadLength` bytes of payload, in protocol `version`. */
export function frameHeader(type: number, payloadLength: number, version: number = PROTOCOL_VERSION): Buffer {
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES)
  header.writeUInt32BE(payloadLength + 2, 0)
  header[4] = version
  header[5] = type
  return header
}

export function encodeFrame(type: number, payload: Uint8Array, version: number = PROTOCOL_VERSION): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length)
  frame.writeUInt32BE(payload.length + 2, 0)
  frame[4] = version
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

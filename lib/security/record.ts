import { createCipheriv, createDecipheriv } from 'node:crypto'
import { ProtocolError } from '../base/errors.js'

/**
 * The record layer after an authenticated handshake: each write is one AES-256-GCM record. The
 * nonce is the record's sequence number in this direction, never sent: a record replayed, reordered
 * or dropped fails authentication, and the connection closes. The clear frame header (length,
 * version, type) is authenticated as additional data.
 */
export const TAG_BYTES = 16

export class RecordSealer {
  readonly #key: Buffer
  #seq = 0n

  constructor(key: Buffer) {
    this.#key = key
  }

  /** Encrypts `plaintext`; `header` is authenticated, not encrypted. Returns ciphertext || tag. */
  seal(header: Buffer, plaintext: Uint8Array): Buffer {
    return Buffer.concat(this.sealParts(header, plaintext))
  }

  /** As `seal`, as the two parts (ciphertext, tag), for a writer that writes them without joining them. */
  sealParts(header: Buffer, plaintext: Uint8Array): [Buffer, Buffer] {
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonceFor(this.#seq++))
    cipher.setAAD(header)
    const ciphertext = cipher.update(plaintext)
    cipher.final()
    return [ciphertext, cipher.getAuthTag()]
  }
}

export class RecordOpener {
  readonly #key: Buffer
  #seq = 0n

  constructor(key: Buffer) {
    this.#key = key
  }

  /** Decrypts and authenticates; throws `ProtocolError` for anything forged, replayed, reordered or cut. */
  open(header: Buffer, sealed: Buffer): Buffer {
    if (sealed.length < TAG_BYTES) throw new ProtocolError('record shorter than its authentication tag')
    const decipher = createDecipheriv('aes-256-gcm', this.#key, nonceFor(this.#seq++))
    decipher.setAAD(header)
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES))
    try {
      const plain = decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES))
      // GCM's final() adds no bytes: it only checks the tag. Nothing to join.
      decipher.final()
      return plain
    } catch (cause) {
      throw new ProtocolError('record failed authentication (wrong key, or modified, replayed, reordered or dropped data)', { cause })
    }
  }
}

function nonceFor(seq: bigint): Buffer {
  const nonce = Buffer.alloc(12)
  nonce.writeBigUInt64BE(seq, 4)
  return nonce
}

import { createHmac, hkdfSync, scrypt, timingSafeEqual } from 'node:crypto'
import { promisify } from 'node:util'

const scryptAsync = promisify(scrypt) as (password: string, salt: string, length: number, options: object) => Promise<Buffer>

/**
 * Keys derived from the shared cluster secret. The secret is stretched once with scrypt, so a
 * recorded handshake cannot be used to guess a weak secret quickly; everything else is HKDF-SHA256.
 */
export interface SecretKey {
  /** Names the secret in a HELLO without revealing it, so an acceptor knows which of its secrets to use. */
  readonly id: Buffer
  /** Proves knowledge of the secret in the handshake (HMAC-SHA256). */
  readonly auth: Buffer
  /** Root of the per-connection record keys. */
  readonly session: Buffer
  /** Root of the keys that seal snapshot files (see `storageKey`). */
  readonly storage: Buffer
}

const SALT = 'connect-peer/v1'
/** 2^15: about 100 ms and 32 MiB per secret, once at start-up. */
const SCRYPT = { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 }

/** Off the event loop: stretching takes about 100 ms. */
export async function deriveSecretKey(secret: string): Promise<SecretKey> {
  const stretched = await scryptAsync(secret, SALT, 32, SCRYPT)
  const auth = Buffer.from(hkdfSync('sha256', stretched, SALT, 'handshake proof', 32))
  const session = Buffer.from(hkdfSync('sha256', stretched, SALT, 'record keys', 32))
  const storage = Buffer.from(hkdfSync('sha256', stretched, SALT, 'storage keys', 32))
  const id = createHmac('sha256', auth).update('key id').digest().subarray(0, 8)
  return { id, auth, session, storage }
}

/** The key that seals one file, from the secret and the file's own random salt. */
export function storageKey(key: SecretKey, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', key.storage, salt, 'snapshot file', 32))
}

/** The two record keys of one connection, from the secret and both sides' fresh nonces. */
export function recordKeys(
  key: SecretKey,
  dialerNonce: Buffer,
  acceptorNonce: Buffer,
): { dialerToAcceptor: Buffer; acceptorToDialer: Buffer } {
  const salt = Buffer.concat([dialerNonce, acceptorNonce])
  return {
    dialerToAcceptor: Buffer.from(hkdfSync('sha256', key.session, salt, 'dialer to acceptor', 32)),
    acceptorToDialer: Buffer.from(hkdfSync('sha256', key.session, salt, 'acceptor to dialer', 32)),
  }
}

/** HMAC of the handshake transcript, labelled with the prover's role so a proof cannot be reflected. */
export function proof(key: SecretKey, role: 'dialer' | 'acceptor', transcript: Buffer): Buffer {
  return createHmac('sha256', key.auth).update(role).update(transcript).digest()
}

export function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}

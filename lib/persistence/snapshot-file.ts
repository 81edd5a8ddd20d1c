import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import { SnapshotError, SnapshotProblems } from '../base/errors.js'
import { decode, packr } from '../codec/msgpack.js'
import { assertWellFormed } from '../codec/msgpack-scan.js'
import { MAX_BATCH } from '../protocol/limits.js'
import { SNAPSHOT_RECORD, type Snapshot } from '../protocol/messages.js'
import { WireReader, type DecodeContext, type MessageLimits } from '../protocol/wire-fields.js'
import { storageKey, type SecretKey } from '../security/keys.js'
import { RecordOpener, RecordSealer, TAG_BYTES } from '../security/record.js'
import { NO_VERSION, type Version } from '../table/version.js'

/**
 * The snapshot file: a clear header saying whose it is and how it is sealed, then chunks of entries,
 * then an end chunk with the count. With a cluster secret every chunk is sealed with AES-256-GCM
 * under a key derived from the secret and the file's own salt, its sequence number as the nonce
 * and the header as additional data: a changed, reordered, dropped or missing chunk fails. Without
 * a secret every chunk carries a SHA-256 check of the same things instead: corruption is caught,
 * tampering by someone who can write the file is not (protect the directory).
 *
 *     "CPSN" | u8 format version | u32 header length | header (msgpack) | chunks...
 *     chunk: u32 length | u8 kind (1 entries, 2 end) | sealed or checked payload
 */
const MAGIC = Buffer.from('CPSN')
export const SNAPSHOT_FORMAT_VERSION = 1
const PREFIX_BYTES = MAGIC.length + 1 + 4
const CHUNK_HEADER_BYTES = 5
const CHUNK_ENTRIES = 1
const CHUNK_END = 2
/** Largest header accepted: names and a salt. */
const MAX_HEADER_BYTES = 4096
const CHECK_BYTES = 16

/** Whose a snapshot is, and the epoch its entries belong to. */
export interface SnapshotHeader {
  readonly cluster: string
  readonly nodeId: string
  readonly writtenAt: number
  readonly epoch: Version
  /** Which secret sealed it (see `deriveSecretKey`); null when it is only checked. */
  readonly keyId: Buffer | null
  readonly salt: Buffer
}

export interface SnapshotLimits extends MessageLimits {
  /** Largest chunk accepted when reading. */
  readonly maxChunkBytes: number
}

/** Seals or checks chunks, in order. */
interface ChunkCodec {
  /** The chunk's body as parts to write one after the other: sealed (ciphertext, tag) or checked (payload, check). */
  seal(kind: number, payload: Uint8Array): Buffer[]
  open(kind: number, payload: Buffer): Buffer
}

function chunkCodec(header: Buffer, key: SecretKey | undefined, salt: Buffer): ChunkCodec {
  if (key) {
    const secret = storageKey(key, salt)
    const sealer = new RecordSealer(secret)
    const opener = new RecordOpener(secret)
    return {
      seal: (kind, payload) => sealer.sealParts(Buffer.concat([header, Buffer.of(kind)]), payload),
      open: (kind, sealed) => opener.open(Buffer.concat([header, Buffer.of(kind)]), sealed),
    }
  }
  let sealed = 0
  let opened = 0
  const check = (index: number, kind: number, payload: Uint8Array) => {
    const counter = Buffer.alloc(8)
    counter.writeBigUInt64BE(BigInt(index))
    return createHash('sha256').update(header).update(counter).update(Buffer.of(kind)).update(payload).digest().subarray(0, CHECK_BYTES)
  }
  return {
    seal: (kind, payload) => [Buffer.from(payload), check(sealed++, kind, payload)],
    open: (kind, checked) => {
      const payload = checked.subarray(0, checked.length - CHECK_BYTES)
      if (checked.length < CHECK_BYTES || !check(opened++, kind, payload).equals(checked.subarray(checked.length - CHECK_BYTES))) {
        throw new Error('a chunk does not match its check')
      }
      return payload
    },
  }
}

/** Writes one chunk: its prefix (length, kind), then its sealed or checked body, without joining them. */
async function writeChunk(file: FileHandle, codec: ChunkCodec, kind: number, payload: Uint8Array): Promise<void> {
  const body = codec.seal(kind, payload)
  const prefix = Buffer.alloc(CHUNK_HEADER_BYTES)
  prefix.writeUInt32BE(body.reduce((sum, part) => sum + part.length, 0) + 1, 0)
  prefix[4] = kind
  await file.writev([prefix, ...body])
}

/**
 * Writes a snapshot to an open file, chunk by chunk: `entries` are batched into chunks of about
 * `chunkBytes`, and after each chunk the event loop runs (a write of 100,000 sessions never holds
 * it for more than one chunk's encoding and sealing). Returns how many entries were written.
 */
export async function writeSnapshot(
  file: FileHandle,
  header: Omit<SnapshotHeader, 'keyId' | 'salt'>,
  key: SecretKey | undefined,
  entries: AsyncIterable<readonly Snapshot[]> | Iterable<readonly Snapshot[]>,
): Promise<number> {
  const salt = randomBytes(16)
  const headerBytes = Buffer.from(
    packr.pack([header.cluster, header.nodeId, header.writtenAt, header.epoch.counter, header.epoch.origin, key?.id ?? null, salt]),
  )
  const prefix = Buffer.alloc(PREFIX_BYTES)
  MAGIC.copy(prefix)
  prefix[MAGIC.length] = SNAPSHOT_FORMAT_VERSION
  prefix.writeUInt32BE(headerBytes.length, MAGIC.length + 1)
  const codec = chunkCodec(Buffer.concat([prefix, headerBytes]), key, salt)
  await file.write(Buffer.concat([prefix, headerBytes]))
  let count = 0
  for await (const batch of entries) {
    if (batch.length === 0) continue
    // packr's result is a view into its own buffer, good until its next pack: sealed at once, before that.
    await writeChunk(file, codec, CHUNK_ENTRIES, packr.pack(batch.map((entry) => SNAPSHOT_RECORD.encode(entry))))
    count += batch.length
  }
  await writeChunk(file, codec, CHUNK_END, packr.pack(count))
  return count
}

/**
 * Reads and checks a whole snapshot. Throws `SnapshotError` with the reason; nothing is returned
 * unless every chunk checked out and the end chunk was there.
 */
export async function readSnapshot(
  path: string,
  expected: { cluster: string; nodeId: string },
  keys: readonly SecretKey[],
  limits: SnapshotLimits,
): Promise<{ header: SnapshotHeader; entries: Snapshot[] }> {
  const fail = (reason: (typeof SnapshotProblems)[keyof typeof SnapshotProblems], detail: string, cause?: unknown): never => {
    throw new SnapshotError(reason, path, detail, { cause })
  }
  const stream = createReadStream(path, { highWaterMark: 256 * 1024 })
  let buffered: Buffer = Buffer.alloc(0)
  let header: SnapshotHeader | undefined
  let codec: ChunkCodec | undefined
  let ended = false
  const entries: Snapshot[] = []
  const entryContext: DecodeContext = { limits, fail: (reason) => fail(SnapshotProblems.CORRUPT, `entry ${entries.length + 1}: ${reason}`) }
  try {
    for await (const data of stream) {
      buffered = buffered.length === 0 ? (data as Buffer) : Buffer.concat([buffered, data as Buffer])
      if (!header) {
        if (buffered.length < PREFIX_BYTES) continue
        if (!buffered.subarray(0, MAGIC.length).equals(MAGIC)) fail(SnapshotProblems.FORMAT, 'not a connect-peer snapshot')
        const version = buffered[MAGIC.length]
        if (version !== SNAPSHOT_FORMAT_VERSION)
          fail(SnapshotProblems.FORMAT, `format version ${version}, this release reads ${SNAPSHOT_FORMAT_VERSION}`)
        const length = buffered.readUInt32BE(MAGIC.length + 1)
        if (length > MAX_HEADER_BYTES) fail(SnapshotProblems.CORRUPT, `a header of ${length} bytes`)
        if (buffered.length < PREFIX_BYTES + length) continue
        const raw = buffered.subarray(0, PREFIX_BYTES + length)
        header = parseHeader(buffered.subarray(PREFIX_BYTES, PREFIX_BYTES + length), fail)
        if (header.cluster !== expected.cluster || header.nodeId !== expected.nodeId) {
          fail(
            SnapshotProblems.FOREIGN,
            `written by node "${header.nodeId}" of cluster "${header.cluster}", not "${expected.nodeId}" of "${expected.cluster}"`,
          )
        }
        const key = header.keyId ? keys.find((candidate) => candidate.id.equals(header!.keyId!)) : undefined
        if (header.keyId && !key)
          fail(
            SnapshotProblems.UNDECRYPTABLE,
            keys.length ? 'sealed with a secret this node does not have' : 'sealed with a secret, and this node has none',
          )
        codec = chunkCodec(Buffer.from(raw), key, header.salt)
        buffered = buffered.subarray(PREFIX_BYTES + length)
      }
      while (buffered.length >= CHUNK_HEADER_BYTES) {
        const length = buffered.readUInt32BE(0)
        if (length < 1 + TAG_BYTES || length > limits.maxChunkBytes) fail(SnapshotProblems.CORRUPT, `a chunk of ${length} bytes`)
        if (buffered.length < 4 + length) break
        if (ended) fail(SnapshotProblems.CORRUPT, 'data after the end')
        const kind = buffered[4]!
        let payload: Buffer
        try {
          payload = codec!.open(kind, buffered.subarray(CHUNK_HEADER_BYTES, 4 + length))
        } catch (cause) {
          fail(
            SnapshotProblems.CORRUPT,
            `chunk ${entries.length === 0 ? 'at the start' : `after ${entries.length} entries`} does not check out`,
            cause,
          )
        }
        buffered = buffered.subarray(4 + length)
        if (kind === CHUNK_END) {
          const count = decodeChecked(payload!, limits, fail)
          if (count !== entries.length)
            fail(SnapshotProblems.CORRUPT, `the end says ${String(count)} entries, the file holds ${entries.length}`)
          ended = true
        } else if (kind === CHUNK_ENTRIES) {
          const items = decodeChecked(payload!, limits, fail)
          if (!Array.isArray(items)) fail(SnapshotProblems.CORRUPT, 'a chunk that is not a list')
          for (const item of items as unknown[]) entries.push(SNAPSHOT_RECORD.decode(item, entryContext))
        } else {
          fail(SnapshotProblems.CORRUPT, `a chunk of unknown kind ${kind}`)
        }
      }
    }
  } catch (error) {
    if (error instanceof SnapshotError) throw error
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') fail(SnapshotProblems.MISSING, 'no snapshot yet', error)
    if (code) fail(SnapshotProblems.IO, (error as Error).message, error)
    fail(SnapshotProblems.CORRUPT, (error as Error).message, error)
  } finally {
    stream.destroy()
  }
  if (!header) fail(SnapshotProblems.TRUNCATED, 'the file ends inside its header')
  if (!ended) fail(SnapshotProblems.TRUNCATED, `the file ends after ${entries.length} entries, before its end chunk`)
  return { header: header!, entries }
}

function parseHeader(bytes: Buffer, fail: (reason: 'corrupt', detail: string) => never): SnapshotHeader {
  let fields: unknown
  try {
    assertWellFormed(bytes, { maxDepth: 2, maxContainerLength: 16 })
    fields = decode(bytes)
  } catch (cause) {
    return fail('corrupt', `an unreadable header (${(cause as Error).message})`)
  }
  const reader = new WireReader(fields, 'snapshot header', {
    session: { maxSessionBytes: 0, maxDepth: 1, maxContainerLength: 0 },
    maxBatch: 0,
  })
  try {
    const cluster = reader.take()
    const nodeId = reader.take()
    const writtenAt = reader.take()
    const counter = reader.take()
    const origin = reader.take()
    const keyId = reader.take()
    const salt = reader.take()
    reader.end()
    const valid =
      typeof cluster === 'string' &&
      typeof nodeId === 'string' &&
      typeof writtenAt === 'number' &&
      typeof counter === 'number' &&
      typeof origin === 'string' &&
      (keyId === null || Buffer.isBuffer(keyId)) &&
      Buffer.isBuffer(salt)
    if (!valid) return fail('corrupt', 'a header of the wrong shape')
    const epoch = counter === 0 ? NO_VERSION : { counter, origin }
    return { cluster, nodeId, writtenAt, epoch, keyId, salt }
  } catch (cause) {
    return fail('corrupt', `a header of the wrong shape (${(cause as Error).message})`)
  }
}

/** msgpack from a chunk that checked out: still bounded, as anything read from a file. */
function decodeChecked(payload: Buffer, limits: SnapshotLimits, fail: (reason: 'corrupt', detail: string) => never): unknown {
  try {
    assertWellFormed(payload, { maxDepth: 4, maxContainerLength: Math.max(MAX_BATCH, limits.maxBatch) })
    return decode(payload)
  } catch (cause) {
    return fail('corrupt', `a chunk that is not valid msgpack (${(cause as Error).message})`)
  }
}

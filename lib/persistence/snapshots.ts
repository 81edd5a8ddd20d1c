import { mkdir, open, rename } from 'node:fs/promises'
import path from 'node:path'
import { debugFor } from '../base/debug.js'
import { SnapshotError, SnapshotProblems } from '../base/errors.js'
import type { Snapshot } from '../protocol/messages.js'
import { deriveSecretKey, type SecretKey } from '../security/keys.js'
import type { SessionTable } from '../table/session-table.js'
import { versionOf } from '../table/version.js'
import type { PersistConfig } from './persist-options.js'
import { readSnapshot, writeSnapshot } from './snapshot-file.js'
import type { SessionLimits } from '../codec/session-codec.js'
import { MAX_BATCH } from '../protocol/limits.js'

const debug = debugFor('persistence')

/** Entries per chunk of a snapshot, at most; a chunk is also cut at about `CHUNK_BYTES`. */
const CHUNK_ENTRIES = 1000
const CHUNK_BYTES = 64 * 1024

export interface SnapshotsContext {
  readonly cluster: string
  readonly nodeId: string
  /** The cluster secrets; the first seals, any opens. Empty: chunks are checked, not sealed. */
  readonly secrets: readonly string[]
  /** The store's own limits, which every entry read back must meet. */
  readonly session: SessionLimits
  /** A snapshot could not be read or written; the store goes on (from its peers, or its last snapshot). */
  warn(error: SnapshotError): void
  /** A snapshot was written. */
  written(info: { file: string; entries: number; durationMs: number }): void
}

/**
 * A node's snapshots: loaded once before it serves, written every `interval` when something
 * changed, and by `close()`. Writes are atomic (a temporary file, fsync, rename, fsync of the
 * directory), so a crash leaves the previous snapshot or the new one, never half of one. A bad file
 * is never deleted: it is moved aside (`.bad-<time>`) and reported.
 */
export class Snapshots {
  readonly #config: PersistConfig
  readonly #context: SnapshotsContext
  readonly #file: string
  #keys: Promise<SecretKey[]> | undefined
  #timer: NodeJS.Timeout | undefined
  #writing: Promise<void> | undefined
  #writtenAt = -1

  constructor(config: PersistConfig, context: SnapshotsContext) {
    this.#config = config
    this.#context = context
    this.#file = path.join(config.dir, `${context.nodeId}.snapshot`)
  }

  /** Where the snapshot lives. */
  get file(): string {
    return this.#file
  }

  /**
   * Loads the snapshot into `table` (which must be empty): expired sessions and forgotten tombstones
   * are left out. A missing or bad snapshot leaves the table empty and is reported through `warn`.
   */
  async load(table: SessionTable): Promise<number> {
    const started = Date.now()
    try {
      const session = this.#context.session
      // A chunk holds up to CHUNK_BYTES of entries plus the one that crossed it, as large as a session may be.
      const limits = { session, maxBatch: MAX_BATCH, maxChunkBytes: CHUNK_BYTES + session.maxSessionBytes + CHUNK_ENTRIES * 2048 }
      const { header, entries } = await readSnapshot(this.#file, this.#context, await this.#secretKeys(), limits)
      table.clear(header.epoch)
      const now = Date.now()
      let loaded = 0
      for (const entry of entries) if (table.applySnapshot(entry.sid, entry, now) !== 'stale') loaded += 1
      this.#writtenAt = table.changes
      debug('loaded %d of %d entries from %s in %d ms', loaded, entries.length, this.#file, Date.now() - started)
      return loaded
    } catch (error) {
      if (!(error instanceof SnapshotError)) throw error
      this.#context.warn(error.reason === SnapshotProblems.MISSING ? error : await this.#moveAside(error))
      return 0
    }
  }

  /** Writes a snapshot every `interval` from now on, when something changed. */
  start(table: SessionTable): void {
    this.#timer = setInterval(() => void this.save(table), this.#config.interval)
    this.#timer.unref()
  }

  /**
   * Writes a snapshot now (unless nothing changed since the last one), waiting for one already
   * being written first. Never rejects: a failure is reported through `warn`, the previous snapshot stays.
   */
  async save(table: SessionTable, force = false): Promise<void> {
    while (this.#writing) await this.#writing
    if (!force && table.changes === this.#writtenAt) return
    this.#writing = this.#write(table).finally(() => (this.#writing = undefined))
    await this.#writing
  }

  /** Stops the timer; a last snapshot is the caller's `save()`. */
  stop(): void {
    clearInterval(this.#timer)
  }

  async #write(table: SessionTable): Promise<void> {
    const started = Date.now()
    const changes = table.changes
    const temporary = `${this.#file}.tmp-${process.pid}-${started}`
    try {
      await mkdir(this.#config.dir, { recursive: true, mode: 0o700 })
      const file = await open(temporary, 'wx', 0o600)
      let count: number
      try {
        const header = { cluster: this.#context.cluster, nodeId: this.#context.nodeId, writtenAt: started, epoch: versionOf(table.epoch) }
        count = await writeSnapshot(file, header, (await this.#secretKeys())[0], batches(table))
        await file.sync()
      } finally {
        await file.close()
      }
      await rename(temporary, this.#file)
      const directory = await open(this.#config.dir, 'r')
      try {
        await directory.sync()
      } finally {
        await directory.close()
      }
      this.#writtenAt = changes
      debug('wrote %d entries to %s in %d ms', count, this.#file, Date.now() - started)
      this.#context.written({ file: this.#file, entries: count, durationMs: Date.now() - started })
    } catch (error) {
      await rename(temporary, `${temporary}.failed`).catch(() => undefined)
      this.#context.warn(new SnapshotError(SnapshotProblems.IO, this.#file, `not written: ${(error as Error).message}`, { cause: error }))
    }
  }

  /** A bad snapshot is kept for a look, under a name that is never loaded. */
  async #moveAside(error: SnapshotError): Promise<SnapshotError> {
    const aside = `${this.#file}.bad-${new Date().toISOString().replace(/[:.]/g, '-')}`
    try {
      await rename(this.#file, aside)
    } catch {
      return error
    }
    return new SnapshotError(error.reason, aside, `${error.message.replace(/^Snapshot \S+ \([^)]*\): /, '')}; moved aside`, {
      cause: error.cause,
    })
  }

  #secretKeys(): Promise<SecretKey[]> {
    this.#keys ??= Promise.all(this.#context.secrets.map(deriveSecretKey))
    return this.#keys
  }
}

/**
 * The table's entries in chunks, yielding to the event loop between chunks: requests go on while a
 * snapshot of a large table is written. Expired entries are left out; entries changed while the
 * write runs are written as they are when their turn comes.
 */
async function* batches(table: SessionTable): AsyncGenerator<Snapshot[]> {
  let batch: Snapshot[] = []
  let bytes = 0
  for (const [sid, entry] of table.entries()) {
    if (entry.expiresAt <= Date.now()) continue
    batch.push({
      sid,
      version: versionOf(entry),
      expiresAt: entry.expiresAt,
      cookieExpires: entry.cookieExpires,
      blob: entry.blob,
      movedTo: entry.movedTo,
      rebinds: entry.rebinds,
    })
    bytes += sid.length + (entry.blob?.length ?? 0) + 48
    if (batch.length >= CHUNK_ENTRIES || bytes >= CHUNK_BYTES) {
      yield batch
      batch = []
      bytes = 0
      await new Promise((resolve) => setImmediate(resolve))
    }
  }
  yield batch
}

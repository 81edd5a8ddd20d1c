import { isAbsolute, resolve } from 'node:path'
import { InvalidOptionError } from '../base/errors.js'
import type { OptionTable } from '../base/option-spec.js'

/** Where and how often a node writes its snapshot. */
export interface PersistSpec {
  /** The directory the snapshot lives in (created if missing); one file per node id. */
  dir: string
  /**
   * Seconds between snapshots while running (one is also written by `close()`). A snapshot is only
   * written when something changed since the last one.
   * @default 30
   */
  interval?: number
}

/** Options of the snapshots that let sessions outlive every process. */
export interface PersistOptions {
  /**
   * Keep sessions across restarts: a directory (or `{ dir, interval }`) where this node writes a
   * snapshot of its sessions and tombstones on `close()` and every `interval` seconds, and from
   * which it loads them before it serves. Sealed with a key derived from the cluster `secret` when
   * there is one. Wire `close()` to SIGTERM so a stop writes a last one.
   * @default undefined (no snapshots)
   */
  persist?: string | PersistSpec
}

/** Snapshot settings after validation. */
export interface PersistConfig {
  /** Absolute path of the directory. */
  readonly dir: string
  /** Milliseconds between snapshots. */
  readonly interval: number
}

const DEFAULT_INTERVAL_SECONDS = 30

export const PERSIST_OPTIONS = {
  persist: { parse: parsePersist },
} as const satisfies OptionTable<PersistOptions>

function parsePersist(value: unknown, name: string): PersistConfig | undefined {
  if (value === undefined) return undefined
  const expected = "a directory, or { dir, interval } (interval in seconds, such as { dir: '/var/lib/app/sessions', interval: 30 })"
  const spec = typeof value === 'string' ? { dir: value } : value
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw new InvalidOptionError(name, expected, value)
  for (const key of Object.keys(spec)) {
    if (key !== 'dir' && key !== 'interval') throw new InvalidOptionError(`${name}.${key}`, 'dir or interval', key)
  }
  const { dir, interval = DEFAULT_INTERVAL_SECONDS } = spec as { dir?: unknown; interval?: unknown }
  if (typeof dir !== 'string' || dir.length === 0) throw new InvalidOptionError(`${name}.dir`, 'a directory path', dir)
  if (typeof interval !== 'number' || !Number.isFinite(interval) || interval < 0.01 || interval > 86_400) {
    throw new InvalidOptionError(`${name}.interval`, 'a number of seconds from 0.01 to 86400', interval)
  }
  return { dir: isAbsolute(dir) ? dir : resolve(dir), interval: Math.round(interval * 1000) }
}

import type { SyncProgress } from 'connect-peer'
import { plural } from './plural.js'

/** Width of the bar, in characters. */
const BAR_WIDTH = 24

/** How far a transfer is, in whole percent (of sessions; of bytes when the peer's digest gave no sessions yet). */
export function percentOf(progress: SyncProgress): number {
  const { sessions, expectedSessions, bytes, expectedBytes } = progress
  if (expectedSessions > 0) return Math.floor((100 * Math.min(sessions, expectedSessions)) / expectedSessions)
  return expectedBytes > 0 ? Math.floor((100 * Math.min(bytes, expectedBytes)) / expectedBytes) : 100
}

/**
 * `receiving from was1 [##########--------------]  42% 8400/20000 sessions, 1.7/4.0 MB`; the bar
 * shows at least `atLeast` percent (what it showed before: the expected total grows while the
 * peer's digest streams in, and a bar should not move back).
 */
export function renderProgress(progress: SyncProgress, atLeast = 0): string {
  const percent = Math.max(atLeast, percentOf(progress))
  const filled = Math.round((BAR_WIDTH * percent) / 100)
  const bar = `${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}`
  const sessions = `${progress.sessions}/${plural(progress.expectedSessions, 'session')}`
  const bytes = `${megabytes(progress.bytes)}/${megabytes(progress.expectedBytes)} MB`
  return `receiving from ${progress.peer} [${bar}] ${String(percent).padStart(3)}% ${sessions}, ${bytes}`
}

function megabytes(bytes: number): string {
  return (bytes / 1_000_000).toFixed(1)
}

/**
 * Prints the progress of state transfers as they come (`update`, from `sync:progress`): on a
 * terminal, one line per transfer that rewrites itself (`\r`) and is ended by `done` (from `sync`);
 * elsewhere (a log, a pipe), a line at every tenth of the way.
 */
export class ProgressPrinter {
  readonly #write: (text: string) => void
  readonly #tty: boolean
  readonly #prefix: string
  /** Per peer: the percent last printed; a line is open on a terminal while it is here. */
  readonly #printed = new Map<string, number>()

  constructor(options: { write: (text: string) => void; tty: boolean; prefix?: string }) {
    this.#write = options.write
    this.#tty = options.tty
    this.#prefix = options.prefix ?? ''
  }

  update(progress: SyncProgress): void {
    const before = this.#printed.get(progress.peer)
    const percent = Math.max(before ?? 0, percentOf(progress))
    const line = `${this.#prefix}${renderProgress(progress, percent)}`
    if (this.#tty) {
      // Cleared to the end of the line: the next text may be shorter.
      this.#write(`\r${line}\x1b[K`)
      this.#printed.set(progress.peer, percent)
      return
    }
    // Elsewhere, a line at each tenth of the way (the first one included).
    if (before !== undefined && Math.floor(percent / 10) <= Math.floor(before / 10)) return
    this.#printed.set(progress.peer, percent)
    this.#write(`${line}\n`)
  }

  /** The transfer from `peer` is over: on a terminal, its line is ended. */
  done(peer: string): void {
    if (this.#tty && this.#printed.has(peer)) this.#write('\n')
    this.#printed.delete(peer)
  }
}

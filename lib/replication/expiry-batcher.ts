import type { ExpiryChange } from '../protocol/messages.js'

/**
 * Collects expiry changes (touches) and hands them over at most once per interval, the latest
 * change per session only. A busy server then sends one small frame per interval, never one per request.
 */
export class ExpiryBatcher {
  readonly #intervalMs: number
  readonly #maxBatch: number
  readonly #send: (changes: ExpiryChange[]) => void
  readonly #pending = new Map<string, ExpiryChange>()
  #timer: NodeJS.Timeout | undefined

  constructor(intervalMs: number, maxBatch: number, send: (changes: ExpiryChange[]) => void) {
    this.#intervalMs = intervalMs
    this.#maxBatch = maxBatch
    this.#send = send
  }

  get size(): number {
    return this.#pending.size
  }

  add(change: ExpiryChange): void {
    // Delete first so a re-touched session moves to the end: Map order is insertion order.
    this.#pending.delete(change.sid)
    this.#pending.set(change.sid, change)
    this.#timer ??= setTimeout(() => this.flush(), this.#intervalMs)
  }

  /** Forgets a pending change: the session got a newer version, which carries its own expiry. */
  drop(sid: string): void {
    this.#pending.delete(sid)
  }

  /** Hands over everything pending now, in batches of at most `maxBatch`. */
  flush(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    let batch: ExpiryChange[] = []
    for (const change of this.#pending.values()) {
      batch.push(change)
      if (batch.length === this.#maxBatch) {
        this.#send(batch)
        batch = []
      }
    }
    this.#pending.clear()
    if (batch.length > 0) this.#send(batch)
  }

  stop(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#pending.clear()
  }
}

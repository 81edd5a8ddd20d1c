/**
 * Lets one report per key through per window, and counts the rest, so a peer (or a stranger)
 * sending garbage in a loop costs one log line per window instead of one per connection.
 */
export class RateLimiter {
  readonly #windowMs: number
  readonly #keys = new Map<string, { until: number; suppressed: number }>()

  constructor(windowMs: number) {
    this.#windowMs = windowMs
  }

  /**
   * False when `key` was reported within the window (the report is counted, not made); otherwise
   * the number of reports suppressed since the last one made.
   */
  take(key: string, now = Date.now()): number | false {
    const entry = this.#keys.get(key)
    if (entry && now < entry.until) {
      entry.suppressed += 1
      return false
    }
    if (this.#keys.size > 1000) this.#prune(now)
    this.#keys.set(key, { until: now + this.#windowMs, suppressed: 0 })
    return entry?.suppressed ?? 0
  }

  /** Forgets expired keys, so many distinct strangers cannot grow the map without bound. */
  #prune(now: number): void {
    for (const [key, entry] of this.#keys) if (now >= entry.until) this.#keys.delete(key)
  }
}

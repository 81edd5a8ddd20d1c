/**
 * What a child process has said so far (lines of output, IPC messages), kept in order, so a test
 * can wait for something to be said, whether it already was or is yet to come, instead of sleeping.
 */
export class EventLog<T> {
  readonly entries: T[] = []
  readonly #waiters = new Set<{ match: (entry: T) => boolean; resolve: (entry: T) => void }>()

  /** Records an entry and resolves every waiter it matches. */
  push(entry: T): void {
    this.entries.push(entry)
    for (const waiter of this.#waiters) {
      if (waiter.match(entry)) {
        this.#waiters.delete(waiter)
        waiter.resolve(entry)
      }
    }
  }

  /**
   * Resolves with the first entry from index `from` on (already recorded, or yet to come) that
   * matches; after `timeoutMs` rejects with the error `explain` builds, so a failure can say what
   * was seen instead.
   */
  waitFor(match: (entry: T) => boolean, timeoutMs: number, from: number, explain: () => string): Promise<T> {
    const seen = this.entries.slice(from).find(match)
    if (seen !== undefined) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const waiter = {
        match,
        resolve: (entry: T) => {
          clearTimeout(timer)
          resolve(entry)
        },
      }
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter)
        reject(new Error(explain()))
      }, timeoutMs)
      this.#waiters.add(waiter)
    })
  }
}

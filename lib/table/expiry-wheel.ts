/**
 * Finds expired ids without a timer per id and without scanning every id: ids are kept in buckets of
 * `resolutionMs` by expiry time, and a sweep visits only the buckets that came due since the last
 * sweep. Adding, moving and removing an id are O(1).
 *
 * A bucket only says "look at this id then"; the caller decides whether the id really expired, so
 * a stale bucket membership can never delete a live session.
 */
export class ExpiryWheel {
  readonly #resolutionMs: number
  readonly #buckets = new Map<number, Set<string>>()
  /** Every bucket up to and including this one has been swept. */
  #sweptUpTo: number

  constructor(resolutionMs: number, now: number) {
    this.#resolutionMs = resolutionMs
    this.#sweptUpTo = Math.floor(now / resolutionMs)
  }

  /** Number of (id, bucket) memberships; for tests and stats. */
  get size(): number {
    let size = 0
    for (const bucket of this.#buckets.values()) size += bucket.size
    return size
  }

  add(id: string, expiresAt: number): void {
    // A bucket that was already swept would never be visited again: use the next one instead.
    const key = Math.max(this.#bucketOf(expiresAt), this.#sweptUpTo + 1)
    let bucket = this.#buckets.get(key)
    if (!bucket) {
      bucket = new Set()
      this.#buckets.set(key, bucket)
    }
    bucket.add(id)
  }

  remove(id: string, expiresAt: number): void {
    const key = Math.max(this.#bucketOf(expiresAt), this.#sweptUpTo + 1)
    const bucket = this.#buckets.get(key)
    if (!bucket) return
    bucket.delete(id)
    if (bucket.size === 0) this.#buckets.delete(key)
  }

  move(id: string, fromExpiresAt: number, toExpiresAt: number): void {
    if (this.#bucketOf(fromExpiresAt) === this.#bucketOf(toExpiresAt)) return
    this.remove(id, fromExpiresAt)
    this.add(id, toExpiresAt)
  }

  /** Hands every id whose bucket came due by `now` to `visit`, and forgets those buckets. */
  sweep(now: number, visit: (id: string) => void): void {
    const dueUpTo = Math.floor(now / this.#resolutionMs)
    if (dueUpTo <= this.#sweptUpTo) return
    const due: number[] = []
    if (dueUpTo - this.#sweptUpTo <= this.#buckets.size) {
      for (let key = this.#sweptUpTo + 1; key <= dueUpTo; key++) if (this.#buckets.has(key)) due.push(key)
    } else {
      // After a long pause (or a clock jump) there are fewer buckets than elapsed steps.
      for (const key of this.#buckets.keys()) if (key <= dueUpTo) due.push(key)
    }
    this.#sweptUpTo = dueUpTo
    for (const key of due) {
      const bucket = this.#buckets.get(key)!
      this.#buckets.delete(key)
      for (const id of bucket) visit(id)
    }
  }

  clear(): void {
    this.#buckets.clear()
  }

  #bucketOf(expiresAt: number): number {
    return Math.ceil(expiresAt / this.#resolutionMs)
  }
}

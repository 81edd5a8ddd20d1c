/**
 * When to try reconnecting to a peer: a function of the attempt number (1 for the first retry) that
 * returns a delay in ms, or null to stop trying. A user's `close()` never reconnects, whatever this says.
 */
export type RetryPolicy = (attempt: number) => number | null

/**
 * Exponential backoff from `baseMs`, doubled each attempt up to `capMs`, with "full jitter": the
 * delay is random between half the step and the step, so peers that lost each other at the same
 * moment do not all retry in lockstep. Never gives up: a fixed peer is expected back.
 *
 * @example
 * ```ts
 * new PeerStore(peers, { nodeId: 'was1', retry: exponentialBackoff(200, 10_000) })
 * ```
 */
export function exponentialBackoff(baseMs = 100, capMs = 5000, random: () => number = Math.random): RetryPolicy {
  return (attempt) => {
    const step = Math.min(capMs, baseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30))
    return Math.round(step / 2 + (random() * step) / 2)
  }
}

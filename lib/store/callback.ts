/** The callback style express-session uses; `undefined` when the caller wants a promise instead. */
export type Callback<T> = ((error: unknown, result?: T) => void) | undefined

/**
 * Runs `work` and reports its outcome either through `callback` or as the returned promise.
 *
 * The callback is called exactly once, always asynchronously (never in the caller's tick), and
 * outside the promise chain: an exception thrown by the callback surfaces as an uncaught exception
 * like in any callback API, instead of being swallowed or calling the callback a second time.
 */
export function settle<T>(work: () => T | Promise<T>, callback: Callback<T>): Promise<T> | undefined {
  const promise = new Promise<T>((resolve) => resolve(work()))
  if (!callback) return promise
  promise.then(
    (result) => process.nextTick(callback, null, result),
    (error: unknown) => process.nextTick(callback, error),
  )
  return undefined
}

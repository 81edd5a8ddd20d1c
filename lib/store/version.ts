/**
 * Every stored session and tombstone carries a version: a counter that each change raises by one,
 * and the id of the node that made the change.
 *
 * The order, applied the same way on every node so concurrent writes end the same everywhere:
 * 1. a tombstone (a destroyed session) beats any live version: a destroy is final;
 * 2. otherwise the higher counter wins;
 * 3. on equal counters (two nodes changed the same version at once) the greater node id wins.
 */
export interface Version {
  readonly counter: number
  readonly origin: string
}

/** The version of a session that does not exist yet; a create is a change made on top of it. */
export const NO_VERSION: Version = Object.freeze({ counter: 0, origin: '' })

/** Negative when `a` is older than `b`, zero when equal, positive when newer. */
export function compareVersions(a: Version, aDestroyed: boolean, b: Version, bDestroyed: boolean): number {
  if (aDestroyed !== bDestroyed) return aDestroyed ? 1 : -1
  if (a.counter !== b.counter) return a.counter - b.counter
  return a.origin < b.origin ? -1 : a.origin > b.origin ? 1 : 0
}

export function sameVersion(a: Version, b: Version): boolean {
  return a.counter === b.counter && a.origin === b.origin
}

/**
 * Every stored session and tombstone carries a version: a counter that each change raises by one,
 * and the id of the node that made the change.
 *
 * The order, applied the same way on every node so concurrent changes end the same everywhere:
 * 1. a destroyed session's tombstone beats any other version: a destroy is final;
 * 2. otherwise the higher counter wins (a session moved to a new id by a rebind counts as a version
 *    of the old id like any write: a concurrent write with a higher version undoes the move);
 * 3. on equal counters (two nodes changed the same version at once) the greater node id wins.
 */
export interface Version {
  readonly counter: number
  readonly origin: string
}

/** The version of a session that does not exist yet; a create is a change made on top of it. */
export const NO_VERSION: Version = Object.freeze({ counter: 0, origin: '' })

/**
 * The highest counter accepted from a peer. Far beyond any real session (a write a millisecond for
 * thirty years), and far enough below 2^53 that raising it stays an exact integer on every node.
 */
export const MAX_COUNTER = 2 ** 40

/** Negative when `a` is older than `b`, zero when equal, positive when newer. */
export function compareVersions(a: Version, aDestroyed: boolean, b: Version, bDestroyed: boolean): number {
  if (aDestroyed !== bDestroyed) return aDestroyed ? 1 : -1
  if (a.counter !== b.counter) return a.counter - b.counter
  return a.origin < b.origin ? -1 : a.origin > b.origin ? 1 : 0
}

export function sameVersion(a: Version, b: Version): boolean {
  return a.counter === b.counter && a.origin === b.origin
}

/** A version of its own, for keeping after the entry it was read from changes. */
export function versionOf(entry: Version): Version {
  return { counter: entry.counter, origin: entry.origin }
}

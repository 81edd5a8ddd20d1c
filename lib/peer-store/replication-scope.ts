import { AsyncLocalStorage } from 'node:async_hooks'

/**
 * Marks work that must cause no replication traffic: the requests the static-asset filter matches
 * (Tomcat's ReplicationValve). Inside the scope, the store still reads and writes its own memory,
 * but sends nothing to its peers; a later, unfiltered change of the same session carries everything
 * (a peer that missed a version fetches the whole session).
 */
const scope = new AsyncLocalStorage<true>()

/** Runs `work` (and everything it starts, callbacks and promises included) without replication. */
export function withoutReplication<T>(work: () => T): T {
  return scope.run(true, work)
}

export function replicationSuppressed(): boolean {
  return scope.getStore() === true
}

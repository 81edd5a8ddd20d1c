import { AsyncLocalStorage } from 'node:async_hooks'

/**
 * Marks the work of one request, for frameworks whose session middleware gives the store nothing
 * that ties a save to the read it follows (@fastify/session): inside the scope, the store notes
 * what the request read and merges its save with what others stored since (see `PeerStore.set`).
 */
const scope = new AsyncLocalStorage<object>()

/** Runs `work` (and everything it starts) as one request, with a token of its own. */
export function asOneRequest<T>(work: () => T): T {
  return scope.run({}, work)
}

/** The token of the request running now, if an adapter marked one. */
export function currentRequest(): object | undefined {
  return scope.getStore()
}

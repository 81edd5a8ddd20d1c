import { InvalidOptionError } from '../base/errors.js'
import type { Measurement } from '../replication/replication.js'

/**
 * What the framework adapters (Express, Koa, Fastify) and the monitoring entry need from a PeerStore beyond the Store
 * contract. Kept off the public class: users reach it only through the adapters.
 */
export interface StoreInternals {
  /**
   * The route this node's session ids carry: its node id. Undefined for a single store that was never
   * given one (no peers, no Redis): its ids carry no route, and the adapters set no route cookie.
   */
  readonly nodeId: string | undefined
  /** A new session id routed to this node: `<random>.<nodeId>` (`<random>` without a node id). */
  genid(): string
  /**
   * Makes the next `store.genid(request)` for this request return `sid`: how the Fastify adapter
   * has @fastify/session build its session under the id a rebind moved it to.
   */
  reserveId(request: object, sid: string): void
  /**
   * Moves a live session to a new id routed to this node and replicates the move; the old id stops
   * working on every node. Returns the new id, or undefined when there is no such session here.
   */
  rebind(sid: string): Promise<string | undefined>
  /**
   * Reads a session stored by an adapter with `writeExternal`, fetching it during a transfer.
   * `loadedBy` (the request's context) remembers what was loaded, for merge on save.
   */
  readExternal(sid: string, loadedBy?: object): Promise<{ data: Record<string, unknown>; cookieExpires: number | null } | null>
  /**
   * Stores a session whose expiry the adapter decides (Koa: `maxAge`, possibly 'session'), merged
   * with what was stored since the same `loadedBy` read it (see `PeerStore.set`).
   */
  writeExternal(
    sid: string,
    data: Record<string, unknown>,
    cookieExpires: number | null,
    maxAgeMs: number | undefined,
    loadedBy?: object,
  ): Promise<void>
  /** Destroys a session; as `Store.destroy`. */
  destroy(sid: string): Promise<void>
  /**
   * Hears every timing the replication takes (see `Measurement`): how the metrics entry and the
   * status page see lag, apply, ack and transfer times without a public event nobody else wants.
   * Called on hot paths: a listener must be cheap and must not throw. Returns what unsubscribes it.
   */
  observe(listener: (measurement: Measurement) => void): () => void
}

const registry = new WeakMap<object, StoreInternals>()

export function registerInternals(store: object, internals: StoreInternals): void {
  registry.set(store, internals)
}

export function internalsOf(store: object): StoreInternals {
  const internals = registry.get(store)
  if (!internals) throw new InvalidOptionError('store', 'a PeerStore from connect-peer', store)
  return internals
}

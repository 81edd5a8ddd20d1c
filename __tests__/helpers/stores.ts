import { PeerStore, type PeerStoreOptions } from '../../lib/index.js'

/**
 * `open(peers, options)` for a test file: a PeerStore with `defaults` under its own options, closed
 * after each test whatever the test did. Call it at the top of the file (it registers `afterEach`).
 */
export function storesClosedAfterEach(defaults: PeerStoreOptions): (peers: unknown, options: PeerStoreOptions) => PeerStore {
  const stores: PeerStore[] = []
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.close()))
  })
  return (peers, options) => {
    const store = new PeerStore(peers as never, { ...defaults, ...options })
    stores.push(store)
    return store
  }
}

/** Benchmark child: the second node of a 2-node PeerStore cluster, with no web server. */
import { PeerStore } from '../../lib/index.js'
import { serveParent } from '../lib/process.js'

const port = Number(process.env.BENCH_PEER_PORT)
const store = new PeerStore([{ host: '127.0.0.101', port, nodeId: 'bench' }], {
  nodeId: 'peer',
  listen: `127.0.0.102:${port}`,
  ...(process.env.BENCH_PLAINTEXT ? {} : { secret: 'bench cluster secret 0123456789' }),
  notifyOnReplication: false,
})
void store.ready().then(() => process.send?.({ event: 'ready' }))
serveParent({
  stats: () => store.stats(),
  stop: async () => {
    await store.close()
    return true
  },
})

/**
 * Benchmark child for state transfer. BENCH_ROLE=source holds the sessions; BENCH_ROLE=fresh starts
 * empty, with a web server, and reports when its transfer from the source has finished.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'
import express from 'express'
import { PeerStore, peerSession } from '../../lib/index.js'
import { CLUSTER_SECRET, SESSION_SECRET } from '../lib/constants.js'
import { serveParent } from '../lib/process.js'
import { kilobyteSession } from '../lib/sessions.js'
const role = process.env.BENCH_ROLE as 'source' | 'fresh'
const port = 4740
const me = role === 'source' ? { host: '127.0.0.151', nodeId: 'source' } : { host: '127.0.0.152', nodeId: 'fresh' }
const peer = role === 'source' ? { host: '127.0.0.152', nodeId: 'fresh' } : { host: '127.0.0.151', nodeId: 'source' }
const store = new PeerStore([{ ...peer, port }], {
  nodeId: me.nodeId,
  listen: `${me.host}:${port}`,
  secret: CLUSTER_SECRET,
  notifyOnReplication: false,
  retry: () => 50,
})

const session = (i: number) => kilobyteSession(i, 760)

if (role === 'fresh') {
  const started = Date.now()
  // How long the event loop was held up during the transfer (what requests waited for).
  const loopDelay = monitorEventLoopDelay({ resolution: 5 })
  loopDelay.enable()
  store.once('sync', (info) => {
    loopDelay.disable()
    process.send?.({
      event: 'transferred',
      ...info,
      sinceStartMs: Date.now() - started,
      sessions: store.stats().sessions,
      loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
      loopDelayMaxMs: loopDelay.max / 1e6,
    })
  })
  const app = express()
  app.use(peerSession({ store, secret: SESSION_SECRET, resave: false, saveUninitialized: false }))
  app.get('/read', (req, res) => {
    res.json({ found: (req.session as unknown as { user?: unknown }).user !== undefined })
  })
  void store.ready().then(() => app.listen(4741, me.host, () => process.send?.({ event: 'ready' })))
} else {
  void store.ready().then(() => process.send?.({ event: 'ready' }))
}

serveParent({
  load: async (count: number) => {
    for (let i = 0; i < count; i++) await store.set(`t${i}`, session(i) as never)
    return store.stats().sessions
  },
  stop: async () => {
    await store.close()
    return true
  },
})

/**
 * Benchmark child: one Express node of a cluster on a namespaced network (bench/netns-sync-latency.ts
 * starts it inside its node's namespace). PeerStore in `sync` send mode with the placement named by
 * BENCH_REPLICATION (JSON: 'all' or { backups: k }), every other option at its default. Routes:
 *   GET /login   starts a session (a small profile and a counter)
 *   GET /read    reads the session, changes nothing (nothing is replicated)
 *   GET /write   increments the counter: a change, replicated and acknowledged before the answer
 */
import express from 'express'
import { PeerStore, peerSession, type PeerStoreOptions } from '../../lib/index.js'
import { serveParent } from '../lib/process.js'

interface BenchSession {
  profile?: { id: number; name: string; roles: string[] }
  counter?: number
}

const address = process.env.BENCH_ADDRESS!
const port = Number(process.env.BENCH_PORT)
const httpPort = Number(process.env.BENCH_HTTP_PORT)
const peers = JSON.parse(process.env.BENCH_PEERS!) as { host: string; port: number; nodeId: string }[]
const replication = JSON.parse(process.env.BENCH_REPLICATION!) as PeerStoreOptions['replication']

const store = new PeerStore(peers, {
  nodeId: process.env.BENCH_NODE_ID!,
  listen: `${address}:${port}`,
  secret: 'bench cluster secret 0123456789',
  sendMode: 'sync',
  replication,
})
const app = express()
app.use(peerSession({ store, secret: 'bench session secret', resave: false, saveUninitialized: false, cookie: { maxAge: 3_600_000 } }))
let next = 0
app.get('/login', (req, res) => {
  const session = req.session as unknown as BenchSession
  session.profile = { id: ++next, name: `user ${next}`, roles: ['reader', 'writer'] }
  session.counter = 0
  res.json({ ok: true })
})
app.get('/read', (req, res) => res.json({ counter: (req.session as unknown as BenchSession).counter ?? null }))
app.get('/write', (req, res) => {
  const session = req.session as unknown as BenchSession
  session.counter = (session.counter ?? 0) + 1
  res.json({ counter: session.counter })
})

serveParent({
  members: () => store.members(),
  stats: () => store.stats(),
  stop: () => store.close(),
})
void store.ready().then(() => app.listen(httpPort, address, () => process.send?.({ event: 'ready' })))

/** Benchmark child: fills one PeerStore and reports what it costs in memory. */
import { encodeSession } from '../../lib/codec/session-codec.js'
import { PeerStore } from '../../lib/index.js'
import { serveParent } from '../lib/process.js'
import { round } from '../lib/stats.js'
import { kilobyteSession } from '../lib/sessions.js'

const gc = (globalThis as { gc?: () => void }).gc!
const limits = { maxSessionBytes: 1 << 20, maxDepth: 32, maxContainerLength: 1 << 20 }

const session = (i: number) => kilobyteSession(i, 700)

async function measure(count: number) {
  const store = new PeerStore({ nodeId: 'bench', reapInterval: 60_000 })
  gc()
  const before = process.memoryUsage()
  let payload = 0
  for (let i = 0; i < count; i++) {
    const data = session(i)
    payload += encodeSession(data, limits).blob.length
    await store.set(`${'x'.repeat(24)}${String(i).padStart(8, '0')}.bench`, data as never)
  }
  gc()
  const after = process.memoryUsage()
  const heap = after.heapUsed - before.heapUsed
  const buffers = after.arrayBuffers - before.arrayBuffers
  await store.close()
  return {
    sessions: count,
    payloadBytes: payload,
    heapBytes: heap,
    arrayBufferBytes: buffers,
    rssBytes: after.rss - before.rss,
    ratio: round((heap + buffers) / payload, 3),
  }
}

serveParent({ measure: (count: number) => measure(count) })
process.send?.({ event: 'ready' })

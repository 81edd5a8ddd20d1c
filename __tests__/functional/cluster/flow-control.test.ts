import type { SessionData } from 'express-session'
import { MessageType } from '../../../lib/protocol/messages.js'
import { encodeSession } from '../../../lib/codec/session-codec.js'
import { PeerStore, type PeerStoreOptions } from '../../../lib/index.js'
import { FaultProxy } from '../../helpers/fault-proxy.js'
import { FAST, session } from '../../helpers/sessions.js'

/**
 * Replication that recovers from lost frames and never sends a frame the peer refuses: two stores
 * over real TCP, the second reaching the first through a fault proxy that can drop what comes back.
 */
const stores: PeerStore[] = []
const proxies: FaultProxy[] = []
afterEach(async () => {
  await Promise.all(stores.splice(0).map((store) => store.close()))
  await Promise.all(proxies.splice(0).map((proxy) => proxy.close()))
})

function open(peers: unknown[], options: PeerStoreOptions): PeerStore {
  const store = new PeerStore(peers as never, { ...FAST, ...options })
  stores.push(store)
  return store
}

function nextSync(store: PeerStore): Promise<{ peer: string; sessions: number }> {
  return new Promise((resolve) => store.once('sync', resolve))
}

/**
 * was1 holds `fill`'s sessions; then was2 starts and receives them only by asking was1, through a
 * proxy whose `replyFrameTap` sees what was1 answers. was1 cannot reach was2 at all (its way there is
 * cut), so nothing arrives by another path.
 */
async function transferThroughProxy(
  port: number,
  fill: (store: PeerStore) => Promise<void>,
  options: PeerStoreOptions,
  prepare: (proxy: FaultProxy) => void,
) {
  const toWas1 = await FaultProxy.start({ host: '127.0.4.21', port: port + 1000 }, { host: '127.0.4.21', port })
  const toWas2 = await FaultProxy.start({ host: '127.0.4.22', port: port + 1000 }, { host: '127.0.4.22', port })
  proxies.push(toWas1, toWas2)
  toWas2.cut()
  prepare(toWas1)
  const was1 = open([{ host: '127.0.4.22', port: port + 1000, nodeId: 'was2' }], {
    nodeId: 'was1',
    listen: `127.0.4.21:${port}`,
    ...options,
  })
  await was1.ready()
  await fill(was1)
  const was2 = open([{ host: '127.0.4.21', port: port + 1000, nodeId: 'was1' }], {
    nodeId: 'was2',
    listen: `127.0.4.22:${port}`,
    ...options,
  })
  return { was1, was2, synced: await nextSync(was2) }
}

async function hundredSessions(store: PeerStore): Promise<void> {
  for (let i = 0; i < 100; i++) await store.set(`s${i}`, session({ i }))
}

/** Drops the first frame of `type` and lets everything else through. */
function dropFirst(type: number): (frame: Buffer) => Buffer[] {
  let dropped = false
  return (frame) => {
    if (dropped || frame[5] !== type) return [frame]
    dropped = true
    return []
  }
}

test('a fetch reply lost on the way: the fetch is asked again after syncRequestTimeout, and the transfer completes', async () => {
  const { was2, synced } = await transferThroughProxy(4501, hundredSessions, { syncRequestTimeout: 300 }, (proxy) => {
    proxy.replyFrameTap = dropFirst(MessageType.FETCH_REPLY)
  })
  expect(synced).toMatchObject({ peer: 'was1', sessions: 100 })
  expect(await was2.length()).toBe(100)
})

test('a digest lost on the way: the transfer starts over after syncRequestTimeout, and completes', async () => {
  const { was2, synced } = await transferThroughProxy(4502, hundredSessions, { syncRequestTimeout: 300 }, (proxy) => {
    proxy.replyFrameTap = dropFirst(MessageType.DIGEST)
  })
  expect(synced).toMatchObject({ peer: 'was1', sessions: 100 })
  expect(await was2.length()).toBe(100)
})

test('long node ids, long session ids and syncChunkSize 10,000: every digest fits the frame cap both sides agreed on', async () => {
  const sizes: number[] = []
  const longId = (name: string) => `${name}-${'n'.repeat(60 - name.length)}`
  const fill = async (store: PeerStore) => {
    for (let i = 0; i < 12_000; i++) await store.set(`${'s'.repeat(200)}-${i}`, session({ i }))
  }
  const toWas1 = await FaultProxy.start({ host: '127.0.4.21', port: 5503 }, { host: '127.0.4.21', port: 4503 })
  proxies.push(toWas1)
  toWas1.replyFrameTap = (frame) => {
    sizes.push(frame.length)
    return [frame]
  }
  const options = { syncChunkSize: 10_000 }
  const was1 = open([{ host: '127.0.4.22', port: 4503, nodeId: longId('was2') }], {
    nodeId: longId('was1'),
    listen: '127.0.4.21:4503',
    ...options,
  })
  await was1.ready()
  await fill(was1)
  const was2 = open([{ host: '127.0.4.21', port: 5503, nodeId: longId('was1') }], {
    nodeId: longId('was2'),
    listen: '127.0.4.22:4503',
    ...options,
  })
  expect(await nextSync(was2)).toMatchObject({ sessions: 12_000 })
  expect(was1.stats().protocolErrors + was2.stats().protocolErrors).toBe(0)
  expect(Math.max(...sizes)).toBeLessThanOrEqual(1024 * 1024)
}, 60_000)

test('a reply that fills up to just under its target and then takes a session of maxSessionBytes still fits the smallest frame cap allowed', async () => {
  const limits = { maxSessionBytes: 65_536, maxFrameBytes: 65_536 + 64 * 1024 }
  const sizes: number[] = []
  // Pairs of sessions: one that leaves a reply just short of its 64 KiB target, then one as large
  // as a session may be. Both land in one reply unless replies are sized against the frame cap.
  const fill = async (store: PeerStore) => {
    for (let i = 0; i < 5; i++) {
      await store.set(`a${i}`, sessionOfSize(65_536 - 32 - 3, limits.maxSessionBytes))
      await store.set(`b${i}`, sessionOfSize(limits.maxSessionBytes, limits.maxSessionBytes))
    }
  }
  const { was1, was2, synced } = await transferThroughProxy(4504, fill, limits, (proxy) => {
    proxy.replyFrameTap = (frame) => {
      sizes.push(frame.length)
      return [frame]
    }
  })
  expect(synced).toMatchObject({ sessions: 10 })
  expect(was1.stats().protocolErrors + was2.stats().protocolErrors).toBe(0)
  expect(Math.max(...sizes)).toBeLessThanOrEqual(limits.maxFrameBytes)
}, 60_000)

/** A session whose stored bytes are exactly `bytes` long. */
function sessionOfSize(bytes: number, maxSessionBytes: number): SessionData {
  const limits = { maxSessionBytes, maxDepth: 32, maxContainerLength: maxSessionBytes }
  for (let pad = bytes - 200; pad <= bytes; pad++) {
    const candidate = session({ pad: 'x'.repeat(pad) })
    if (encodeSession(candidate, limits).blob.length === bytes) return candidate
  }
  throw new Error(`no session of exactly ${bytes} bytes`)
}

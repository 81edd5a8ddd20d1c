import { once } from 'node:events'
import { createServer } from 'node:net'
import { ErrorCodes, ListenError, type PeerStore, type PeerStoreOptions } from '../../../lib/index.js'
import { FaultProxy } from '../../helpers/fault-proxy.js'
import { storesClosedAfterEach } from '../../helpers/stores.js'
import { FAST, session } from '../../helpers/sessions.js'

const open = storesClosedAfterEach(FAST)

function nextEvent<T extends unknown[]>(store: PeerStore, event: string, match: (...args: T) => boolean = () => true): Promise<T> {
  return new Promise((resolve) => {
    const listener = (...args: T) => {
      if (!match(...args)) return
      store.off(event as never, listener)
      resolve(args)
    }
    store.on(event as never, listener)
  })
}

async function connectedPair(
  optionsA: PeerStoreOptions = {},
  optionsB: PeerStoreOptions = {},
  port = 4059,
): Promise<[PeerStore, PeerStore]> {
  const a = open([{ host: '127.0.0.42', port, nodeId: 'was2' }], { nodeId: 'was1', listen: `127.0.0.41:${port}`, ...optionsA })
  const b = open([{ host: '127.0.0.41', port, nodeId: 'was1' }], { nodeId: 'was2', listen: `127.0.0.42:${port}`, ...optionsB })
  await Promise.all([nextEvent(a, 'sync'), nextEvent(b, 'sync')])
  return [a, b]
}

test('concurrent writes to one session end the same on both nodes: the greater node id wins', async () => {
  const [was1, was2] = await connectedPair({ sendMode: 'sync' }, { sendMode: 'sync' })
  await was1.set('contended', session({ who: 'nobody', n: 0 }))
  // Both nodes change the same version in the same tick: neither has seen the other's change.
  const repaired = nextEvent(was1, 'session:replicated', (event: { sid: string }) => event.sid === 'contended')
  await Promise.all([was1.set('contended', session({ who: 'was1', n: 1 })), was2.set('contended', session({ who: 'was2', n: 1 }))])
  await repaired
  expect(await was1.get('contended')).toMatchObject({ who: 'was2' })
  expect(await was2.get('contended')).toMatchObject({ who: 'was2' })
})

test('a destroy wins over a concurrent write, whichever node made it', async () => {
  const [was1, was2] = await connectedPair({ sendMode: 'sync' }, { sendMode: 'sync' })
  await was2.set('logout', session({ user: 'ada' }))
  await Promise.all([was1.destroy('logout'), was2.set('logout', session({ user: 'ada', cart: [1] }))])
  for (const store of [was1, was2]) expect(await store.get('logout')).toBeNull()
})

test('a stalled peer: its queue overflows and is dropped, memory stays bounded, and it is resynchronised', async () => {
  const proxy = await FaultProxy.start({ host: '127.0.0.42', port: 5059 }, { host: '127.0.0.42', port: 4060 })
  try {
    const limits = { maxSessionBytes: 8192, maxFrameBytes: 80_000, maxQueueBytes: 200_000, deadTimeout: 60_000, suspectTimeout: 30_000 }
    const was1 = open([{ host: '127.0.0.42', port: 5059, nodeId: 'was2' }], { nodeId: 'was1', listen: '127.0.0.41:4060', ...limits })
    const was2 = open([{ host: '127.0.0.41', port: 4060, nodeId: 'was1' }], { nodeId: 'was2', listen: '127.0.0.42:4060', ...limits })
    await Promise.all([nextEvent(was1, 'sync'), nextEvent(was2, 'sync')])
    proxy.pause()
    let peakQueued = 0
    for (let i = 0; i < 3000; i++) {
      await was1.set(`flood-${i}`, session({ i, pad: 'p'.repeat(4000) }))
      peakQueued = Math.max(peakQueued, was1.members()[0]!.queuedBytes)
    }
    expect(was1.stats().queueOverflows).toBeGreaterThanOrEqual(1)
    expect(peakQueued).toBeLessThanOrEqual(200_000)
    const caughtUp = new Promise<void>((resolve) => {
      const check = () => {
        if (was2.stats().sessions === 3000) {
          was2.off('session:replicated', check)
          resolve()
        }
      }
      was2.on('session:replicated', check)
    })
    proxy.resume()
    await caughtUp
    expect(await was2.get('flood-2999')).toMatchObject({ i: 2999 })
  } finally {
    await proxy.close()
  }
}, 60_000)

test("peers given as host:port learn each other's node id at the first handshake", async () => {
  const a = open(['127.0.0.42:4061'], { nodeId: 'was1', listen: '127.0.0.41:4061' })
  const b = open(['127.0.0.41:4061'], { nodeId: 'was2', listen: '127.0.0.42:4061' })
  await Promise.all([nextEvent(a, 'sync'), nextEvent(b, 'sync')])
  expect(a.members()).toEqual([expect.objectContaining({ nodeId: 'was2', address: '127.0.0.42:4061', state: 'alive' })])
  await a.set('by-address', session({ n: 1 }))
  await nextEvent(b, 'session:replicated')
  expect(await b.get('by-address')).toMatchObject({ n: 1 })
})

test('a taken port fails ready() with ListenError; autoBind moves on to the next port', async () => {
  const blocker = createServer().listen(4062, '127.0.0.41')
  await once(blocker, 'listening')
  try {
    const taken = open([], { nodeId: 'was1', listen: '127.0.0.41:4062' })
    await expect(taken.ready()).rejects.toBeInstanceOf(ListenError)
    await expect(taken.ready()).rejects.toMatchObject({ code: ErrorCodes.LISTEN, message: expect.stringContaining('autoBind') })
    const moved = open([], { nodeId: 'was1', listen: { host: '127.0.0.41', port: 4062, autoBind: 3 } })
    await moved.ready()
    expect(moved.port).toBe(4063)
  } finally {
    blocker.close()
  }
})

test('close() says goodbye: the peer marks this node down at once', async () => {
  const [was1, was2] = await connectedPair({}, {}, 4064)
  const states: string[] = []
  was2.on('peer:state', (member) => states.push(member.state))
  const down = nextEvent(was2, 'peer:down')
  await was1.close()
  await down
  expect(was2.members()[0]).toMatchObject({ state: 'dead' })
  expect(states).toEqual(['dead']) // no suspect phase: the goodbye said it all
})

test('touches are coalesced: a hundred touches of one session make one expiry message', async () => {
  const slowBeat = { heartbeatInterval: 1000, suspectTimeout: 3000, deadTimeout: 10_000 }
  const [was1, was2] = await connectedPair({ touchFlushInterval: 200, ...slowBeat }, slowBeat, 4066)
  const base = session({ n: 1 }) as unknown as { cookie: { expires: Date } }
  const replicated = nextEvent(was2, 'session:replicated', (event: { sid: string }) => event.sid === 'touched')
  await was1.set('touched', base as never)
  await replicated
  const expiries: unknown[] = []
  was2.on('session:replicated', (event) => {
    if (event.change === 'expiry') expiries.push(event)
  })
  const framesBefore = was1.stats().framesOut
  let last = 0
  for (let i = 1; i <= 100; i++) {
    last = base.cookie.expires.getTime() + i * 1000
    await was1.touch('touched', { ...base, cookie: { ...base.cookie, expires: new Date(last) } } as never)
  }
  await nextEvent(was2, 'session:replicated', (event: { change: string }) => event.change === 'expiry')
  expect(expiries).toHaveLength(1)
  expect(((await was2.get('touched'))!.cookie.expires as Date).getTime()).toBe(last)
  // One EXPIRY frame, plus at most a heartbeat ping and pong that fell in the same quarter second.
  expect(was1.stats().framesOut - framesBefore).toBeLessThanOrEqual(3)
})

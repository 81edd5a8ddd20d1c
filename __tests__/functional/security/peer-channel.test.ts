import { connect } from 'node:net'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { pack } from '../../helpers/msgpack.js'
import { PROTOCOL_VERSION, SEALED_RECORD } from '../../../lib/protocol/frame.js'
import { MessageType } from '../../../lib/protocol/messages.js'
import { HandshakeRefusals, PeerStore, type PeerStoreOptions } from '../../../lib/index.js'
import { FaultProxy } from '../../helpers/fault-proxy.js'
import { RawPeer } from '../../helpers/raw-peer.js'
import { FAST, session } from '../../helpers/sessions.js'

/** A full garbage collection, so heap figures compare live memory only. */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc')
  ;(runInNewContext('gc') as () => void)()
}

const SECRET = 'correct horse battery staple 42'
const OTHER = 'a different secret of some length'

const stores: PeerStore[] = []
const proxies: FaultProxy[] = []
afterEach(async () => {
  await Promise.all(stores.splice(0).map((store) => store.close()))
  await Promise.all(proxies.splice(0).map((proxy) => proxy.close()))
})

function open(peers: unknown[], options: PeerStoreOptions): PeerStore {
  const store = new PeerStore(peers as never, { ...FAST, handshakeTimeout: 500, ...options })
  stores.push(store)
  return store
}

function nextEvent(store: PeerStore, event: string, match: (...args: never[]) => boolean = () => true): Promise<unknown[]> {
  return new Promise((resolve) => {
    const listener = (...args: never[]) => {
      if (!match(...args)) return
      store.off(event as never, listener)
      resolve(args)
    }
    store.on(event as never, listener)
  })
}

/** was1 on 127.0.0.81 reaches was2 on 127.0.0.82 through a proxy (so tests can watch and tamper). */
async function pairThroughProxy(
  port: number,
  options1: PeerStoreOptions,
  options2: PeerStoreOptions,
  prepare?: (proxy: FaultProxy) => void,
) {
  const proxy = await FaultProxy.start({ host: '127.0.0.82', port: port + 1000 }, { host: '127.0.0.82', port })
  proxies.push(proxy)
  prepare?.(proxy)
  const was1 = open([{ host: '127.0.0.82', port: port + 1000, nodeId: 'was2' }], {
    nodeId: 'was1',
    listen: `127.0.0.81:${port}`,
    ...options1,
  })
  const was2 = open([{ host: '127.0.0.81', port, nodeId: 'was1' }], { nodeId: 'was2', listen: `127.0.0.82:${port}`, ...options2 })
  return { was1, was2, proxy }
}

describe('authentication and encryption with a shared secret', () => {
  test('peers with the same secret replicate, and no session data crosses the wire in clear', async () => {
    const seen: Buffer[] = []
    const { was1, was2 } = await pairThroughProxy(4101, { secret: SECRET, sendMode: 'sync' }, { secret: SECRET }, (proxy) => {
      proxy.tap = (chunk) => {
        seen.push(Buffer.from(chunk))
        return chunk
      }
    })
    await Promise.all([nextEvent(was1, 'sync'), nextEvent(was2, 'sync')])
    await was1.set('secret-session', session({ marker: 'PLAINTEXT-MARKER-1234' }))
    expect(await was2.get('secret-session')).toMatchObject({ marker: 'PLAINTEXT-MARKER-1234' })
    const wire = Buffer.concat(seen)
    expect(wire.includes('PLAINTEXT-MARKER-1234')).toBe(false)
    expect(wire.includes('secret-session')).toBe(false)
  })

  test('a peer with the wrong secret is refused both ways, and nothing replicates', async () => {
    const was1 = open([{ host: '127.0.0.82', port: 4102, nodeId: 'was2' }], { nodeId: 'was1', listen: '127.0.0.81:4102', secret: SECRET })
    const was2 = open([{ host: '127.0.0.81', port: 4102, nodeId: 'was1' }], { nodeId: 'was2', listen: '127.0.0.82:4102', secret: OTHER })
    const errors: string[] = []
    was1.on('peer:error', (error) => errors.push((error as { reason?: string }).reason ?? error.message))
    await Promise.all([nextEvent(was1, 'peer:error'), nextEvent(was2, 'peer:error')])
    await was1.set('s', session({ n: 1 }))
    expect(was1.members()[0]!.state).not.toBe('alive')
    expect(was2.members()[0]!.state).not.toBe('alive')
    expect(errors).toContain(HandshakeRefusals.AUTH)
    expect(await was2.get('s')).toBeNull()
  })

  test('key rotation: a list of secrets is accepted, the first is used to connect', async () => {
    // Step 1 of a rotation: both accept both, was1 already sends with the new one.
    const was1 = open([{ host: '127.0.0.82', port: 4103, nodeId: 'was2' }], {
      nodeId: 'was1',
      listen: '127.0.0.81:4103',
      secret: [OTHER, SECRET],
    })
    const was2 = open([{ host: '127.0.0.81', port: 4103, nodeId: 'was1' }], {
      nodeId: 'was2',
      listen: '127.0.0.82:4103',
      secret: [SECRET, OTHER],
      sendMode: 'sync',
    })
    await Promise.all([nextEvent(was1, 'sync'), nextEvent(was2, 'sync')])
    await was2.set('rotated', session({ n: 1 }))
    expect(await was1.get('rotated')).toMatchObject({ n: 1 })
  })

  test('a node that has not got the new secret yet refuses a peer that already sends with it', async () => {
    const was1 = open([{ host: '127.0.0.82', port: 4104, nodeId: 'was2' }], {
      nodeId: 'was1',
      listen: '127.0.0.81:4104',
      secret: [OTHER, SECRET],
      retry: () => 60_000,
    })
    const was2 = open([{ host: '127.0.0.81', port: 4104, nodeId: 'was1' }], { nodeId: 'was2', listen: '127.0.0.82:4104', secret: SECRET })
    // The other direction (was2 sends with the old secret, which was1 still accepts) works.
    const synced = nextEvent(was2, 'sync')
    const [refusal] = (await nextEvent(was2, 'peer:error')) as [{ reason: string; message: string }]
    expect(refusal.reason).toBe(HandshakeRefusals.AUTH)
    expect(refusal.message).toMatch(/no cluster secret in common/)
    await synced
    expect(was2.members()[0]!.state).toBe('alive')
    expect(was1.members()[0]!.state).not.toBe('alive')
  })

  test('a replayed handshake is refused: the nonces are fresh', async () => {
    const recorded: Buffer[] = []
    const { was1, was2 } = await pairThroughProxy(4105, { secret: SECRET }, { secret: SECRET }, (proxy) => {
      proxy.frameTap = (frame, index) => {
        if (index === 0) recorded.length = 0 // keep the connection that succeeded: the last one
        if (index < 2) recorded.push(frame) // its HELLO and AUTH
        return [frame]
      }
    })
    await Promise.all([nextEvent(was1, 'sync'), nextEvent(was2, 'sync')])
    expect(recorded.map((frame) => frame[5])).toEqual([MessageType.HELLO, MessageType.AUTH])
    const attacker = await RawPeer.connect('127.0.0.82', 4105)
    attacker.sendBytes(recorded[0]!)
    await attacker.next(MessageType.WELCOME)
    attacker.sendBytes(recorded[1]!)
    expect(await attacker.next(MessageType.REFUSE)).toMatchObject({ reason: HandshakeRefusals.AUTH })
    await attacker.closed
    expect(was2.stats().refusedHandshakes).toBe(1)
  })

  test.each([
    ['modified', (frame: Buffer) => [Buffer.concat([frame.subarray(0, -1), Buffer.from([frame.at(-1)! ^ 1])])]],
    ['replayed', (frame: Buffer) => [frame, frame]],
    ['dropped', () => []],
  ])('a %s record closes that connection, is counted, and changes nothing; replication recovers', async (_, tamper) => {
    let armed = false
    let tampered = 0
    const { was1, was2 } = await pairThroughProxy(4106, { secret: SECRET }, { secret: SECRET }, (proxy) => {
      proxy.frameTap = (frame) => {
        if (!armed || frame[5] !== SEALED_RECORD) return [frame]
        armed = false
        tampered += 1
        return tamper(frame)
      }
    })
    await Promise.all([nextEvent(was1, 'sync'), nextEvent(was2, 'sync')])
    await was1.set('before', session({ n: 1 }))
    await nextEvent(was2, 'session:replicated')
    armed = true
    const closed = nextEvent(was2, 'peer:error')
    const arrived = nextEvent(was2, 'session:replicated', (event: { sid: string }) => event.sid === 'target')
    await was1.set('target', session({ n: 2 }))
    if (tamper.length === 0) await was1.set('after', session({ n: 3 })) // a drop shows on the next record
    await closed
    expect(tampered).toBe(1)
    expect(was2.stats().protocolErrors).toBe(1)
    expect(await was2.get('before')).toMatchObject({ n: 1 })
    // Whatever the tampered record carried arrives, once (a replay is not applied twice), or
    // through anti-entropy when the connection comes back.
    await arrived
    expect(await was2.get('target')).toMatchObject({ n: 2 })
  })

  test('an authenticated node id that is not a configured peer is refused after it proves the secret', async () => {
    await open([{ host: '127.0.0.82', port: 4107, nodeId: 'was2' }], {
      nodeId: 'was1',
      listen: '127.0.0.81:4107',
      secret: SECRET,
      retry: () => 60_000,
    }).ready()
    const stranger = await RawPeer.connect('127.0.0.81', 4107)
    expect(await stranger.secureHandshake({ cluster: 'connect-peer', nodeId: 'was9' }, SECRET)).toMatchObject({
      reason: HandshakeRefusals.UNKNOWN_NODE,
    })
  })

  test('a stranger without the secret learns nothing about the peer list', async () => {
    await open([{ host: '127.0.0.82', port: 4108, nodeId: 'was2' }], {
      nodeId: 'was1',
      listen: '127.0.0.81:4108',
      secret: SECRET,
      retry: () => 60_000,
    }).ready()
    for (const nodeId of ['was2', 'was9']) {
      const stranger = await RawPeer.connect('127.0.0.81', 4108)
      expect(await stranger.secureHandshake({ cluster: 'connect-peer', nodeId }, OTHER)).toMatchObject({ reason: HandshakeRefusals.AUTH })
    }
  })
})

describe('bounded, untrusted input', () => {
  const host = '127.0.0.81'
  const port = 4110
  let store: PeerStore

  beforeEach(async () => {
    // Every stranger here comes from one host, allowed all 8 slots: these tests are about the shared
    // cap; the per-host limit and the peers' own slots are tested in handshake-slots.test.ts.
    store = open([{ host: '127.0.0.82', port, nodeId: 'was2' }], {
      nodeId: 'was1',
      listen: `${host}:${port}`,
      secret: SECRET,
      retry: () => 60_000,
      maxPendingHandshakes: 8,
      maxPendingHandshakesPerHost: 8,
    })
    await store.ready()
    await store.set('untouched', session({ n: 1 }))
  })

  async function stillServing(): Promise<void> {
    expect(await store.get('untouched')).toMatchObject({ n: 1 })
    await store.set('still-writable', session({ n: 2 }))
    expect(await store.length()).toBe(2)
  }

  test('an oversized length prefix closes the connection before anything is buffered', async () => {
    const peer = await RawPeer.connect(host, port)
    peer.sendBytes(Buffer.from([0x7f, 0xff, 0xff, 0xff, PROTOCOL_VERSION, MessageType.HELLO]))
    await peer.closed
    expect(store.stats().protocolErrors).toBe(1)
    await stillServing()
  })

  test('random bytes close the connection and are counted', async () => {
    for (let i = 0; i < 20; i++) {
      const peer = await RawPeer.connect(host, port)
      peer.sendBytes(Buffer.from(Array.from({ length: 64 }, () => Math.floor(Math.random() * 256))))
      await peer.closed
    }
    expect(store.stats().protocolErrors + store.stats().refusedHandshakes).toBe(20)
    await stillServing()
  })

  test('slowloris: handshakes that never finish are cut at handshakeTimeout, and pending ones are capped', async () => {
    const sockets = Array.from({ length: 12 }, () => {
      const socket = connect({ host, port })
      socket.on('error', () => undefined) // the rejected ones are reset
      socket.on('connect', () => socket.write(Buffer.from([0, 0, 0]))) // a third of a length prefix, then nothing
      return socket
    })
    await Promise.all(sockets.map((socket) => new Promise((resolve) => socket.on('close', resolve))))
    expect(store.stats().rejectedConnections).toBe(4) // over maxPendingHandshakes (8)
    expect(store.stats().refusedHandshakes).toBe(8) // timed out
    await stillServing()
  })

  test('a valid, authenticated peer sending garbage msgpack is cut off; no session changes', async () => {
    // Authenticated as was2 (the configured peer, from its address), then garbage inside a perfectly sealed record.
    const peer = await RawPeer.connect(host, port, '127.0.0.82')
    expect(await peer.secureHandshake({ cluster: 'connect-peer', nodeId: 'was2' }, SECRET)).toMatchObject({ type: MessageType.READY })
    peer.sendSealed(MessageType.UPSERT, Buffer.from([0xc1, 0xff, 0x00]))
    await peer.closed
    expect(store.stats().protocolErrors).toBe(1)
    await stillServing()
  })

  test('a valid peer sending a session value with a forbidden extension type is cut off; no session changes', async () => {
    const peer = await RawPeer.connect(host, port, '127.0.0.82')
    await peer.secureHandshake({ cluster: 'connect-peer', nodeId: 'was2' }, SECRET)
    // An UPSERT whose only field holds msgpackr's "Error" extension: it must never be decoded.
    const upsert = [0, 0, 'untouched', 1, 'was1', 2, 'was2', Date.now() + 60_000, null, [['user', Buffer.from([0xd4, 0x65, 0x00])]], []]
    peer.sendSealed(MessageType.UPSERT, pack(upsert))
    await peer.closed
    expect(store.stats().protocolErrors).toBe(1)
    expect(await store.get('untouched')).toMatchObject({ n: 1 })
  })

  test('a flood of bad connections leaves no connection or buffer behind, and memory stays flat', async () => {
    const flood = async () => {
      await Promise.all(
        Array.from({ length: 20 }, async () => {
          const peer = await RawPeer.connect(host, port).catch(() => undefined)
          if (!peer) return
          peer.sendBytes(Buffer.concat([Buffer.from([0, 0, 0x0f, 0xa0]), Buffer.alloc(4000, 0x41)]))
          await peer.closed
        }),
      )
    }
    // Warm up first: first-use allocations (caches, pools) are not growth.
    for (let round = 0; round < 25; round++) await flood()
    collectGarbage()
    const heapBefore = process.memoryUsage().heapUsed
    for (let round = 0; round < 50; round++) await flood()
    collectGarbage()
    const { heapUsed, arrayBuffers } = process.memoryUsage()
    // Keeping anything of 1,000 connections that each sent 4 KB would show in megabytes.
    expect(heapUsed - heapBefore).toBeLessThan(1_000_000)
    expect(arrayBuffers).toBeLessThan(8_000_000)
    const stats = store.stats()
    expect(stats.protocolErrors + stats.rejectedConnections + stats.refusedHandshakes).toBe(1500)
    await stillServing()
  })
})

describe('configuration', () => {
  test('without a secret, a non-loopback listen address is refused, with the fix in the message', () => {
    let error: unknown
    try {
      new PeerStore(['10.0.0.2:4055'], { nodeId: 'was1', listen: '0.0.0.0:4055' })
    } catch (err) {
      error = err
    }
    expect(error).toMatchObject({ option: 'secret' })
    expect((error as Error).message).toMatch(/`secret`.*`tls`.*`insecure: true`/s)
  })

  test('insecure: true allows it explicitly; loopback-only needs nothing', async () => {
    const insecure = new PeerStore(['127.0.0.2:4055'], {
      nodeId: 'was1',
      listen: { host: '0.0.0.0', port: 0 },
      insecure: true,
      retry: () => 60_000,
    })
    const loopback = new PeerStore(['127.0.0.2:4055'], { nodeId: 'was1', listen: '127.0.0.1:0', retry: () => 60_000 })
    await Promise.all([insecure.close(), loopback.close()])
  })

  test.each([
    [{ secret: 'short' }, 'secret'],
    [{ secret: [SECRET, 'short'] }, 'secret[1]'],
    [{ secret: [] }, 'secret'],
    [{ tls: { ca: 'x', cert: 'y' } }, 'tls.key'],
  ])('%p is refused naming %s', (options, option) => {
    expect(() => new PeerStore(['127.0.0.2:4055'], { nodeId: 'was1', listen: '127.0.0.1:0', ...options } as never)).toThrow(
      expect.objectContaining({ option }),
    )
  })
})

import { MessageType, type Message } from '../../../lib/protocol/messages.js'
import { HandshakeRefusals, PeerStore, type PeerStoreOptions } from '../../../lib/index.js'
import { RawPeer } from '../../helpers/raw-peer.js'
import { FAST, session } from '../../helpers/sessions.js'

// Addresses 127.0.3.20 to 127.0.3.29 belong to this file.
const SECRET = 'node id binding test secret 01'

const stores: PeerStore[] = []
const peers: RawPeer[] = []
afterEach(async () => {
  for (const peer of peers.splice(0)) peer.destroy()
  await Promise.all(stores.splice(0).map((store) => store.close()))
})

function open(peerList: unknown[], options: PeerStoreOptions): PeerStore {
  const store = new PeerStore(peerList as never, { ...FAST, retry: () => 100, secret: SECRET, ...options })
  stores.push(store)
  return store
}

function nextEvent<T extends unknown[]>(store: PeerStore, event: string): Promise<T> {
  return new Promise((resolve) => store.once(event as never, (...args: T) => resolve(args)))
}

/** A member of the cluster (it knows the secret) connecting from `from`, claiming `nodeId`. */
async function member(
  port: number,
  from: string,
  nodeId: string,
  incarnation = 'other',
): Promise<{ peer: RawPeer; answer: Message | undefined }> {
  const peer = await RawPeer.connect('127.0.3.20', port, from)
  peers.push(peer)
  return { peer, answer: await peer.secureHandshake({ cluster: 'connect-peer', nodeId, incarnation }, SECRET) }
}

describe('a node id is bound to the address the configuration gives it', () => {
  const was1 = (port: number, options: PeerStoreOptions = {}) =>
    open([{ host: '127.0.3.21', port, nodeId: 'was2' }], { nodeId: 'was1', listen: `127.0.3.20:${port}`, retry: () => 60_000, ...options })

  test('with a secret, a member connecting from another address cannot claim a peer configured by IP', async () => {
    await was1(4330).ready()
    const reported = nextEvent<[Error & { reason?: string }, string]>(stores[0]!, 'peer:error')
    const { answer } = await member(4330, '127.0.3.29', 'was2')
    expect(answer).toMatchObject({ type: MessageType.REFUSE, reason: HandshakeRefusals.AUTH })
    const [error] = await reported
    expect(error.message).toMatch(/127\.0\.3\.21.*127\.0\.3\.29.*verifyPeerAddress/)
    // From the configured address, the same claim is accepted.
    expect((await member(4330, '127.0.3.21', 'was2')).answer).toMatchObject({ type: MessageType.READY })
  })

  test('verifyPeerAddress: false lets a peer connect from any address (behind NAT)', async () => {
    await was1(4331, { verifyPeerAddress: false }).ready()
    expect((await member(4331, '127.0.3.29', 'was2')).answer).toMatchObject({ type: MessageType.READY })
  })
})

describe('a live connection is not displaced by another claiming the same node id', () => {
  test('a second connection with another incarnation is refused while the first is alive; replication goes on', async () => {
    const port = 4332
    const was1 = open([{ host: '127.0.3.21', port, nodeId: 'was2' }], { nodeId: 'was1', listen: `127.0.3.20:${port}` })
    const was2 = open([{ host: '127.0.3.20', port, nodeId: 'was1' }], { nodeId: 'was2', listen: `127.0.3.21:${port}`, sendMode: 'sync' })
    await Promise.all([nextEvent(was1, 'sync'), nextEvent(was2, 'sync')])
    // Another member on was2's host (so past the address check) claims to be a restarted was2.
    const { answer } = await member(port, '127.0.3.21', 'was2', 'a-new-incarnation')
    expect(answer).toMatchObject({ type: MessageType.REFUSE, reason: HandshakeRefusals.DUPLICATE })
    expect(was2.members()[0]!.state).toBe('alive')
    await was2.set('still-from-was2', session({ n: 1 }))
    expect(await was1.get('still-from-was2')).toMatchObject({ n: 1 })
  })

  test('a peer whose old connection went quiet gets in once it has been silent for suspectTimeout', async () => {
    const port = 4333
    const was1 = open([{ host: '127.0.3.21', port, nodeId: 'was2' }], {
      nodeId: 'was1',
      listen: `127.0.3.20:${port}`,
      retry: () => 60_000,
      deadTimeout: 20_000,
    })
    await was1.ready()
    // The old connection completes its handshake, then says nothing more (a host that froze).
    expect((await member(port, '127.0.3.21', 'was2', 'before')).answer).toMatchObject({ type: MessageType.READY })
    const startedAt = Date.now()
    // The restarted peer retries on each refusal, as a real one does with its backoff.
    for (;;) {
      const { answer } = await member(port, '127.0.3.21', 'was2', 'after')
      if (answer?.type === MessageType.READY) break
      expect(answer).toMatchObject({ type: MessageType.REFUSE, reason: HandshakeRefusals.DUPLICATE })
    }
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(250)
    expect(Date.now() - startedAt).toBeLessThan(3000)
  })
})

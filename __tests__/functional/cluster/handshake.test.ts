import { PROTOCOL_VERSION } from '../../../lib/protocol/frame.js'
import { MessageType } from '../../../lib/protocol/messages.js'
import { ErrorCodes, HandshakeRefusals, PeerStore } from '../../../lib/index.js'
import { RawPeer } from '../../helpers/raw-peer.js'

const HOST = '127.0.0.31'
const PORT = 4058
let store: PeerStore
const errors: { code: string | undefined; remote: string }[] = []

beforeEach(async () => {
  errors.length = 0
  store = new PeerStore([{ host: '127.0.0.32', port: 4058, nodeId: 'was2' }], {
    nodeId: 'was1',
    listen: `${HOST}:${PORT}`,
    clusterName: 'shop',
    handshakeTimeout: 300,
    retry: () => 60_000, // the configured peer is not running: do not keep dialing it
  })
  store.on('peer:error', (error, remote) => errors.push({ code: (error as { code?: string }).code, remote }))
  await store.ready()
})
afterEach(() => store.close())

function hello(overrides: Partial<{ protocol: number; cluster: string; nodeId: string; incarnation: string }> = {}) {
  return { protocol: PROTOCOL_VERSION, cluster: 'shop', nodeId: 'was2', incarnation: 'aaaa', maxFrameBytes: 1 << 20, ...overrides }
}

test('a configured peer is welcomed with the node id and cluster name, then ready', async () => {
  const peer = await RawPeer.connect(HOST, PORT)
  expect(await peer.handshake(hello())).toMatchObject({ type: MessageType.READY })
  expect(peer.received[0]).toMatchObject({ type: MessageType.WELCOME, nodeId: 'was1', cluster: 'shop' })
  peer.destroy()
})

test.each([
  ['an unknown node id', { nodeId: 'intruder' }, HandshakeRefusals.UNKNOWN_NODE],
  ["this node's own id", { nodeId: 'was1' }, HandshakeRefusals.SAME_NODE],
  ['another cluster name', { cluster: 'other' }, HandshakeRefusals.CLUSTER],
  ['another protocol version', { protocol: 99 }, HandshakeRefusals.VERSION],
])('a peer with %s is refused with a reason, and the connection closed', async (_, overrides, reason) => {
  const peer = await RawPeer.connect(HOST, PORT)
  expect(await peer.handshake(hello(overrides))).toMatchObject({ type: MessageType.REFUSE, reason })
  await peer.closed
  expect(store.stats().refusedHandshakes).toBe(1)
  expect(errors).toEqual([{ code: ErrorCodes.HANDSHAKE_REFUSED, remote: expect.stringContaining('127.0.0.1') }])
})

test('a second connection of the same peer is refused as a duplicate while the first is alive, whatever its incarnation', async () => {
  const first = await RawPeer.connect(HOST, PORT)
  expect(await first.handshake(hello())).toMatchObject({ type: MessageType.READY })
  const second = await RawPeer.connect(HOST, PORT)
  expect(await second.handshake(hello())).toMatchObject({ type: MessageType.REFUSE, reason: HandshakeRefusals.DUPLICATE })
  const claimant = await RawPeer.connect(HOST, PORT)
  expect(await claimant.handshake(hello({ incarnation: 'bbbb' }))).toMatchObject({
    type: MessageType.REFUSE,
    reason: HandshakeRefusals.DUPLICATE,
  })
  // A restarted peer: the old process is gone, its connection closed, so the new incarnation gets in.
  first.destroy()
  const restarted = await RawPeer.connect(HOST, PORT)
  expect(await restarted.handshake(hello({ incarnation: 'bbbb' }))).toMatchObject({ type: MessageType.READY })
  restarted.destroy()
})

test('a connection that sends anything but HELLO first is closed as a protocol error', async () => {
  const peer = await RawPeer.connect(HOST, PORT)
  peer.send({ type: MessageType.PING, seq: 1 })
  await peer.closed
  expect(store.stats().protocolErrors).toBe(1)
})

test('a connection that never completes the handshake is closed after handshakeTimeout', async () => {
  const peer = await RawPeer.connect(HOST, PORT)
  peer.sendBytes(Buffer.from([0, 0])) // half a length prefix, then silence
  await peer.closed
  expect(store.stats().refusedHandshakes).toBe(1)
})

test('the store keeps serving while peers are refused', async () => {
  const peer = await RawPeer.connect(HOST, PORT)
  await peer.handshake(hello({ nodeId: 'intruder' }))
  await peer.closed
  await store.set('s1', { cookie: {}, n: 1 } as never)
  expect(await store.get('s1')).toMatchObject({ n: 1 })
})

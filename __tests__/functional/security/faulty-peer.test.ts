import { pack } from '../../helpers/msgpack.js'
import { encodeSession } from '../../../lib/codec/session-codec.js'
import { PROTOCOL_VERSION } from '../../../lib/protocol/frame.js'
import { AckLevel, MessageType, type Message, type Snapshot } from '../../../lib/protocol/messages.js'
import { PeerStore } from '../../../lib/index.js'
import { NO_VERSION } from '../../../lib/table/version.js'
import { RawPeer } from '../../helpers/raw-peer.js'

/**
 * A peer that completed the handshake (it is configured, it knows the cluster) but misbehaves: it
 * answers what was not asked, withholds answers, or sends versions that cannot grow. What it can
 * do is bounded like everything else. Loopback without a secret, so the test reads the frames.
 */
const HOST = '127.0.4.11'
const PEER = '127.0.4.12'
const stores: PeerStore[] = []
const peers: RawPeer[] = []
afterEach(async () => {
  for (const peer of peers.splice(0)) peer.destroy()
  await Promise.all(stores.splice(0).map((store) => store.close()))
})

async function nodeAndFaultyPeer(port: number, options: object = {}): Promise<{ store: PeerStore; peer: RawPeer }> {
  const store = new PeerStore([{ host: PEER, port, nodeId: 'was2' }], {
    nodeId: 'was1',
    listen: `${HOST}:${port}`,
    retry: () => 60_000,
    ...options,
  })
  stores.push(store)
  await store.ready()
  const peer = await RawPeer.connect(HOST, port, PEER)
  peers.push(peer)
  expect(
    await peer.handshake({ protocol: PROTOCOL_VERSION, cluster: 'connect-peer', nodeId: 'was2', incarnation: 'faulty' }),
  ).toMatchObject({ type: MessageType.READY })
  return { store, peer }
}

/** Resolves once the node has handled everything sent before: it answers a ping in order. */
let pings = 0
async function roundTrip(peer: RawPeer): Promise<void> {
  const seq = ++pings
  peer.send({ type: MessageType.PING, seq })
  await peer.next((message) => message.type === MessageType.PONG && message.seq === seq)
}

const LATER = () => Date.now() + 3_600_000
const blob = (data: Record<string, unknown>) =>
  encodeSession({ cookie: { path: '/' }, ...data }, { maxSessionBytes: 1 << 16, maxDepth: 16, maxContainerLength: 1 << 16 }).blob
const snapshot = (sid: string, data: Record<string, unknown>): Snapshot => ({
  sid,
  version: { counter: 1, origin: 'was2' },
  expiresAt: LATER(),
  cookieExpires: null,
  blob: blob(data),
  movedTo: null,
  rebinds: 0,
})
/** A change made on top of a version the node does not have, so the node asks for the session. */
const deltaOnUnknownBase = (sid: string): Message => ({
  type: MessageType.UPSERT,
  ackId: 0,
  ackLevel: AckLevel.NONE,
  sentAt: null,
  sid,
  base: { counter: 5, origin: 'was2' },
  version: { counter: 6, origin: 'was2' },
  expiresAt: LATER(),
  cookieExpires: null,
  set: [['user', pack('x')]],
  remove: [],
})

test('a fetch reply nobody asked for is ignored', async () => {
  const { store, peer } = await nodeAndFaultyPeer(4401)
  peer.send({
    type: MessageType.FETCH_REPLY,
    requestId: 777,
    epoch: NO_VERSION,
    snapshots: [snapshot('planted', { user: 'mallory' })],
    final: true,
  })
  await roundTrip(peer)
  expect(await store.get('planted')).toBeNull()
})

test('a fetch reply brings what was asked for, and nothing it slips in besides', async () => {
  const { store, peer } = await nodeAndFaultyPeer(4402)
  peer.send(deltaOnUnknownBase('wanted'))
  const fetch = await peer.next(MessageType.FETCH)
  expect(fetch).toMatchObject({ sids: ['wanted'] })
  const requestId = (fetch as Extract<Message, { type: typeof MessageType.FETCH }>).requestId
  peer.send({
    type: MessageType.FETCH_REPLY,
    requestId,
    epoch: NO_VERSION,
    snapshots: [snapshot('wanted', { user: 'ada' }), snapshot('planted', { user: 'mallory' })],
    final: true,
  })
  await roundTrip(peer)
  expect(await store.get('wanted')).toMatchObject({ user: 'ada' })
  expect(await store.get('planted')).toBeNull()
})

test('a version counter that could not grow is refused: the connection closes, nothing is stored', async () => {
  const { store, peer } = await nodeAndFaultyPeer(4403)
  peer.send({ ...deltaOnUnknownBase('huge'), base: NO_VERSION, version: { counter: 2 ** 53 - 1, origin: 'was2' } } as Message)
  await peer.closed
  expect(store.stats().protocolErrors).toBe(1)
  expect(await store.get('huge')).toBeNull()
})

test('refetches a peer never answers are bounded: at most 64 wait, then one whole resync is asked for', async () => {
  const { store, peer } = await nodeAndFaultyPeer(4404, { syncChunkSize: 10, syncRequestTimeout: 60_000 })
  for (let i = 0; i < 500; i++) peer.send(deltaOnUnknownBase(`u${i}`))
  await roundTrip(peer)
  const fetches = peer.received.filter((message) => message.type === MessageType.FETCH)
  const resyncs = peer.received.filter((message) => message.type === MessageType.SYNC_REQUEST)
  expect(fetches).toHaveLength(64)
  expect(resyncs).toHaveLength(1)
  expect(store.stats().sessions).toBe(0)
})

/**
 * Protocol versions over real sockets, with a hand-driven peer: what a node does with a peer of
 * another version (see docs/rolling-upgrades.md). The previous release itself, as a process, is in
 * rolling-upgrade.test.ts.
 */
import { once } from 'node:events'
import { ErrorCodes, HandshakeRefusals, HandshakeRefusedError, type PeerStore } from '../../../lib/index.js'
import { HANDSHAKE_FRAME_VERSION, PROTOCOL_VERSION } from '../../../lib/protocol/frame.js'
import { encodeMessage, MessageType, type Hello, type Message } from '../../../lib/protocol/messages.js'
import { RawPeer } from '../../helpers/raw-peer.js'
import { storesClosedAfterEach } from '../../helpers/stores.js'

const HOST = '127.0.18.10'
const PEER = { host: '127.0.18.11', port: 4182, nodeId: 'was2' }
const PORT = 4182
const open = storesClosedAfterEach({ nodeId: 'was1', listen: `${HOST}:${PORT}`, clusterName: 'shop', handshakeTimeout: 500 })

function hello(protocol: number): Omit<Hello, 'type' | 'nonce' | 'keyId' | 'maxFrameBytes'> {
  return { protocol, cluster: 'shop', nodeId: 'was2', incarnation: 'raw' }
}

/** A store whose configured peer is not running (and not dialed again soon), with its `peer:error`s. */
async function storeWithErrors(): Promise<{ store: PeerStore; errors: Error[] }> {
  const store = open([PEER], { retry: () => 60_000 })
  const errors: Error[] = []
  store.on('peer:error', (error) => errors.push(error))
  await store.ready()
  return { store, errors }
}

/** Connects, proposes `protocol`, and resolves with the node's answer once it closed the connection. */
async function propose(protocol: number): Promise<Message | undefined> {
  const peer = await RawPeer.connect(HOST, PORT)
  const answer = await peer.handshake(hello(protocol))
  await peer.closed
  return answer
}

test('a peer proposing only a future version is refused with both sides versions, counted every time, reported once', async () => {
  const { store, errors } = await storeWithErrors()
  for (let attempt = 0; attempt < 3; attempt++) {
    expect(await propose(PROTOCOL_VERSION + 2)).toMatchObject({
      type: MessageType.REFUSE,
      reason: HandshakeRefusals.VERSION,
      detail: expect.stringMatching(
        /^protocol 5 is not supported; this node speaks protocols 2 and 3 \(.*one version at a time\)$/,
      ) as string,
    })
  }
  expect(store.stats()).toMatchObject({ versionRefusals: 3, refusedHandshakes: 3, protocolErrors: 0 })
  expect(errors).toHaveLength(1)
  expect(errors[0]).toBeInstanceOf(HandshakeRefusedError)
  expect(errors[0]).toMatchObject({ reason: HandshakeRefusals.VERSION, versions: { proposed: [5], spoken: [3, 2] } })
  expect(errors[0]!.message).toMatch(/refused was2 from 127\.0\.0\.1:\d+: protocol 5 is not supported; this node speaks protocols 2 and 3/)

  // Another version from the same host within 10 s is counted, not reported: a stranger cycling
  // through versions cannot flood the log.
  expect(await propose(1)).toMatchObject({ type: MessageType.REFUSE, reason: HandshakeRefusals.VERSION })
  expect(store.stats().versionRefusals).toBe(4)
  expect(errors).toHaveLength(1)
})

test('a peer one version ahead (the next release, in a rolling upgrade) is told to propose ours: not a version refusal, not reported', async () => {
  const { store, errors } = await storeWithErrors()
  for (let attempt = 0; attempt < 3; attempt++) {
    expect(await propose(PROTOCOL_VERSION + 1)).toMatchObject({
      type: MessageType.REFUSE,
      reason: HandshakeRefusals.VERSION,
      detail: `protocol ${PROTOCOL_VERSION + 1} is newer than this node's: propose ${PROTOCOL_VERSION}`,
    })
  }
  expect(store.stats()).toMatchObject({ versionRefusals: 0, refusedHandshakes: 3 })
  expect(errors).toEqual([])
})

test('a HELLO framed with a future version number is still read, and refused with the reason', async () => {
  const { store } = await storeWithErrors()
  const peer = await RawPeer.connect(HOST, PORT)
  const frame = encodeMessage({ type: MessageType.HELLO, ...hello(5), maxFrameBytes: 1 << 20, nonce: Buffer.alloc(32, 1), keyId: null })
  expect(frame[4]).toBe(HANDSHAKE_FRAME_VERSION)
  frame[4] = 4
  peer.sendBytes(frame)
  expect(await peer.next(MessageType.REFUSE)).toMatchObject({ reason: HandshakeRefusals.VERSION })
  await peer.closed
  expect(store.stats()).toMatchObject({ versionRefusals: 1, protocolErrors: 0 })
})

test('with no peer:error listener, a version refusal becomes one process warning, not one per attempt', async () => {
  const store = open([PEER], { retry: () => 60_000 })
  await store.ready()
  const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined)
  try {
    for (let attempt = 0; attempt < 3; attempt++) await propose(PROTOCOL_VERSION + 2)
    expect(store.stats().versionRefusals).toBe(3)
    expect(warn).toHaveBeenCalledTimes(1)
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('protocol 5 is not supported; this node speaks protocols 2 and 3'), {
      code: ErrorCodes.HANDSHAKE_REFUSED,
    })
  } finally {
    warn.mockRestore()
  }
})

/** A hand-driven peer on PEER's address that speaks only `versions`: WELCOME and READY for those, REFUSE for the rest. */
async function peerSpeaking(
  versions: readonly number[],
  seen: RawPeer[],
  onPeer?: (connections: number) => void,
): Promise<{ close(): Promise<void> }> {
  return RawPeer.accept(PEER.host, PEER.port, (peer) => {
    seen.push(peer)
    onPeer?.(seen.length)
    void (async () => {
      const received = await peer.next(MessageType.HELLO)
      if (received?.type !== MessageType.HELLO) return
      if (!versions.includes(received.protocol)) {
        const detail = `protocol ${received.protocol} is not supported; this node speaks ${versions.join(' and ')}`
        peer.send({ type: MessageType.REFUSE, nodeId: PEER.nodeId, reason: HandshakeRefusals.VERSION, detail })
        peer.socket.end()
        return
      }
      peer.send({
        type: MessageType.WELCOME,
        cluster: 'shop',
        nodeId: PEER.nodeId,
        incarnation: 'raw',
        maxFrameBytes: 1 << 20,
        nonce: Buffer.alloc(32, 2),
        proof: null,
      })
      await peer.next(MessageType.AUTH)
      peer.send({ type: MessageType.READY })
    })()
  })
}

test('a dialer refused its version by an older peer proposes the previous one at once, and both speak it from then on', async () => {
  const seen: RawPeer[] = []
  const older = await peerSpeaking([PROTOCOL_VERSION - 1], seen)
  try {
    const store = open([PEER], {})
    const up = once(store, 'peer:up')
    await store.ready()
    await up
    expect(store.members()).toMatchObject([{ nodeId: 'was2', state: 'alive', protocol: PROTOCOL_VERSION - 1 }])
    expect(seen.map((peer) => (peer.received[0] as Hello).protocol)).toEqual([PROTOCOL_VERSION, PROTOCOL_VERSION - 1])
    // What the node sends once agreed is framed as the older version, in its layout.
    const agreed = seen[1]!
    await agreed.next(MessageType.SYNC_REQUEST)
    const afterHandshake = agreed.received.findIndex((message) => message.type === MessageType.SYNC_REQUEST)
    expect(agreed.frameVersions[0]).toBe(HANDSHAKE_FRAME_VERSION)
    expect(new Set(agreed.frameVersions.slice(afterHandshake))).toEqual(new Set([PROTOCOL_VERSION - 1]))
    await store.set('s1', { cookie: {}, n: 1 } as never)
    const upsert = await agreed.next(MessageType.UPSERT)
    expect(upsert).toMatchObject({ sid: 's1', sentAt: null })
    // Falling back is how versions agree, not a refusal.
    expect(store.stats()).toMatchObject({ versionRefusals: 0, refusedHandshakes: 0, protocolErrors: 0 })
  } finally {
    await older.close()
  }
})

test('a peer that speaks none of this node versions is given up like any refusal: counted, reported once', async () => {
  const seen: RawPeer[] = []
  let fourthAttempt!: () => void
  // Two connections per attempt (this node's version, then the previous): the 7th starts the 4th attempt.
  const threeAttemptsFailed = new Promise<void>((resolve) => (fourthAttempt = resolve))
  const future = await peerSpeaking([PROTOCOL_VERSION + 2], seen, (connections) => connections === 7 && fourthAttempt())
  try {
    const store = open([PEER], { retry: () => 20 })
    const errors: Error[] = []
    store.on('peer:error', (error) => errors.push(error))
    await store.ready()
    await threeAttemptsFailed
    expect(store.stats().versionRefusals).toBe(3)
    // Each attempt proposed this node's version, then the previous one.
    expect(seen.slice(0, 4).map((peer) => (peer.received[0] as Hello).protocol)).toEqual([3, 2, 3, 2])
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatchObject({ reason: HandshakeRefusals.VERSION, versions: { proposed: [3, 2], spoken: [] } })
    expect(errors[0]!.message).toMatch(
      /was2 \(127\.0\.18\.11:4182\) speaks none of protocols 3 and 2; .*the peer says: protocol 2 is not supported; this node speaks 5/,
    )
    expect(store.members()).toMatchObject([{ state: 'dead', protocol: null }])
  } finally {
    await future.close()
  }
})

test('two current nodes agree on the current version', async () => {
  const a = open([{ host: '127.0.18.12', port: PORT, nodeId: 'was3' }], {})
  const b = open([{ host: HOST, port: PORT, nodeId: 'was1' }], { nodeId: 'was3', listen: `127.0.18.12:${PORT}` })
  const synced = Promise.all([once(a, 'sync'), once(b, 'sync')])
  await Promise.all([a.ready(), b.ready()])
  await synced
  expect(a.members()).toMatchObject([{ nodeId: 'was3', protocol: PROTOCOL_VERSION }])
  expect(b.members()).toMatchObject([{ nodeId: 'was1', protocol: PROTOCOL_VERSION }])
})

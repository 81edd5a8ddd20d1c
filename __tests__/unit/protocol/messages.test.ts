import { pack } from '../../helpers/msgpack.js'
import { unpack } from 'msgpackr'
import { encodeFrame, FRAME_HEADER_BYTES, FrameDecoder, HANDSHAKE_FRAME_VERSION } from '../../../lib/protocol/frame.js'
import { AckLevel, decodeMessage, encodeMessage, MessageType, type Message, type MessageLimits } from '../../../lib/protocol/messages.js'
import { ErrorCodes } from '../../../lib/index.js'

const limits: MessageLimits = { session: { maxSessionBytes: 4096, maxDepth: 8, maxContainerLength: 4096 }, maxBatch: 100 }
const v = (counter: number, origin = 'was1') => ({ counter, origin })

function roundTrip(message: Message): Message {
  const [frame] = new FrameDecoder(1 << 20).push(encodeMessage(message))
  return decodeMessage(frame!, limits)
}

/** A sender's clock, as protocol 3 data messages carry it. */
const SENT_AT = 1_800_000_000_000

const samples: Message[] = [
  {
    type: MessageType.HELLO,
    protocol: 1,
    cluster: 'c',
    nodeId: 'was1',
    incarnation: 'abc',
    maxFrameBytes: 1 << 20,
    nonce: Buffer.alloc(32, 1),
    keyId: Buffer.alloc(8, 2),
  },
  {
    type: MessageType.HELLO,
    protocol: 1,
    cluster: 'c',
    nodeId: 'was1',
    incarnation: 'abc',
    maxFrameBytes: 1 << 20,
    nonce: Buffer.alloc(32, 1),
    keyId: null,
  },
  {
    type: MessageType.WELCOME,
    cluster: 'c',
    nodeId: 'was2',
    incarnation: 'def',
    maxFrameBytes: 65_536,
    nonce: Buffer.alloc(32, 3),
    proof: Buffer.alloc(32, 4),
  },
  { type: MessageType.AUTH, proof: Buffer.alloc(32, 5) },
  { type: MessageType.AUTH, proof: null },
  { type: MessageType.READY },
  { type: MessageType.REFUSE, nodeId: 'was2', reason: 'unknown-node', detail: 'who are you' },
  { type: MessageType.BYE, reason: 'bye' },
  { type: MessageType.PING, seq: 7 },
  { type: MessageType.PONG, seq: 7 },
  {
    type: MessageType.UPSERT,
    ackId: 3,
    ackLevel: AckLevel.APPLIED,
    sentAt: SENT_AT,
    sid: 's1',
    base: { counter: 0, origin: '' },
    version: v(1),
    expiresAt: 1_900_000_000_000,
    cookieExpires: null,
    set: [['user', pack({ name: 'ada', at: new Date(5) })]],
    remove: ['old'],
  },
  { type: MessageType.DESTROY, ackId: 0, ackLevel: AckLevel.NONE, sentAt: SENT_AT, sid: 's1', version: v(2), keepUntil: 5 },
  {
    type: MessageType.EXPIRY,
    ackId: 0,
    ackLevel: AckLevel.NONE,
    sentAt: SENT_AT,
    changes: [{ sid: 's1', version: v(2, 'was2'), expiresAt: 9, cookieExpires: 9 }],
  },
  {
    type: MessageType.RENAME,
    ackId: 0,
    ackLevel: AckLevel.NONE,
    sentAt: SENT_AT,
    from: 's1',
    to: 's2',
    base: v(1),
    version: v(2),
    keepUntil: 5,
    rebinds: 1,
  },
  { type: MessageType.CLEAR, ackId: 1, ackLevel: AckLevel.RECEIVED, sentAt: SENT_AT, epoch: v(1) },
  { type: MessageType.CLEAR, ackId: 0, ackLevel: AckLevel.NONE, sentAt: SENT_AT, epoch: { counter: 0, origin: '' } },
  { type: MessageType.ACK, ackId: 12 },
  { type: MessageType.SYNC_REQUEST, syncId: 4, epoch: v(2, 'was2') },
  {
    type: MessageType.DIGEST,
    syncId: 4,
    epoch: v(1),
    entries: [
      { sid: 's1', version: v(3), tombstone: false, movedTo: null, expiresAt: 10, bytes: 120 },
      { sid: 's2', version: v(3), tombstone: true, movedTo: 's3', expiresAt: 10, bytes: 0 },
    ],
    final: true,
  },
  { type: MessageType.FETCH, requestId: 9, sids: ['s1', 's2'] },
  {
    type: MessageType.FETCH_REPLY,
    requestId: 9,
    epoch: v(1),
    snapshots: [
      { sid: 's1', version: v(3), expiresAt: 10, cookieExpires: 10, blob: pack({ a: 1 }), movedTo: null, rebinds: 2 },
      { sid: 's2', version: v(4), expiresAt: 10, cookieExpires: null, blob: null, movedTo: null, rebinds: 0 },
      { sid: 's3', version: v(4), expiresAt: 10, cookieExpires: null, blob: null, movedTo: 's4', rebinds: 0 },
    ],
    final: false,
  },
]

test.each(samples.map((message) => [message.type.toString(16), message] as const))(
  'message 0x%s survives encode and decode',
  (_, message) => {
    expect(roundTrip(message)).toEqual(message)
  },
)

/** A frame of `type` whose payload is `items` encoded as msgpack, in protocol `version` (2: the layouts below are version 2's). */
function frameOf(type: number, items: unknown, version = 2): ReturnType<FrameDecoder['push']>[number] {
  return new FrameDecoder(1 << 20).push(encodeFrame(type, pack(items), version))[0]!
}

test.each([
  ['an unknown message type', 0x7e, [1]],
  ['a payload that is not an array', MessageType.PING, { seq: 1 }],
  ['a missing item', MessageType.DESTROY, [0, 0, 's1', 1, 'was1']],
  ['a trailing item', MessageType.PING, [1, 2]],
  ['a negative integer', MessageType.PING, [-1]],
  ['a float where an integer belongs', MessageType.ACK, [1.5]],
  ['a bad node id', MessageType.HELLO, [1, 'c', 'bad id!', 'x', 1 << 20, Buffer.alloc(32), null]],
  ['a nonce of the wrong length', MessageType.HELLO, [1, 'c', 'was1', 'x', 1 << 20, Buffer.alloc(31), null]],
  ['a frame cap below what any node accepts', MessageType.HELLO, [1, 'c', 'was1', 'x', 1000, Buffer.alloc(32), null]],
  ['a proof of the wrong length', MessageType.AUTH, [Buffer.alloc(31)]],
  ['an empty session id', MessageType.FETCH, [1, ['']]],
  ['a session id over 256 characters', MessageType.FETCH, [1, ['x'.repeat(257)]]],
  ['more ids than the batch limit', MessageType.FETCH, [1, Array.from({ length: 101 }, (_, i) => `s${i}`)]],
  ['an ack id without an ack level', MessageType.CLEAR, [5, 0, 0, '']],
  ['an unknown ack level', MessageType.CLEAR, [5, 3, 0, '']],
  ['a version counter of 0 for a change', MessageType.DESTROY, [0, 0, 's1', 0, 'was1', 5]],
  ['a version counter that could not grow', MessageType.DESTROY, [0, 0, 's1', 2 ** 53 - 1, 'was1', 5]],
  ['a live digest entry that names a new id', MessageType.DIGEST, [1, 0, '', [['s1', 1, 'was1', false, 's2', 5]], true]],
  ['a session value that is not bytes', MessageType.UPSERT, [0, 0, 's1', 0, '', 1, 'was1', 5, null, [['user', 'not bytes']], []]],
  [
    'a session value with a forbidden extension',
    MessageType.UPSERT,
    [0, 0, 's1', 0, '', 1, 'was1', 5, null, [['user', Buffer.from([0xd4, 0x73, 0x00])]], []],
  ],
  [
    'a session value over maxSessionBytes',
    MessageType.UPSERT,
    [0, 0, 's1', 0, '', 1, 'was1', 5, null, [['user', pack('x'.repeat(5000))]], []],
  ],
  ['a field named __proto__', MessageType.UPSERT, [0, 0, 's1', 0, '', 1, 'was1', 5, null, [], ['__proto__']]],
  ['a blob that is not a map', MessageType.FETCH_REPLY, [1, 0, '', [['s1', 1, 'was1', 5, null, pack([1, 2]), null, 0]], true]],
  ['a session with data that also moved', MessageType.FETCH_REPLY, [1, 0, '', [['s1', 1, 'was1', 5, null, pack({ a: 1 }), 's2', 0]], true]],
  ['an unknown refusal reason', MessageType.REFUSE, ['was2', 'because', 'x']],
  ['a digest entry of protocol 3 without its size', MessageType.DIGEST, [1, 0, '', [['s1', 1, 'was1', false, null, 5]], true], 3],
  ['a digest entry claiming a session over 4 GiB', MessageType.DIGEST, [1, 0, '', [['s1', 1, 'was1', false, null, 5, 2 ** 32]], true], 3],
  ['a change of protocol 3 without the sender clock', MessageType.DESTROY, [0, 0, 's1', 1, 'was1', 5], 3],
])('refuses %s', (_, type, items, version = 2) => {
  expect(() => decodeMessage(frameOf(type, items, version), limits)).toThrow(
    expect.objectContaining({ code: expect.stringMatching(new RegExp(`^(${ErrorCodes.PROTOCOL}|${ErrorCodes.MALFORMED_DATA})$`)) }),
  )
})

test('refuses another protocol version', () => {
  const frame = { ...frameOf(MessageType.PING, [1]), version: 99 }
  expect(() => decodeMessage(frame, limits)).toThrow(/protocol version 99/)
})

test('once a connection agreed on a version, refuses a frame of any other, even one this node speaks', () => {
  expect(decodeMessage(frameOf(MessageType.PING, [1], 2), limits, 2)).toEqual({ type: MessageType.PING, seq: 1 })
  expect(() => decodeMessage(frameOf(MessageType.PING, [1], 3), limits, 2)).toThrow(/protocol version 3, expected 2/)
  expect(() => decodeMessage(frameOf(MessageType.PING, [1], 2), limits, 3)).toThrow(/protocol version 2, expected 3/)
})

describe('protocol versions', () => {
  const hello = samples[0]!
  const upsert = samples.find((message) => message.type === MessageType.UPSERT)!
  const digest = samples.find((message) => message.type === MessageType.DIGEST)!
  const decodeAs = (message: Message, version: number) =>
    decodeMessage(new FrameDecoder(1 << 20).push(encodeMessage(message, version))[0]!, limits, version)

  test.each(samples.map((message) => [message.type.toString(16), message] as const))(
    'message 0x%s survives encode and decode in protocol 2, without what 3 added',
    (_, message) => {
      const decoded = decodeAs(message, 2) as unknown as Record<string, unknown>
      const expected = { ...message } as Record<string, unknown>
      if ('sentAt' in expected) expected.sentAt = null
      if (message.type === MessageType.DIGEST) expected.entries = message.entries.map((entry) => ({ ...entry, bytes: null }))
      expect(decoded).toEqual(expected)
    },
  )

  test('protocol 2 frames carry version 2 and the version 2 layout: no timestamp in changes, no sizes in digests', () => {
    const frame = encodeMessage(upsert, 2)
    expect(frame[4]).toBe(2)
    // ackId, ackLevel, then the session id at once: what a version 2 node reads.
    expect(unpack(frame.subarray(FRAME_HEADER_BYTES)).slice(0, 3)).toEqual([3, AckLevel.APPLIED, 's1'])
    // syncId, epoch (counter, origin), entries: each entry sid, version (counter, origin), tombstone, movedTo, expiresAt.
    const entriesIn = (version: number) =>
      (unpack(encodeMessage(digest, version).subarray(FRAME_HEADER_BYTES)) as unknown[])[3] as unknown[][]
    expect(entriesIn(2)[0]).toEqual(['s1', 3, 'was1', false, null, 10])
    expect(entriesIn(3)[0]).toEqual(['s1', 3, 'was1', false, null, 10, 120])
  })

  test('protocol 3 changes carry the sender timestamp right after the ack request', () => {
    const frame = encodeMessage(upsert, 3)
    expect(frame[4]).toBe(3)
    expect(unpack(frame.subarray(FRAME_HEADER_BYTES)).slice(0, 4)).toEqual([3, AckLevel.APPLIED, SENT_AT, 's1'])
  })

  test('handshake frames carry version 2 and the same layout in every version, so any two versions read them', () => {
    for (const version of [2, 3]) {
      const frame = encodeMessage(hello, version)
      expect(frame[4]).toBe(HANDSHAKE_FRAME_VERSION)
      expect(unpack(frame.subarray(FRAME_HEADER_BYTES))).toHaveLength(7)
    }
    // A HELLO from a future node is read whatever its header says, so it can be refused with a reason.
    const future = { ...new FrameDecoder(1 << 20).push(encodeMessage({ ...hello, protocol: 4 } as Message))[0]!, version: 4 }
    expect(decodeMessage(future, limits)).toMatchObject({ type: MessageType.HELLO, protocol: 4 })
  })

  test('before a version is agreed, a message other than the handshake must carry a version this node speaks', () => {
    expect(() => decodeMessage(frameOf(MessageType.PING, [1], 4), limits)).toThrow(/protocol version 4, expected 3 or 2/)
    expect(() => decodeMessage(frameOf(MessageType.PING, [1], 1), limits)).toThrow(/protocol version 1/)
  })
})

test('refuses an envelope nested deeper than any message is', () => {
  expect(() => decodeMessage(frameOf(MessageType.PING, [[[[[1]]]]]), limits)).toThrow(
    expect.objectContaining({ code: ErrorCodes.MALFORMED_DATA }),
  )
})

import { HandshakeRefusals, ProtocolError, type HandshakeRefusal } from '../base/errors.js'
import { decodeViews, packr } from '../codec/msgpack.js'
import { assertWellFormed, type ScanLimits } from '../codec/msgpack-scan.js'
import { encodeFrame, HANDSHAKE_FRAME_VERSION, PROTOCOL_VERSION, PROTOCOL_VERSIONS, type Frame } from './frame.js'
import {
  boolean,
  bytesItem,
  enumItem,
  fieldNameItem,
  integer,
  integerItem,
  listOf,
  nodeId,
  one,
  optional,
  optionalSid,
  optionalTime,
  pairOf,
  recordOf,
  sessionBlobItem,
  sessionValueItem,
  sid,
  sidItem,
  since,
  text,
  time,
  timeItem,
  version,
  WireReader,
  writeFields,
  type FieldCodec,
  type FieldCodecs,
  type MessageLimits,
  type ValuesOf,
} from './wire-fields.js'

export type { MessageLimits } from './wire-fields.js'

/**
 * The messages nodes exchange, mirroring Tomcat's DeltaManager (CREATED/DELTA = UPSERT, EXPIRED =
 * DESTROY, ACCESSED = EXPIRY, CHANGE_ID = RENAME, GET_ALL/ALL_DATA = SYNC_REQUEST/DIGEST/FETCH).
 * Each is a msgpack array after the frame header, its items in the order its declaration below
 * lists its fields: that one declaration gives the TypeScript type, the encoder and the checking
 * decoder, so nothing past `decodeMessage` handles unchecked network input.
 */
export const MessageType = {
  HELLO: 0x01,
  WELCOME: 0x02,
  REFUSE: 0x03,
  BYE: 0x04,
  AUTH: 0x05,
  READY: 0x06,
  PING: 0x10,
  PONG: 0x11,
  UPSERT: 0x20,
  DESTROY: 0x21,
  EXPIRY: 0x22,
  RENAME: 0x23,
  CLEAR: 0x24,
  ACK: 0x30,
  SYNC_REQUEST: 0x40,
  DIGEST: 0x41,
  FETCH: 0x42,
  FETCH_REPLY: 0x43,
} as const

/** What a data message asks of its receiver: nothing, an ack on receipt, or an ack once applied. */
export const AckLevel = { NONE: 0, RECEIVED: 1, APPLIED: 2 } as const
export type AckLevel = (typeof AckLevel)[keyof typeof AckLevel]

export const NONCE_BYTES = 32
export const KEY_ID_BYTES = 8
export const PROOF_BYTES = 32
/** No node accepts frames smaller than this (see `maxFrameBytes`): anything less in a HELLO is bogus. */
const MIN_FRAME_CAP = 64 * 1024

// ---- declaring a message ---------------------------------------------------------------------------

interface Schema<T extends number, F extends FieldCodecs> {
  readonly type: T
  readonly fields: F
  readonly entries: ReadonlyArray<readonly [string, FieldCodec<unknown>]>
  /** A data message (a change): it carries an ack request first, and is dropped on queue overflow. */
  readonly data: boolean
  /**
   * A handshake message: framed with `HANDSHAKE_FRAME_VERSION` and laid out the same in every
   * version, so nodes of any two versions read each other's HELLO and REFUSE. Never gains a field.
   */
  readonly handshake: boolean
  /** What errors in it are blamed on: `message 0x20`. */
  readonly what: string
}

function message<const T extends number, F extends FieldCodecs>(type: T, fields: F): Schema<T, F> {
  return { type, fields, entries: Object.entries(fields), data: false, handshake: false, what: `message 0x${type.toString(16)}` }
}

/** A handshake message (see `Schema.handshake`). */
function handshakeMessage<const T extends number, F extends FieldCodecs>(type: T, fields: F): Schema<T, F> {
  return { ...message(type, fields), handshake: true }
}

/** A change, sent with an ack request: the fields after it are the message's own. */
function dataMessage<const T extends number, F extends FieldCodecs>(type: T, fields: F): Schema<T, F> {
  return { ...message(type, fields), data: true }
}

/** The message a schema declares. */
type MessageOf<S> = S extends Schema<infer T, infer F> ? { readonly type: T } & ValuesOf<F> : never

/** A data message as sent: with the ack request the connection gave it, and when it was sent. */
type DataMessageOf<S> = MessageOf<S> & AckRequest & SentAt

/** Fields every data message starts with: what ack the sender waits for, and under which id. */
export interface AckRequest {
  readonly ackId: number
  readonly ackLevel: AckLevel
}

/** Since protocol 3, after the ack request of every data message: the sender's clock when it sent it. */
export interface SentAt {
  /** Ms since the epoch by the sender's clock; null from a protocol 2 peer. For the replication lag. */
  readonly sentAt: number | null
}

/** The protocol version that added `SentAt` to data messages and `bytes` to digest entries. */
export const TIMESTAMPS_SINCE = 3

// ---- field types used by several messages --------------------------------------------------------

const bytes = (length: number) => one(bytesItem(length))
const optionalBytes = (length: number) => one(optional(bytesItem(length)))
const frameCap: FieldCodec<number> = {
  write: (value, out) => integer.write(value, out),
  read: (reader: WireReader) => {
    const value = integer.read(reader)
    if (value < MIN_FRAME_CAP) reader.fail(`expected a frame cap of at least ${MIN_FRAME_CAP} bytes`)
    return value
  },
}
/** A session's size in bytes: no frame could carry more than 4 GiB, so nothing larger is believed. */
const MAX_SESSION_SIZE = 0xffff_ffff
const sessionSize: FieldCodec<number> = {
  write: (value, out) => integer.write(value, out),
  read: (reader: WireReader) => {
    const value = integer.read(reader)
    if (value > MAX_SESSION_SIZE) reader.fail(`expected a session size of at most ${MAX_SESSION_SIZE} bytes`)
    return value
  },
}
const refusal = one(enumItem<HandshakeRefusal>(Object.values(HandshakeRefusals), 'a refusal reason'))
const changeVersion = version(false)
/** A version or none: a create's base, an epoch before any clear. */
const baseVersion = version(true)
const batch = (limits: MessageLimits) => limits.maxBatch
const fieldsPerSession = (limits: MessageLimits) => limits.session.maxContainerLength

// ---- the messages ----------------------------------------------------------------------------------

/**
 * The handshake: HELLO (dialer) -> WELCOME (acceptor) -> AUTH (dialer) -> READY or REFUSE
 * (acceptor). With a secret, each side proves it knows the secret over a transcript that includes
 * fresh nonces from both, so a recorded handshake cannot be replayed.
 */
const HELLO = handshakeMessage(MessageType.HELLO, {
  protocol: integer,
  cluster: text(128),
  nodeId,
  /** Random per process start: tells a restarted peer from a second connection of the same one. */
  incarnation: text(64),
  /** The largest frame the dialer accepts (see `maxFrameBytes`); the acceptor sends nothing larger. */
  maxFrameBytes: frameCap,
  /** 32 fresh random bytes. */
  nonce: bytes(NONCE_BYTES),
  /** Which secret the dialer uses (a hash, see `deriveSecretKey`); null without a secret. */
  keyId: optionalBytes(KEY_ID_BYTES),
})
const WELCOME = handshakeMessage(MessageType.WELCOME, {
  cluster: text(128),
  nodeId,
  incarnation: text(64),
  /** The largest frame the acceptor accepts; the dialer sends nothing larger. */
  maxFrameBytes: frameCap,
  /** 32 fresh random bytes. */
  nonce: bytes(NONCE_BYTES),
  /** The acceptor's proof of the secret; null without a secret. */
  proof: optionalBytes(PROOF_BYTES),
})
const AUTH = handshakeMessage(MessageType.AUTH, {
  /** The dialer's proof of the secret; null without a secret. */
  proof: optionalBytes(PROOF_BYTES),
})
const READY = handshakeMessage(MessageType.READY, {})
const REFUSE = handshakeMessage(MessageType.REFUSE, {
  /** The refusing node's id, for the dialer's log only: a refusal is unauthenticated and teaches nothing. */
  nodeId,
  reason: refusal,
  detail: text(512),
})
const BYE = message(MessageType.BYE, { reason: text(512) })
const PING = message(MessageType.PING, { seq: integer })
const PONG = message(MessageType.PONG, { seq: integer })

/** A create (base = no version) or a change: only changed top-level fields travel. */
const UPSERT = dataMessage(MessageType.UPSERT, {
  sid,
  base: baseVersion,
  version: changeVersion,
  expiresAt: time,
  cookieExpires: optionalTime,
  /** The top-level fields set, each with its encoded value. */
  set: one(listOf(pairOf(fieldNameItem, sessionValueItem), fieldsPerSession)),
  /** The top-level fields removed. */
  remove: one(listOf(fieldNameItem, fieldsPerSession)),
})
const DESTROY = dataMessage(MessageType.DESTROY, {
  sid,
  version: changeVersion,
  keepUntil: time,
})
const EXPIRY_CHANGE = recordOf('expiry change', {
  sid,
  /** The version whose expiry moved: a later version carries its own expiry. */
  version: changeVersion,
  expiresAt: time,
  cookieExpires: optionalTime,
})
const EXPIRY = dataMessage(MessageType.EXPIRY, {
  changes: one(listOf(EXPIRY_CHANGE, batch)),
})
/** A session moved to a new id (failover rebinding): `from` becomes a tombstone naming `to`, which holds the data. */
const RENAME = dataMessage(MessageType.RENAME, {
  from: sid,
  to: sid,
  /** The version of `from` that moved. */
  base: changeVersion,
  /** The version of `to` (and of the tombstone left at `from`). */
  version: changeVersion,
  /** Until when the tombstone at `from` is kept. */
  keepUntil: time,
  /** How many times the session has moved, this move included. */
  rebinds: integer,
})
/** Every session and tombstone is gone; nothing from before `epoch` may come back. */
const CLEAR = dataMessage(MessageType.CLEAR, { epoch: baseVersion })
const ACK = message(MessageType.ACK, {
  /** Every data message up to and including this id has been received (or applied). */
  ackId: integer,
})
/** Asks for a digest. The first message on every new connection: it tells the sender's epoch. */
const SYNC_REQUEST = message(MessageType.SYNC_REQUEST, { syncId: integer, epoch: baseVersion })
const DIGEST_ENTRY = recordOf(
  'digest entry',
  {
    sid,
    version: changeVersion,
    /** A destroyed or moved session. */
    tombstone: boolean,
    /** For a moved session, its new id. */
    movedTo: optionalSid,
    expiresAt: time,
    /** Since protocol 3: the size of the session's bytes (0 for a tombstone), for a transfer's progress. */
    bytes: since(TIMESTAMPS_SINCE, sessionSize, null),
  },
  (entry) => (entry.movedTo !== null && !entry.tombstone ? 'a live entry that moved' : undefined),
)
const DIGEST = message(MessageType.DIGEST, {
  syncId: integer,
  /** The epoch (see CLEAR) the entries belong to. */
  epoch: baseVersion,
  entries: one(listOf(DIGEST_ENTRY, batch)),
  final: boolean,
})
const FETCH = message(MessageType.FETCH, { requestId: integer, sids: one(listOf(sidItem, batch)) })
/** A whole stored entry: a session (`blob`) or a tombstone (`blob === null`, `movedTo` for a move). */
export const SNAPSHOT_RECORD = recordOf(
  'snapshot',
  {
    sid,
    version: changeVersion,
    expiresAt: time,
    cookieExpires: optionalTime,
    blob: one(optional(sessionBlobItem)),
    movedTo: optionalSid,
    rebinds: one(integerItem),
  },
  (snapshot) => (snapshot.movedTo !== null && snapshot.blob !== null ? 'a live entry that moved' : undefined),
)
const FETCH_REPLY = message(MessageType.FETCH_REPLY, {
  requestId: integer,
  /** The epoch (see CLEAR) the snapshots belong to. */
  epoch: baseVersion,
  snapshots: one(listOf(SNAPSHOT_RECORD, batch)),
  final: boolean,
})

const SCHEMAS = [
  HELLO,
  WELCOME,
  AUTH,
  READY,
  REFUSE,
  BYE,
  PING,
  PONG,
  UPSERT,
  DESTROY,
  EXPIRY,
  RENAME,
  CLEAR,
  ACK,
  SYNC_REQUEST,
  DIGEST,
  FETCH,
  FETCH_REPLY,
] as const
const BY_TYPE = new Map<number, Schema<number, FieldCodecs>>(SCHEMAS.map((schema) => [schema.type, schema]))

export type Hello = MessageOf<typeof HELLO>
export type Welcome = MessageOf<typeof WELCOME>
export type Auth = MessageOf<typeof AUTH>
export type Ready = MessageOf<typeof READY>
export type Refuse = MessageOf<typeof REFUSE>
export type Bye = MessageOf<typeof BYE>
export type Ping = MessageOf<typeof PING>
export type Pong = MessageOf<typeof PONG>
export type Upsert = DataMessageOf<typeof UPSERT>
export type Destroy = DataMessageOf<typeof DESTROY>
export type Expiry = DataMessageOf<typeof EXPIRY>
export type ExpiryChange = Expiry['changes'][number]
export type Rename = DataMessageOf<typeof RENAME>
export type Clear = DataMessageOf<typeof CLEAR>
export type Ack = MessageOf<typeof ACK>
export type SyncRequest = MessageOf<typeof SYNC_REQUEST>
export type Digest = MessageOf<typeof DIGEST>
export type DigestEntry = Digest['entries'][number]
export type Fetch = MessageOf<typeof FETCH>
export type FetchReply = MessageOf<typeof FETCH_REPLY>
export type Snapshot = FetchReply['snapshots'][number]

export type DataMessage = Upsert | Destroy | Expiry | Rename | Clear
/** A data message before a connection gives it an ack request. */
export type OutgoingData =
  MessageOf<typeof UPSERT> | MessageOf<typeof DESTROY> | MessageOf<typeof EXPIRY> | MessageOf<typeof RENAME> | MessageOf<typeof CLEAR>
export type Message =
  Hello | Welcome | Auth | Ready | Refuse | Bye | Ping | Pong | DataMessage | Ack | SyncRequest | Digest | Fetch | FetchReply

/** Whether messages of `type` are changes (dropped when a queue overflows, acked on request). */
export function isDataType(type: number): boolean {
  return BY_TYPE.get(type)?.data === true
}

export function isDataMessage(message: Message): message is DataMessage {
  return isDataType(message.type)
}

// ---- encoding and decoding -------------------------------------------------------------------------

/** Encodes a message as protocol `protocol` lays it out (a handshake message: the same in every version). */
export function encodeMessage(message: Message, protocol: number = PROTOCOL_VERSION): Buffer {
  if (isDataMessage(message)) return encodeDataMessage(message, message.ackId, message.ackLevel, protocol, message.sentAt ?? Date.now())
  const schema = schemaOf(message.type)
  const out: unknown[] = []
  writeFields(schema.entries, message, out, protocol)
  return encodeFrame(message.type, packr.pack(out), schema.handshake ? HANDSHAKE_FRAME_VERSION : protocol)
}

/**
 * Encodes a data message with the ack request a connection chose for it, without copying the
 * message, as protocol `protocol` lays it out (from 3 on, with `sentAt`).
 */
export function encodeDataMessage(
  message: OutgoingData,
  ackId: number,
  ackLevel: AckLevel,
  protocol: number = PROTOCOL_VERSION,
  sentAt: number = Date.now(),
): Buffer {
  const out: unknown[] = protocol >= TIMESTAMPS_SINCE ? [ackId, ackLevel, sentAt] : [ackId, ackLevel]
  writeFields(schemaOf(message.type).entries, message, out, protocol)
  return encodeFrame(message.type, packr.pack(out), protocol)
}

/**
 * Decodes and checks one frame. Throws `ProtocolError` (or `MalformedDataError`) on anything
 * unexpected: the caller closes that connection and nothing else is affected.
 *
 * `protocol` is the version the connection agreed on: every frame must carry it. Before there is
 * one (during the handshake), a handshake message is read whatever version its header says (its
 * layout never changes, and the HELLO itself says which version its sender proposes); any other
 * message must carry a version this node speaks.
 */
export function decodeMessage(frame: Frame, limits: MessageLimits, protocol?: number): Message {
  const schema = BY_TYPE.get(frame.type)
  if (!schema) throw new ProtocolError(`unknown message type 0x${frame.type.toString(16)}`)
  const version = protocol ?? (schema.handshake ? HANDSHAKE_FRAME_VERSION : frame.version)
  if (protocol === undefined ? !schema.handshake && !PROTOCOL_VERSIONS.includes(frame.version) : frame.version !== protocol) {
    const expected = protocol === undefined ? PROTOCOL_VERSIONS.join(' or ') : String(protocol)
    throw new ProtocolError(`protocol version ${frame.version}, expected ${expected}`)
  }
  // The envelope is shallow: session values travel as opaque bytes and are checked on their own.
  assertWellFormed(frame.payload, envelopeLimits(limits))
  // Session bytes come out as views into the frame: the receiver copies what it keeps.
  const reader = new WireReader(decodeViews(frame.payload), schema.what, limits, version)
  // One object, filled in order: type, the ack request of a data message, the declared fields.
  const message: Record<string, unknown> = { type: frame.type }
  if (schema.data) readDataEnvelope(reader, message)
  for (const [key, codec] of schema.entries) message[key] = codec.read(reader)
  reader.end()
  return message as unknown as Message
}

const envelopes = new WeakMap<MessageLimits, ScanLimits>()

/** The scan limits of a message envelope, made once per set of message limits. */
function envelopeLimits(limits: MessageLimits): ScanLimits {
  let envelope = envelopes.get(limits)
  if (envelope === undefined) {
    envelope = { maxDepth: 4, maxContainerLength: Math.max(limits.maxBatch, 16) }
    envelopes.set(limits, envelope)
  }
  return envelope
}

/** The ack request, and from protocol 3 on the sender's clock, that every data message starts with. */
function readDataEnvelope(reader: WireReader, into: Record<string, unknown>): void {
  const ackId: number = integerItem.decode(reader.take(), reader)
  const ackLevel: number = integerItem.decode(reader.take(), reader)
  if (ackLevel > AckLevel.APPLIED || (ackLevel === AckLevel.NONE) !== (ackId === 0)) reader.fail('bad ack request')
  into.ackId = ackId
  into.ackLevel = ackLevel
  into.sentAt = reader.protocol >= TIMESTAMPS_SINCE ? timeItem.decode(reader.take(), reader) : null
}

function schemaOf(type: number): Schema<number, FieldCodecs> {
  const schema = BY_TYPE.get(type)
  if (!schema) throw new ProtocolError(`unknown message type 0x${type.toString(16)}`)
  return schema
}

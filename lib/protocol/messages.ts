import { decode, packr } from '../codec/msgpack.js'
import { assertWellFormed, readMapFields, type ScanLimits } from '../codec/msgpack-scan.js'
import { MAX_SESSION_ID_LENGTH } from '../codec/session-codec.js'
import { HandshakeRefusals, ProtocolError, type HandshakeRefusal } from '../base/errors.js'
import { MAX_COUNTER, type Version } from '../table/version.js'
import type { EntryState } from '../table/session-table.js'
import { NODE_ID_PATTERN } from '../table/node-id.js'
import { encodeFrame, PROTOCOL_VERSION, type Frame } from './frame.js'

/**
 * The messages nodes exchange, mirroring Tomcat's DeltaManager (CREATED/DELTA = UPSERT, EXPIRED =
 * DESTROY, ACCESSED = EXPIRY, CHANGE_ID = RENAME, GET_ALL/ALL_DATA = SYNC_REQUEST/DIGEST/FETCH).
 * Each is a msgpack array after the frame header; `decodeMessage` checks every field of every
 * message, so nothing past it handles unchecked network input.
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

/**
 * The handshake: HELLO (dialer) -> WELCOME (acceptor) -> AUTH (dialer) -> READY or REFUSE
 * (acceptor). With a secret, each side proves it knows the secret over a transcript that includes
 * fresh nonces from both, so a recorded handshake cannot be replayed.
 */
export interface Hello {
  readonly type: typeof MessageType.HELLO
  readonly protocol: number
  readonly cluster: string
  readonly nodeId: string
  /** Random per process start: tells a restarted peer from a second connection of the same one. */
  readonly incarnation: string
  /** The largest frame the dialer accepts (see `maxFrameBytes`); the acceptor sends nothing larger. */
  readonly maxFrameBytes: number
  /** 32 fresh random bytes. */
  readonly nonce: Buffer
  /** Which secret the dialer uses (a hash, see `deriveSecretKey`); null without a secret. */
  readonly keyId: Buffer | null
}
export interface Welcome {
  readonly type: typeof MessageType.WELCOME
  readonly cluster: string
  readonly nodeId: string
  readonly incarnation: string
  /** The largest frame the acceptor accepts; the dialer sends nothing larger. */
  readonly maxFrameBytes: number
  /** 32 fresh random bytes. */
  readonly nonce: Buffer
  /** The acceptor's proof of the secret; null without a secret. */
  readonly proof: Buffer | null
}
export interface Auth {
  readonly type: typeof MessageType.AUTH
  /** The dialer's proof of the secret; null without a secret. */
  readonly proof: Buffer | null
}
export interface Ready {
  readonly type: typeof MessageType.READY
}
export interface Refuse {
  readonly type: typeof MessageType.REFUSE
  /** The refusing node's id, for the dialer's log only: a refusal is unauthenticated and teaches nothing. */
  readonly nodeId: string
  readonly reason: HandshakeRefusal
  readonly detail: string
}
export interface Bye {
  readonly type: typeof MessageType.BYE
  readonly reason: string
}
export interface Ping {
  readonly type: typeof MessageType.PING
  readonly seq: number
}
export interface Pong {
  readonly type: typeof MessageType.PONG
  readonly seq: number
}

/** Fields every data message starts with: what ack the sender waits for, and under which id. */
export interface AckRequest {
  readonly ackId: number
  readonly ackLevel: AckLevel
}
/** A create (base = no version) or a change: only changed top-level fields travel. */
export interface Upsert extends AckRequest {
  readonly type: typeof MessageType.UPSERT
  readonly sid: string
  readonly base: Version
  readonly version: Version
  readonly expiresAt: number
  readonly cookieExpires: number | null
  readonly set: ReadonlyArray<readonly [string, Buffer]>
  readonly remove: readonly string[]
}
export interface Destroy extends AckRequest {
  readonly type: typeof MessageType.DESTROY
  readonly sid: string
  readonly version: Version
  readonly keepUntil: number
}
export interface ExpiryChange {
  readonly sid: string
  /** The version whose expiry moved: a later version carries its own expiry. */
  readonly version: Version
  readonly expiresAt: number
  readonly cookieExpires: number | null
}
export interface Expiry extends AckRequest {
  readonly type: typeof MessageType.EXPIRY
  readonly changes: readonly ExpiryChange[]
}
/** A session moved to a new id (failover rebinding): `from` becomes a tombstone, `to` holds the data. */
export interface Rename extends AckRequest {
  readonly type: typeof MessageType.RENAME
  readonly from: string
  readonly to: string
  /** The version of `from` that moved. */
  readonly base: Version
  /** The version of `to` (and of the tombstone left at `from`). */
  readonly version: Version
  /** Until when the tombstone at `from` is kept. */
  readonly keepUntil: number
  /** How many times the session has moved, this move included. */
  readonly rebinds: number
}
/** Every session and tombstone is gone; nothing from before `epoch` may come back. */
export interface Clear extends AckRequest {
  readonly type: typeof MessageType.CLEAR
  readonly epoch: Version
}
export interface Ack {
  readonly type: typeof MessageType.ACK
  /** Every data message up to and including this id has been received (or applied). */
  readonly ackId: number
}
/** Asks for a digest. The first message on every new connection: it tells the sender's epoch. */
export interface SyncRequest {
  readonly type: typeof MessageType.SYNC_REQUEST
  readonly syncId: number
  readonly epoch: Version
}
export interface DigestEntry {
  readonly sid: string
  readonly version: Version
  /** A destroyed or moved session. */
  readonly tombstone: boolean
  /** For a moved session, its new id. */
  readonly movedTo: string | null
  readonly expiresAt: number
}
export interface Digest {
  readonly type: typeof MessageType.DIGEST
  readonly syncId: number
  /** The epoch (see `Clear`) the entries belong to. */
  readonly epoch: Version
  readonly entries: readonly DigestEntry[]
  readonly final: boolean
}
export interface Fetch {
  readonly type: typeof MessageType.FETCH
  readonly requestId: number
  readonly sids: readonly string[]
}
/** A whole stored entry: a session (`blob`) or a tombstone (`blob === null`, `movedTo` for a move). */
export interface Snapshot extends EntryState {
  readonly sid: string
}
export interface FetchReply {
  readonly type: typeof MessageType.FETCH_REPLY
  readonly requestId: number
  /** The epoch (see `Clear`) the snapshots belong to. */
  readonly epoch: Version
  readonly snapshots: readonly Snapshot[]
  readonly final: boolean
}

export type DataMessage = Upsert | Destroy | Expiry | Rename | Clear

/** A data message before a connection gives it an ack request. */
export type OutgoingData = DataMessage extends infer M ? (M extends DataMessage ? Omit<M, 'ackId' | 'ackLevel'> : never) : never
export type Message = Hello | Welcome | Auth | Ready | Refuse | Bye | Ping | Pong | DataMessage | Ack | SyncRequest | Digest | Fetch | FetchReply

export function isDataMessage(message: Message): message is DataMessage {
  return message.type >= MessageType.UPSERT && message.type <= MessageType.CLEAR
}

/** Bounds on what one message may carry; derived from the store's options. */
export interface MessageLimits {
  /** Limits for each session value and blob (the store's own). */
  readonly session: ScanLimits & { readonly maxSessionBytes: number }
  /** Most items in one batch (digest entries, fetched ids, expiry changes). */
  readonly maxBatch: number
}

export function encodeMessage(message: Message): Buffer {
  return encodeFrame(message.type, packr.pack(toWire(message)))
}

function toWire(message: Message): unknown[] {
  switch (message.type) {
    case MessageType.HELLO:
      return [message.protocol, message.cluster, message.nodeId, message.incarnation, message.maxFrameBytes, message.nonce, message.keyId]
    case MessageType.WELCOME:
      return [message.cluster, message.nodeId, message.incarnation, message.maxFrameBytes, message.nonce, message.proof]
    case MessageType.AUTH:
      return [message.proof]
    case MessageType.READY:
      return []
    case MessageType.REFUSE:
      return [message.nodeId, message.reason, message.detail]
    case MessageType.BYE:
      return [message.reason]
    case MessageType.PING:
    case MessageType.PONG:
      return [message.seq]
    case MessageType.UPSERT:
    case MessageType.DESTROY:
    case MessageType.EXPIRY:
    case MessageType.RENAME:
    case MessageType.CLEAR:
      return dataToWire(message, message.ackId, message.ackLevel)
    case MessageType.ACK:
      return [message.ackId]
    case MessageType.SYNC_REQUEST:
      return [message.syncId, ...versionToWire(message.epoch)]
    case MessageType.DIGEST:
      return [
        message.syncId,
        ...versionToWire(message.epoch),
        message.entries.map((entry) => [entry.sid, ...versionToWire(entry.version), entry.tombstone, entry.movedTo, entry.expiresAt]),
        message.final,
      ]
    case MessageType.FETCH:
      return [message.requestId, message.sids]
    case MessageType.FETCH_REPLY:
      return [message.requestId, ...versionToWire(message.epoch), message.snapshots.map(snapshotToWire), message.final]
  }
}

/** A data message's fields after the ack request, without copying the message (the hot path). */
function dataToWire(message: OutgoingData, ackId: number, ackLevel: AckLevel): unknown[] {
  switch (message.type) {
    case MessageType.UPSERT:
      return [
        ackId,
        ackLevel,
        message.sid,
        message.base.counter,
        message.base.origin,
        message.version.counter,
        message.version.origin,
        message.expiresAt,
        message.cookieExpires,
        message.set,
        message.remove,
      ]
    case MessageType.DESTROY:
      return [ackId, ackLevel, message.sid, message.version.counter, message.version.origin, message.keepUntil]
    case MessageType.EXPIRY:
      return [ackId, ackLevel, message.changes.map((change) => [change.sid, change.version.counter, change.version.origin, change.expiresAt, change.cookieExpires])]
    case MessageType.RENAME:
      return [
        ackId,
        ackLevel,
        message.from,
        message.to,
        message.base.counter,
        message.base.origin,
        message.version.counter,
        message.version.origin,
        message.keepUntil,
        message.rebinds,
      ]
    case MessageType.CLEAR:
      return [ackId, ackLevel, ...versionToWire(message.epoch)]
  }
}

/** Encodes a data message with the ack request a connection chose for it. */
export function encodeDataMessage(message: OutgoingData, ackId: number, ackLevel: AckLevel): Buffer {
  return encodeFrame(message.type, packr.pack(dataToWire(message, ackId, ackLevel)))
}

function versionToWire(version: Version): [number, string] {
  return [version.counter, version.origin]
}

function snapshotToWire(snapshot: Snapshot): unknown[] {
  return [snapshot.sid, ...versionToWire(snapshot.version), snapshot.expiresAt, snapshot.cookieExpires, snapshot.blob, snapshot.movedTo, snapshot.rebinds]
}

/**
 * Decodes and checks one frame. Throws `ProtocolError` (or `MalformedDataError`) on anything
 * unexpected: the caller closes that connection and nothing else is affected.
 */
export function decodeMessage(frame: Frame, limits: MessageLimits): Message {
  if (frame.version !== PROTOCOL_VERSION) throw new ProtocolError(`protocol version ${frame.version}, expected ${PROTOCOL_VERSION}`)
  // The envelope is shallow: session values travel as opaque bytes and are checked on their own.
  assertWellFormed(frame.payload, { maxDepth: 4, maxContainerLength: Math.max(limits.maxBatch, 16) })
  const fields = new Fields(decode(frame.payload), frame.type)
  const message = fromWire(frame.type, fields, limits)
  fields.end()
  return message
}

function fromWire(type: number, f: Fields, limits: MessageLimits): Message {
  switch (type) {
    case MessageType.HELLO:
      return {
        type,
        protocol: f.integer(),
        cluster: f.text(128),
        nodeId: f.nodeId(),
        incarnation: f.text(64),
        maxFrameBytes: f.frameCap(),
        nonce: f.fixedBytes(NONCE_BYTES),
        keyId: f.optionalFixedBytes(KEY_ID_BYTES),
      }
    case MessageType.WELCOME:
      return {
        type,
        cluster: f.text(128),
        nodeId: f.nodeId(),
        incarnation: f.text(64),
        maxFrameBytes: f.frameCap(),
        nonce: f.fixedBytes(NONCE_BYTES),
        proof: f.optionalFixedBytes(PROOF_BYTES),
      }
    case MessageType.AUTH:
      return { type, proof: f.optionalFixedBytes(PROOF_BYTES) }
    case MessageType.READY:
      return { type }
    case MessageType.REFUSE:
      return { type, nodeId: f.nodeId(), reason: f.refusal(), detail: f.text(512) }
    case MessageType.BYE:
      return { type, reason: f.text(512) }
    case MessageType.PING:
    case MessageType.PONG:
      return { type, seq: f.integer() }
    case MessageType.UPSERT: {
      const ack = f.ackRequest()
      const sid = f.sid()
      const base = f.version(true)
      const version = f.version(false)
      const expiresAt = f.time()
      const cookieExpires = f.optionalTime()
      const set = f.list(limits.session.maxContainerLength, (item) => {
        const pair = new Fields(item, type)
        const entry = [pair.fieldName(), pair.sessionValue(limits)] as const
        pair.end()
        return entry
      })
      const remove = f.list(limits.session.maxContainerLength, (item) => Fields.fieldName(item, type))
      return { type, ...ack, sid, base, version, expiresAt, cookieExpires, set, remove }
    }
    case MessageType.DESTROY:
      return { type, ...f.ackRequest(), sid: f.sid(), version: f.version(false), keepUntil: f.time() }
    case MessageType.EXPIRY: {
      const ack = f.ackRequest()
      const changes = f.list(limits.maxBatch, (item) => {
        const change = new Fields(item, type)
        const parsed = { sid: change.sid(), version: change.version(false), expiresAt: change.time(), cookieExpires: change.optionalTime() }
        change.end()
        return parsed
      })
      return { type, ...ack, changes }
    }
    case MessageType.RENAME:
      return { type, ...f.ackRequest(), from: f.sid(), to: f.sid(), base: f.version(false), version: f.version(false), keepUntil: f.time(), rebinds: f.integer() }
    case MessageType.CLEAR:
      return { type, ...f.ackRequest(), epoch: f.version(true) }
    case MessageType.ACK:
      return { type, ackId: f.integer() }
    case MessageType.SYNC_REQUEST:
      return { type, syncId: f.integer(), epoch: f.version(true) }
    case MessageType.DIGEST: {
      const syncId = f.integer()
      const epoch = f.version(true)
      const entries = f.list(limits.maxBatch, (item) => {
        const entry = new Fields(item, type)
        const parsed = { sid: entry.sid(), version: entry.version(false), tombstone: entry.boolean(), movedTo: entry.optionalSid(), expiresAt: entry.time() }
        entry.end()
        if (parsed.movedTo !== null && !parsed.tombstone) throw new ProtocolError(`message 0x${type.toString(16)}: a live entry that moved`)
        return parsed
      })
      return { type, syncId, epoch, entries, final: f.boolean() }
    }
    case MessageType.FETCH:
      return { type, requestId: f.integer(), sids: f.list(limits.maxBatch, (item) => Fields.sid(item, type)) }
    case MessageType.FETCH_REPLY: {
      const requestId = f.integer()
      const epoch = f.version(true)
      const snapshots = f.list(limits.maxBatch, (item) => {
        const snapshot = new Fields(item, type)
        const parsed = {
          sid: snapshot.sid(),
          version: snapshot.version(false),
          expiresAt: snapshot.time(),
          cookieExpires: snapshot.optionalTime(),
          blob: snapshot.optionalBlob(limits),
          movedTo: snapshot.optionalSid(),
          rebinds: snapshot.integer(),
        }
        snapshot.end()
        if (parsed.movedTo !== null && parsed.blob !== null) throw new ProtocolError(`message 0x${type.toString(16)}: a live entry that moved`)
        return parsed
      })
      return { type, requestId, epoch, snapshots, final: f.boolean() }
    }
    default:
      throw new ProtocolError(`unknown message type 0x${type.toString(16)}`)
  }
}

const MAX_FIELD_NAME_LENGTH = 1024
/** No node accepts frames smaller than this (see `maxFrameBytes`): anything less in a HELLO is bogus. */
const MIN_FRAME_CAP = 64 * 1024
export const NONCE_BYTES = 32
export const KEY_ID_BYTES = 8
export const PROOF_BYTES = 32
const REFUSALS = new Set<string>(Object.values(HandshakeRefusals))

/** Reads the items of a decoded message array in order, checking each one's type and bounds. */
class Fields {
  readonly #items: unknown[]
  readonly #type: number
  #next = 0

  constructor(value: unknown, type: number) {
    if (!Array.isArray(value)) throw new ProtocolError(`message 0x${type.toString(16)} is not an array`)
    this.#items = value
    this.#type = type
  }

  static sid(value: unknown, type: number): string {
    return Fields.#checkSid(value, type)
  }

  static fieldName(value: unknown, type: number): string {
    if (typeof value !== 'string' || value.length === 0 || value.length > MAX_FIELD_NAME_LENGTH || value === '__proto__') {
      throw new ProtocolError(`message 0x${type.toString(16)}: bad session field name`)
    }
    return value
  }

  end(): void {
    if (this.#next !== this.#items.length) this.#fail(`${this.#items.length - this.#next} unexpected trailing items`)
  }

  integer(): number {
    const value = this.#take()
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) this.#fail('expected a non-negative integer')
    return value as number
  }

  /** A peer's frame cap: no smaller than the smallest a node can be configured with. */
  frameCap(): number {
    const value = this.integer()
    if (value < MIN_FRAME_CAP) this.#fail(`expected a frame cap of at least ${MIN_FRAME_CAP} bytes`)
    return value
  }

  boolean(): boolean {
    const value = this.#take()
    if (typeof value !== 'boolean') this.#fail('expected a boolean')
    return value as boolean
  }

  text(maxLength: number): string {
    const value = this.#take()
    if (typeof value !== 'string' || value.length > maxLength) this.#fail(`expected a string of at most ${maxLength} characters`)
    return value as string
  }

  nodeId(): string {
    const value = this.#take()
    if (typeof value !== 'string' || !NODE_ID_PATTERN.test(value)) this.#fail('expected a node id')
    return value as string
  }

  refusal(): HandshakeRefusal {
    const value = this.#take()
    if (typeof value !== 'string' || !REFUSALS.has(value)) this.#fail('expected a refusal reason')
    return value as HandshakeRefusal
  }

  sid(): string {
    return Fields.#checkSid(this.#take(), this.#type)
  }

  optionalSid(): string | null {
    if (this.#items[this.#next] === null) {
      this.#next += 1
      return null
    }
    return this.sid()
  }

  fieldName(): string {
    return Fields.fieldName(this.#take(), this.#type)
  }

  /** A version; `allowNone` admits the "no version" base of a create (counter 0, origin ''). */
  version(allowNone: boolean): Version {
    const counter = this.integer()
    const origin = this.#take()
    if (allowNone && counter === 0 && origin === '') return { counter, origin }
    if (counter === 0 || counter > MAX_COUNTER || typeof origin !== 'string' || !NODE_ID_PATTERN.test(origin)) this.#fail('expected a version')
    return { counter, origin: origin as string }
  }

  time(): number {
    const value = this.#take()
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) this.#fail('expected a time in ms')
    return value as number
  }

  optionalTime(): number | null {
    if (this.#items[this.#next] === null) {
      this.#next += 1
      return null
    }
    return this.time()
  }

  ackRequest(): AckRequest {
    const ackId = this.integer()
    const ackLevel = this.integer()
    if (ackLevel > AckLevel.APPLIED || (ackLevel === AckLevel.NONE) !== (ackId === 0)) this.#fail('bad ack request')
    return { ackId, ackLevel: ackLevel as AckLevel }
  }

  fixedBytes(length: number): Buffer {
    const value = this.#take()
    if (!Buffer.isBuffer(value) || value.length !== length) this.#fail(`expected ${length} bytes`)
    return value as Buffer
  }

  optionalFixedBytes(length: number): Buffer | null {
    if (this.#items[this.#next] === null) {
      this.#next += 1
      return null
    }
    return this.fixedBytes(length)
  }

  /** One session field value: msgpack bytes that must pass the store's own limits. */
  sessionValue(limits: MessageLimits): Buffer {
    const value = this.#bytes(limits)
    // A field value sits one level below the session map.
    assertWellFormed(value, { ...limits.session, maxDepth: limits.session.maxDepth - 1 })
    return value
  }

  /** A whole session (a msgpack map of fields), or null for a tombstone. */
  optionalBlob(limits: MessageLimits): Buffer | null {
    if (this.#items[this.#next] === null) {
      this.#next += 1
      return null
    }
    const blob = this.#bytes(limits)
    readMapFields(blob, limits.session)
    return blob
  }

  list<T>(maxLength: number, parse: (item: unknown) => T): T[] {
    const value = this.#take()
    if (!Array.isArray(value) || value.length > maxLength) this.#fail(`expected a list of at most ${maxLength} items`)
    return (value as unknown[]).map(parse)
  }

  #bytes(limits: MessageLimits): Buffer {
    const value = this.#take()
    if (!Buffer.isBuffer(value) || value.length > limits.session.maxSessionBytes) this.#fail('expected session bytes within maxSessionBytes')
    return value as Buffer
  }

  #take(): unknown {
    if (this.#next >= this.#items.length) this.#fail('too few items')
    return this.#items[this.#next++]
  }

  #fail(reason: string): never {
    throw new ProtocolError(`message 0x${this.#type.toString(16)}, item ${this.#next - 1}: ${reason}`)
  }

  static #checkSid(value: unknown, type: number): string {
    if (typeof value !== 'string' || value.length === 0 || value.length > MAX_SESSION_ID_LENGTH) {
      throw new ProtocolError(`message 0x${type.toString(16)}: bad session id`)
    }
    return value
  }
}

import fc from 'fast-check'
import { pack } from '../../helpers/msgpack.js'
import { encodeFrame, FrameDecoder, frameHeader, SEALED_RECORD } from '../../../lib/protocol/frame.js'
import { decodeMessage, encodeMessage, MessageType, type MessageLimits } from '../../../lib/protocol/messages.js'
import { MalformedDataError, PeerStoreError, ProtocolError } from '../../../lib/index.js'
import { RecordOpener, RecordSealer } from '../../../lib/security/record.js'

/**
 * Property-based fuzzing of everything that reads bytes from the network. `npm run fuzz` runs the
 * same properties much longer (FUZZ_RUNS, default here 300 per property).
 */
const RUNS = Number(process.env.FUZZ_RUNS ?? 300)
const settings = { numRuns: RUNS }
const limits: MessageLimits = { session: { maxSessionBytes: 8192, maxDepth: 8, maxContainerLength: 8192 }, maxBatch: 100 }
const CAP = 4096

/** Splits bytes into chunks at the given cut points. */
function chunked(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b)
  const chunks: Buffer[] = []
  let start = 0
  for (const point of points) {
    chunks.push(bytes.subarray(start, point))
    start = point
  }
  chunks.push(bytes.subarray(start))
  return chunks
}

const frameArbitrary = fc.record({ type: fc.integer({ min: 0, max: 255 }), payload: fc.uint8Array({ maxLength: 600 }) })

test('frame decoder: any frames, split anywhere, come out whole and in order', () => {
  fc.assert(
    fc.property(fc.array(frameArbitrary, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 20 }), (frames, cuts) => {
      const stream = Buffer.concat(frames.map((frame) => encodeFrame(frame.type, frame.payload)))
      const decoder = new FrameDecoder(CAP)
      const out = chunked(stream, cuts).flatMap((chunk) => decoder.push(chunk))
      expect(out.map((frame) => [frame.type, Buffer.from(frame.payload).toString('hex')])).toEqual(
        frames.map((frame) => [frame.type, Buffer.from(frame.payload).toString('hex')]),
      )
      expect(decoder.bufferedBytes).toBe(0)
    }),
    settings,
  )
})

test('frame decoder: arbitrary bytes either frame or fail as a ProtocolError, never buffering past the cap', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 3 * CAP }), fc.array(fc.nat(), { maxLength: 20 }), (bytes, cuts) => {
      const decoder = new FrameDecoder(CAP)
      try {
        for (const chunk of chunked(Buffer.from(bytes), cuts)) {
          decoder.push(chunk)
          expect(decoder.bufferedBytes).toBeLessThanOrEqual(CAP)
        }
      } catch (error) {
        expect(error).toBeInstanceOf(ProtocolError)
      }
    }),
    settings,
  )
})

/** Values a hostile peer could put in a message: anything msgpack can carry, Buffers included. */
const hostileValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double(),
    fc.string({ maxLength: 40 }),
    fc.uint8Array({ maxLength: 60 }).map((bytes) => Buffer.from(bytes)),
    fc.date({ noInvalidDate: true }),
    fc.array(tie('value'), { maxLength: 6 }),
    fc.dictionary(fc.string({ maxLength: 10 }), tie('value'), { maxKeys: 6 }),
  ),
})).value

function onlyCodedErrors(run: () => unknown): void {
  try {
    run()
  } catch (error) {
    // Every rejection is one of ours, with a code: never a TypeError or RangeError from deep inside.
    expect(error).toBeInstanceOf(PeerStoreError)
    expect(error instanceof ProtocolError || error instanceof MalformedDataError).toBe(true)
  }
}

test('message validator: any msgpack value under any message type is accepted or refused with a coded error', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 255 }), fc.array(hostileValue, { maxLength: 12 }), (type, items) => {
      const [frame] = new FrameDecoder(1 << 22).push(encodeFrame(type, pack(items)))
      onlyCodedErrors(() => decodeMessage(frame!, limits))
    }),
    settings,
  )
})

test('message validator: arbitrary payload bytes are accepted or refused with a coded error', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 300 }), (type, payload) => {
      const [frame] = new FrameDecoder(1 << 22).push(encodeFrame(type, payload))
      onlyCodedErrors(() => decodeMessage(frame!, limits))
    }),
    settings,
  )
})

test('message validator: a valid UPSERT with session values survives encode and decode unchanged', () => {
  const field = fc.tuple(
    fc.string({ minLength: 1, maxLength: 12 }).filter((key) => key !== '__proto__'),
    hostileValue,
  )
  fc.assert(
    fc.property(fc.uniqueArray(field, { selector: ([key]) => key, maxLength: 6 }), fc.integer({ min: 1, max: 1000 }), (fields, counter) => {
      const message = {
        type: MessageType.UPSERT,
        ackId: 0,
        ackLevel: 0,
        sentAt: 1_800_000_000_000,
        sid: 's.was1',
        base: { counter, origin: 'was1' },
        version: { counter: counter + 1, origin: 'was2' },
        expiresAt: 1_900_000_000_000,
        cookieExpires: null,
        set: fields.map(([key, value]) => [key, pack(value)] as const),
        remove: [],
      } as const
      const [frame] = new FrameDecoder(1 << 22).push(encodeMessage(message))
      let decoded: unknown
      try {
        decoded = decodeMessage(frame!, limits)
      } catch (error) {
        // Only the store's own limits may refuse a well-formed message (depth, size).
        expect(error).toBeInstanceOf(MalformedDataError)
        return
      }
      expect(decoded).toEqual(message)
    }),
    settings,
  )
})

test('record layer: changing any byte of a sealed record makes it fail authentication', () => {
  const key = Buffer.alloc(32, 7)
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 400 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (plain, at, flip) => {
      const sealed = new RecordSealer(key).seal(frameHeader(SEALED_RECORD, plain.length + 16), Buffer.from(plain))
      const tampered = Buffer.from(sealed)
      const index = at % tampered.length
      tampered[index] = (tampered[index] ?? 0) ^ flip
      const header = frameHeader(SEALED_RECORD, tampered.length)
      expect(() => new RecordOpener(key).open(header, tampered)).toThrow(ProtocolError)
      expect(new RecordOpener(key).open(header, sealed).equals(Buffer.from(plain))).toBe(true)
    }),
    settings,
  )
})

import { encodeFrame, FrameDecoder, FRAME_HEADER_BYTES, PROTOCOL_VERSION } from '../../../lib/protocol/frame.js'
import { ErrorCodes } from '../../../lib/index.js'

const frames = [
  encodeFrame(0x20, Buffer.from('first payload')),
  encodeFrame(0x10, Buffer.alloc(0)),
  encodeFrame(0x21, Buffer.alloc(3000, 7)),
]
const stream = Buffer.concat(frames)

function decodeAll(chunks: Buffer[]): { type: number; payload: string }[] {
  const decoder = new FrameDecoder(1 << 20)
  const out = chunks.flatMap((chunk) => decoder.push(chunk))
  expect(decoder.bufferedBytes).toBe(0)
  return out.map((frame) => {
    expect(frame.version).toBe(PROTOCOL_VERSION)
    return { type: frame.type, payload: frame.payload.toString('hex') }
  })
}

const expected = decodeAll([stream])

test('a frame is a length, a version byte, a type byte and the payload', () => {
  const frame = encodeFrame(0x42, Buffer.from([1, 2, 3]))
  expect([...frame]).toEqual([0, 0, 0, 5, PROTOCOL_VERSION, 0x42, 1, 2, 3])
  expect(expected.map((frame) => frame.type)).toEqual([0x20, 0x10, 0x21])
})

test('every split of the stream into two chunks decodes the same frames', () => {
  for (let cut = 0; cut <= stream.length; cut++) {
    expect(decodeAll([stream.subarray(0, cut), stream.subarray(cut)])).toEqual(expected)
  }
})

test('every split into three chunks around the headers decodes the same frames', () => {
  const edges = [
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    frames[0]!.length - 1,
    frames[0]!.length,
    frames[0]!.length + 3,
    frames[0]!.length + FRAME_HEADER_BYTES,
  ]
  for (const first of edges) {
    for (let second = first; second <= Math.min(stream.length, first + 40); second++) {
      expect(decodeAll([stream.subarray(0, first), stream.subarray(first, second), stream.subarray(second)])).toEqual(expected)
    }
  }
})

test('one byte at a time decodes the same frames', () => {
  expect(decodeAll([...stream].map((byte) => Buffer.from([byte])))).toEqual(expected)
})

test('a length prefix above the cap is refused before the frame is buffered', () => {
  const decoder = new FrameDecoder(1024)
  const header = Buffer.from([0x7f, 0xff, 0xff, 0xff])
  expect(() => decoder.push(header)).toThrow(expect.objectContaining({ code: ErrorCodes.PROTOCOL }))
})

test('a frame exactly at the cap is accepted, one byte more is not', () => {
  const cap = 100
  const fits = encodeFrame(1, Buffer.alloc(cap - FRAME_HEADER_BYTES))
  expect(new FrameDecoder(cap).push(fits)).toHaveLength(1)
  const tooBig = encodeFrame(1, Buffer.alloc(cap - FRAME_HEADER_BYTES + 1))
  expect(() => new FrameDecoder(cap).push(tooBig)).toThrow(/exceeds the 100-byte limit/)
})

test('a length shorter than the header is refused', () => {
  expect(() => new FrameDecoder(1024).push(Buffer.from([0, 0, 0, 1, 1]))).toThrow(/shorter than its header/)
})

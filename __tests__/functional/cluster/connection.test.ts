import { PROTOCOL_VERSION } from '../../../lib/protocol/frame.js'
import { once } from 'node:events'
import { createServer, connect, type Server, type Socket } from 'node:net'
import { Connection } from '../../../lib/cluster/connection.js'
import { AckLevel, encodeDataMessage, encodeMessage, MessageType } from '../../../lib/protocol/messages.js'
import { emptyTransportStats } from '../../../lib/cluster/cluster.js'
import { ErrorCodes } from '../../../lib/index.js'

/** One Connection over a real loopback socket, whose other end is a plain socket the test drives. */
const limits = { session: { maxSessionBytes: 1 << 16, maxDepth: 16, maxContainerLength: 1 << 16 }, maxBatch: 100 }
let server: Server
let far: Socket
let connection: Connection

beforeEach(async () => {
  server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.4.41', resolve))
  const accepted = once(server, 'connection') as Promise<[Socket]>
  const near = connect((server.address() as { port: number }).port, '127.0.4.41')
  await once(near, 'connect')
  ;[far] = await accepted
  far.on('data', () => undefined) // reads everything, answers nothing
  const options = {
    maxFrameBytes: 1 << 20,
    maxQueueBytes: 1 << 22,
    limits,
    label: 'test',
    idleTimeoutMs: 60_000,
    ackTimeoutMs: 200,
    stats: emptyTransportStats(),
  }
  connection = new Connection(near, options, { message: () => undefined, closed: () => undefined })
  connection.established(1 << 20, PROTOCOL_VERSION)
})

afterEach(async () => {
  connection.destroy()
  far.destroy()
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

const destroy = (sid: string) =>
  ({ type: MessageType.DESTROY, sid, version: { counter: 1, origin: 'was1' }, keepUntil: Date.now() + 60_000 }) as const

test('acks a peer withholds: every wait ends after ackTimeout, while the connection stays open', async () => {
  const waits = Array.from({ length: 50 }, (_, i) =>
    connection.sendData(destroy(`s${i}`), AckLevel.RECEIVED)!.catch((error: { code?: string }) => error.code),
  )
  expect(await Promise.all(waits)).toEqual(Array(50).fill(ErrorCodes.REPLICATION_TIMEOUT))
  expect(connection.closed).toBe(false)
})

test('an ack settles every wait up to it, before any deadline', async () => {
  const waits = [1, 2, 3].map((i) =>
    connection.sendData(destroy(`s${i}`), AckLevel.RECEIVED)!.then(
      () => 'acked',
      (error: { code?: string }) => error.code,
    ),
  )
  // The far side acknowledges everything up to ack id 2, as a peer does.
  far.write(encodeMessage({ type: MessageType.ACK, ackId: 2 }))
  expect(await Promise.all(waits)).toEqual(['acked', 'acked', ErrorCodes.REPLICATION_TIMEOUT])
})

test('a frame larger than the peer accepts is not sent, and is counted', async () => {
  connection.established(64 * 1024, PROTOCOL_VERSION)
  const upsert = {
    type: MessageType.UPSERT,
    sid: 'big',
    base: { counter: 0, origin: '' },
    version: { counter: 1, origin: 'was1' },
    expiresAt: Date.now() + 60_000,
    cookieExpires: null,
    set: [['pad', Buffer.alloc(70_000)]] as Array<readonly [string, Buffer]>,
    remove: [],
  } as const
  await expect(connection.sendData(upsert, AckLevel.RECEIVED)).rejects.toMatchObject({ code: ErrorCodes.FRAME_TOO_LARGE })
  expect(connection.sendData(upsert, AckLevel.NONE)).toBeUndefined()
  expect(connection.closed).toBe(false)
})

test('a graceful close while the peer keeps sending changes that ask for acks: nothing written after the end, no error', async () => {
  const ended: Array<Error | undefined> = []
  connection.setHandlers({ message: () => undefined, closed: (error) => ended.push(error) })
  let ackId = 1
  // The far side keeps replicating, each change asking for an ack, until the connection is gone.
  const pump = setInterval(() => {
    if (far.writable) for (let i = 0; i < 20; i++) far.write(encodeDataMessage(destroy(`x${ackId}`), ackId++, AckLevel.RECEIVED))
  }, 1)
  far.once('data', () => void connection.close(5000))
  connection.send({ type: MessageType.PING, seq: 1 })
  await connection.done
  clearInterval(pump)
  expect(ended).toEqual([undefined])
})

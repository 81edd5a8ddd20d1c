/**
 * The replication lag a receiver measures from the sender's clock in each batch of changes
 * (protocol 3), through the replication seam's `measured` event: a hand-driven peer sends changes
 * stamped as it likes, over a real socket.
 */
import { pack } from '../../helpers/msgpack.js'
import { RawPeer } from '../../helpers/raw-peer.js'
import { resolveOptions } from '../../../lib/peer-store/options.js'
import { PROTOCOL_VERSION } from '../../../lib/protocol/frame.js'
import { AckLevel, encodeMessage, MessageType, type Message } from '../../../lib/protocol/messages.js'
import { createReplication } from '../../../lib/replication/create-replication.js'
import type { Measurement, Replication } from '../../../lib/replication/replication.js'
import { SessionTable } from '../../../lib/table/session-table.js'

const HOST = '127.0.18.30'
const PORT = 4184

let replication: Replication
let measured: Measurement[]
let applied: Array<() => void>

beforeEach(async () => {
  const options = resolveOptions([{ host: '127.0.18.31', port: PORT, nodeId: 'was2' }], {
    nodeId: 'was1',
    listen: `${HOST}:${PORT}`,
    clusterName: 'shop',
    retry: () => 60_000, // the configured peer is not running: only the raw peer's connection matters
  })
  const table = new SessionTable(
    { nodeId: 'was1', tombstoneTtlMs: 60_000, expiryResolutionMs: 1000, maxRebinds: 4, touchAfterMs: 0 },
    Date.now(),
  )
  const session = { maxSessionBytes: options.maxSessionBytes, maxDepth: options.maxDepth, maxContainerLength: options.maxContainerLength }
  measured = []
  applied = []
  replication = createReplication(
    table,
    { ...options, session },
    {
      memberChanged: () => undefined,
      replicated: () => applied.shift()?.(),
      synced: () => undefined,
      peerError: () => undefined,
      // Only the lag: the seam also carries apply, ack and transfer timings (tested with the metrics).
      measured: (measurement) => {
        if (measurement.kind === 'lag') measured.push(measurement)
      },
    },
  )!
  await replication.start()
})
afterEach(() => replication.stop())

/** Resolves once the node applied one more change from a peer. */
const nextApplied = () => new Promise<void>((resolve) => applied.push(resolve))

const upsert = (sid: string, sentAt: number | null): Message => ({
  type: MessageType.UPSERT,
  ackId: 0,
  ackLevel: AckLevel.NONE,
  sentAt,
  sid,
  base: { counter: 0, origin: '' },
  version: { counter: 1, origin: 'was2' },
  expiresAt: Date.now() + 60_000,
  cookieExpires: null,
  set: [['n', pack(1)]],
  remove: [],
})

async function peerSpeaking(protocol: number): Promise<RawPeer> {
  const peer = await RawPeer.connect(HOST, PORT)
  expect(await peer.handshake({ protocol, cluster: 'shop', nodeId: 'was2', incarnation: 'raw' })).toMatchObject({ type: MessageType.READY })
  return peer
}

test('one lag sample per batch: from the sender clock to arrival, a clock ahead of ours counted as 0, one far behind not counted', async () => {
  const peer = await peerSpeaking(PROTOCOL_VERSION)
  const sentAt = Date.now() - 1500
  let done = nextApplied()
  peer.send(upsert('s1', sentAt))
  await done
  // Stamped in the same millisecond: the same batch, no second sample.
  done = nextApplied()
  peer.send(upsert('s2', sentAt))
  await done
  done = nextApplied()
  peer.send(upsert('s3', Date.now() + 60_000))
  await done
  // A clock a day behind is not a lag: no sample that would spoil the histogram's sum.
  done = nextApplied()
  peer.send(upsert('s4', Date.now() - 86_400_000))
  await done
  expect(measured).toHaveLength(2)
  expect(measured[0]).toMatchObject({ kind: 'lag', peer: 'was2' })
  expect((measured[0] as { seconds: number }).seconds).toBeGreaterThanOrEqual(1.5)
  expect((measured[0] as { seconds: number }).seconds).toBeLessThan(30)
  expect(measured[1]).toEqual({ kind: 'lag', peer: 'was2', seconds: 0 })
  peer.destroy()
})

test('changes from a protocol 2 peer carry no clock: no lag sample', async () => {
  const peer = await peerSpeaking(PROTOCOL_VERSION - 1)
  const done = nextApplied()
  peer.sendBytes(encodeMessage(upsert('s1', null), PROTOCOL_VERSION - 1))
  await done
  expect(measured).toEqual([])
  peer.destroy()
})

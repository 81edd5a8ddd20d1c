/**
 * `sync:progress` from a real state transfer: a node holding many sessions, another joining late,
 * each in its own process.
 */
import { killAll, NodeProcess, type NodeEvent } from '../../helpers/node-process.js'

const FULL = { nodeId: 'was1', host: '127.0.18.21', port: 4183 }
const LATE = { nodeId: 'was2', host: '127.0.18.22', port: 4183 }
const SESSIONS = 20_000

afterAll(killAll)

interface Progress extends NodeEvent {
  peer: string
  sessions: number
  bytes: number
  expectedSessions: number
  expectedBytes: number
}

test('a node joining late reports its transfer: monotonic, at a bounded rate, ending with everything the digest promised', async () => {
  const full = await NodeProcess.start({ ...FULL, peers: [LATE], preload: { prefix: 'held', count: SESSIONS, bytes: 200 } })
  expect(await full.call('length')).toBe(SESSIONS)
  const late = await NodeProcess.start({ ...LATE, peers: [FULL] })
  const sync = await late.waitForSync(FULL.nodeId, 0, 60_000)
  expect(sync).toMatchObject({ sessions: SESSIONS })

  const progress = late.events.filter((event): event is Progress => event.event === 'sync:progress' && event.peer === FULL.nodeId)
  expect(progress.length).toBeGreaterThanOrEqual(2)
  for (const [previous, next] of progress.slice(1).map((event, i) => [progress[i]!, event] as const)) {
    expect(next.sessions).toBeGreaterThanOrEqual(previous.sessions)
    expect(next.bytes).toBeGreaterThanOrEqual(previous.bytes)
    expect(next.expectedSessions).toBeGreaterThanOrEqual(previous.expectedSessions)
    expect(next.expectedBytes).toBeGreaterThanOrEqual(previous.expectedBytes)
  }
  for (const event of progress) {
    expect(event.sessions).toBeLessThanOrEqual(event.expectedSessions)
    expect(event.bytes).toBeLessThanOrEqual(event.expectedBytes)
  }
  const last = progress.at(-1)!
  expect(last).toMatchObject({ sessions: SESSIONS, expectedSessions: SESSIONS })
  expect(last.bytes).toBe(last.expectedBytes)
  expect(last.bytes).toBeGreaterThan(SESSIONS * 200)
  // Reported before `sync`, and at most every 100 ms while it ran (plus the final report).
  expect(late.events.indexOf(last)).toBeLessThan(late.events.indexOf(sync))
  expect(progress.length).toBeLessThanOrEqual(Math.ceil((sync.durationMs as number) / 100) + 2)
}, 90_000)

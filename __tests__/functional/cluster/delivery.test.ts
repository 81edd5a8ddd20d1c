import { killAll, NodeProcess } from '../../helpers/node-process.js'
import { FaultProxy } from '../../helpers/fault-proxy.js'
import { session } from '../../helpers/sessions.js'

const A = { nodeId: 'was1', host: '127.0.0.11', port: 4057 }
const B = { nodeId: 'was2', host: '127.0.0.12', port: 4057 }

afterEach(killAll)

async function pair(optionsA = {}, optionsB = {}): Promise<[NodeProcess, NodeProcess]> {
  const nodes = await Promise.all([
    NodeProcess.start({ ...A, peers: [B], options: optionsA }),
    NodeProcess.start({ ...B, peers: [A], options: optionsB }),
  ])
  await Promise.all([nodes[0].waitForSync('was2'), nodes[1].waitForSync('was1')])
  return nodes
}

/** was1 reaches was2 through a proxy that holds every chunk for 150 ms: a slow link. */
async function slowPair(options: Record<string, unknown>): Promise<[NodeProcess, NodeProcess, FaultProxy]> {
  const proxy = await FaultProxy.start({ host: '127.0.0.12', port: 5057 }, B)
  proxy.delayMs = 150
  const nodes = await Promise.all([
    NodeProcess.start({ ...A, peers: [{ ...B, port: 5057 }], options: { ...options, deadTimeout: 3000, suspectTimeout: 1000 } }),
    NodeProcess.start({ ...B, peers: [A], options: { deadTimeout: 3000, suspectTimeout: 1000 } }),
  ])
  await Promise.all([nodes[0].waitForSync('was2'), nodes[1].waitForSync('was1')])
  return [...nodes, proxy]
}

test.each(['ack', 'sync'])(
  "sendMode '%s': set resolves only once the peer has the change, even over a slow link",
  async (sendMode) => {
    const [was1, was2, proxy] = await slowPair({ sendMode })
    try {
      for (let i = 0; i < 5; i++) {
        await was1.call('set', `mode-${i}`, session({ i }))
        // No waiting: the write was confirmed, so the peer must already have it.
        expect(await was2.call('get', `mode-${i}`)).toMatchObject({ i })
      }
    } finally {
      await proxy.close()
    }
  },
  60_000,
)

test("sendMode 'async' (the default) resolves before a slow peer has the change", async () => {
  const [was1, was2, proxy] = await slowPair({})
  try {
    await was1.call('set', 'async-1', session({ i: 1 }))
    expect(await was2.call('get', 'async-1')).toBeNull()
    await was2.waitForReplicated('async-1', 'upsert')
  } finally {
    await proxy.close()
  }
}, 60_000)

test("sustained writes in 'sync' mode: after the writer is killed, every acknowledged write is on the peer", async () => {
  const [was1, was2, proxy] = await slowPair({ sendMode: 'sync' })
  try {
    // Enough writers in flight that killing was1 always catches some writes on the slow link.
    for (let writer = 0; writer < 20; writer++) await was1.call('writeLoop', `durable${writer}`)
    await was1.waitFor((event) => event.event === 'acked' && event.sid === 'durable0-20', 30_000)
    await was1.kill('SIGKILL')
    const acked = was1.events.filter((event) => event.event === 'acked').map((event) => event.sid as string)
    expect(acked.length).toBeGreaterThan(200)
    const onPeer = new Set(await was2.call<string[]>('ids'))
    expect(acked.filter((sid) => !onPeer.has(sid))).toEqual([])
  } finally {
    await proxy.close()
  }
}, 60_000)

test('notifyOnReplication: false emits no session:replicated events on the receiver', async () => {
  const [was1, was2] = await pair({ sendMode: 'sync' }, { notifyOnReplication: false })
  await was1.call('set', 'quiet', session({ n: 1 }))
  expect(await was2.call('get', 'quiet')).toMatchObject({ n: 1 })
  expect(was2.events.filter((event) => event.event === 'session:replicated')).toEqual([])
}, 60_000)

test('a graceful close sends every queued change before the sockets close', async () => {
  const [was1, was2] = await pair()
  // Queue a burst without waiting for replication, then close at once.
  await Promise.all(Array.from({ length: 2000 }, (_, i) => was1.call('set', `burst-${i}`, session({ i, pad: 'z'.repeat(200) }))))
  await was1.stop()
  await was2.waitForPeer('was1', 'dead')
  expect(await was2.call('length')).toBe(2000)
}, 60_000)

test('expireSessionsOnShutdown: closing a node destroys its sessions on every node', async () => {
  const [was1, was2] = await pair({ expireSessionsOnShutdown: true, sendMode: 'sync' })
  for (let i = 0; i < 10; i++) await was1.call('set', `expire-${i}`, session({ i }))
  expect(await was2.call('length')).toBe(10)
  await was1.stop()
  await was2.waitForPeer('was1', 'dead')
  expect(await was2.call('length')).toBe(0)
}, 60_000)

test('expireSessionsOnShutdown off (the default): the sessions stay on the peer', async () => {
  const [was1, was2] = await pair({ sendMode: 'sync' })
  for (let i = 0; i < 10; i++) await was1.call('set', `stay-${i}`, session({ i }))
  await was1.stop()
  await was2.waitForPeer('was1', 'dead')
  expect(await was2.call('length')).toBe(10)
}, 60_000)

test('while a restarted node is still receiving its state, a get that misses locally asks the peer', async () => {
  const was1 = await NodeProcess.start({ ...A, peers: [B], preload: { prefix: 'bulk', count: 20_000, bytes: 1000 } })
  const was2 = await NodeProcess.start({ ...B, peers: [A], probeOnUp: 'bulk-19999' })
  const probe = await was2.waitFor((event) => event.event === 'probe')
  expect(probe).toMatchObject({ syncing: true, found: true })
  const synced = await was2.waitForSync('was1')
  expect(await was2.call('length')).toBe(20_000)
  expect(synced.sessions).toBeGreaterThanOrEqual(19_999)
  expect(await was1.call<{ syncing: boolean }>('stats')).toMatchObject({ syncing: false })
}, 60_000)

test('a get made right at start, before any peer is connected, waits for the first connection and finds the session', async () => {
  await NodeProcess.start({ ...A, peers: [B], preload: { prefix: 'early', count: 10 } })
  const was2 = await NodeProcess.start({ ...B, peers: [A], probeAtStart: 'early-3' })
  expect(await was2.waitFor((event) => event.event === 'probe-at-start')).toMatchObject({ connected: false, found: true })
}, 60_000)

test('a hung peer (SIGSTOP) is suspect first, verified, then dead; it comes back alive after SIGCONT', async () => {
  const [was1, was2] = await pair()
  const mark = was1.mark
  process.kill(was2.pid, 'SIGSTOP')
  try {
    const suspect = await was1.waitForPeer('was2', 'suspect', mark)
    const dead = await was1.waitForPeer('was2', 'dead', mark)
    // A stopped process still accepts TCP connections (the kernel does), so verification keeps it
    // suspect until deadTimeout: no flapping to dead on a missed beat or two.
    const suspectFor =
      new Date((dead.member as { since: string }).since).getTime() - new Date((suspect.member as { since: string }).since).getTime()
    expect(suspectFor).toBeGreaterThanOrEqual(500)
  } finally {
    process.kill(was2.pid, 'SIGCONT')
  }
  await was1.waitForPeer('was2', 'alive', mark)
  const states = was1.events
    .slice(mark)
    .filter((event) => event.event === 'peer:state')
    .map((event) => (event.member as { state: string }).state)
  expect(states.slice(0, 2)).toEqual(['suspect', 'dead'])
}, 60_000)

import { FaultProxy } from '../../helpers/fault-proxy.js'
import { killAll, NodeProcess } from '../../helpers/node-process.js'
import { session } from '../../helpers/sessions.js'

const A = { nodeId: 'was1', host: '127.0.0.11', port: 4056 }
const B = { nodeId: 'was2', host: '127.0.0.12', port: 4056 }
const C = { nodeId: 'was3', host: '127.0.0.13', port: 4056 }

afterEach(killAll)

test('three nodes: a write on one reaches the two others', async () => {
  const [was1, was2, was3] = await Promise.all([
    NodeProcess.start({ ...A, peers: [B, C] }),
    NodeProcess.start({ ...B, peers: [A, C] }),
    NodeProcess.start({ ...C, peers: [A, B] }),
  ])
  await Promise.all([
    was2.waitForPeer('was1', 'alive'),
    was3.waitForPeer('was1', 'alive'),
    was1.waitForPeer('was2', 'alive'),
    was1.waitForPeer('was3', 'alive'),
  ])
  await was1.call('set', 'three', session({ user: 'ada' }))
  await Promise.all([was2.waitForReplicated('three', 'upsert'), was3.waitForReplicated('three', 'upsert')])
  expect(await was2.call('get', 'three')).toMatchObject({ user: 'ada' })
  expect(await was3.call('get', 'three')).toMatchObject({ user: 'ada' })
  await was3.call('destroy', 'three')
  await Promise.all([was1.waitForReplicated('three', 'destroy'), was2.waitForReplicated('three', 'destroy')])
  expect(await was1.call('get', 'three')).toBeNull()
}, 60_000)

test('SIGKILL a node and restart it: it recovers every session from its peer', async () => {
  const was1 = await NodeProcess.start({ ...A, peers: [B] })
  let was2 = await NodeProcess.start({ ...B, peers: [A] })
  await was2.waitForSync('was1')
  for (let i = 0; i < 200; i++) await was1.call('set', `before-${i}`, session({ i, blob: 'y'.repeat(500) }))
  await was2.waitForReplicated('before-199', 'upsert')
  await was2.kill('SIGKILL')
  await was1.waitForPeer('was2', 'dead')
  // Changes while it is down: more sessions, and a destroy of one it had.
  for (let i = 0; i < 50; i++) await was1.call('set', `during-${i}`, session({ i }))
  await was1.call('destroy', 'before-7')
  was2 = await NodeProcess.start({ ...B, peers: [A] })
  const synced = await was2.waitForSync('was1')
  expect(synced.sessions).toBe(249)
  const [onWas1, onWas2] = await Promise.all([was1.call<string[]>('ids'), was2.call<string[]>('ids')])
  expect(onWas2.sort()).toEqual(onWas1.sort())
  expect(onWas2).toHaveLength(249)
  expect(await was2.call('get', 'before-7')).toBeNull()
  expect(await was2.call('get', 'during-49')).toMatchObject({ i: 49 })
  await was1.waitForPeer('was2', 'alive', 0)
}, 60_000)

test('writes made on the live node while the restarted one receives its state are neither lost nor left stale', async () => {
  const was1 = await NodeProcess.start({ ...A, peers: [B], preload: { prefix: 'old', count: 5000, bytes: 500 } })
  const first = await NodeProcess.start({ ...B, peers: [A] })
  await first.waitForSync('was1')
  await first.kill('SIGKILL')
  await was1.waitForPeer('was2', 'dead')
  await was1.call('writeLoop', 'live')
  const was2 = await NodeProcess.start({ ...B, peers: [A] })
  // Modify old sessions while the transfer runs, too.
  for (let i = 0; i < 50; i++) await was1.call('mutate', `old-${i}`, 'name', `changed-${i}`)
  await was2.waitForSync('was1')
  await was1.call('stopWriting')
  const lastAcked = [...was1.events].reverse().find((event) => event.event === 'acked')!.sid as string
  await was2.waitFor((event) => event.event === 'session:replicated' && event.sid === lastAcked)
  const [ids1, ids2] = await Promise.all([was1.call<string[]>('ids'), was2.call<string[]>('ids')])
  expect(ids2.sort()).toEqual(ids1.sort())
  expect(ids1.filter((sid) => sid.startsWith('live-')).length).toBeGreaterThan(0)
  for (const i of [0, 25, 49]) expect(await was2.call('get', `old-${i}`)).toMatchObject({ user: { name: `changed-${i}` } })
}, 60_000)

test('two nodes started at the same moment, each with its own sessions, both end with all of them', async () => {
  const [was1, was2] = await Promise.all([
    NodeProcess.start({ ...A, peers: [B], preload: { prefix: 'one', count: 300 } }),
    NodeProcess.start({ ...B, peers: [A], preload: { prefix: 'two', count: 300 } }),
  ])
  await Promise.all([was1.waitForSync('was2'), was2.waitForSync('was1')])
  const [ids1, ids2] = await Promise.all([was1.call<string[]>('ids'), was2.call<string[]>('ids')])
  expect(ids1).toHaveLength(600)
  expect(ids2.sort()).toEqual(ids1.sort())
}, 60_000)

test('a partition: writes on both sides during it, anti-entropy converges after it, nothing lost or resurrected', async () => {
  // was1 reaches was2 through one proxy and was2 reaches was1 through another: cutting both is a partition.
  const toWas2 = await FaultProxy.start({ host: '127.0.0.12', port: 5056 }, B)
  const toWas1 = await FaultProxy.start({ host: '127.0.0.11', port: 5056 }, A)
  try {
    const [was1, was2] = await Promise.all([
      NodeProcess.start({ ...A, peers: [{ ...B, port: 5056 }] }),
      NodeProcess.start({ ...B, peers: [{ ...A, port: 5056 }] }),
    ])
    await Promise.all([was1.waitForSync('was2'), was2.waitForSync('was1')])
    for (const sid of ['keep', 'change-on-1', 'destroy-on-1', 'destroy-on-2']) await was1.call('set', sid, session({ v: 0 }))
    await was2.waitForReplicated('destroy-on-2', 'upsert')

    toWas2.cut()
    toWas1.cut()
    await Promise.all([was1.waitForPeer('was2', 'dead'), was2.waitForPeer('was1', 'dead')])
    await was1.call('set', 'change-on-1', session({ v: 1 }))
    await was1.call('destroy', 'destroy-on-1')
    await was1.call('set', 'new-on-1', session({ v: 1 }))
    await was2.call('destroy', 'destroy-on-2')
    await was2.call('set', 'new-on-2', session({ v: 2 }))
    // The stale copy of a session destroyed on the other side, touched here during the partition.
    await was2.call('set', 'destroy-on-1', session({ v: 99 }))

    const marks = [was1.mark, was2.mark]
    toWas2.restore()
    toWas1.restore()
    await Promise.all([was1.waitForSync('was2', marks[0]), was2.waitForSync('was1', marks[1])])

    const expected = { keep: 0, 'change-on-1': 1, 'new-on-1': 1, 'new-on-2': 2 }
    for (const node of [was1, was2]) {
      const all = await node.call<Record<string, { v: number }>>('all')
      expect(Object.fromEntries(Object.entries(all).map(([sid, data]) => [sid, data.v]))).toEqual(expected)
    }
  } finally {
    await Promise.all([toWas2.close(), toWas1.close()])
  }
}, 60_000)

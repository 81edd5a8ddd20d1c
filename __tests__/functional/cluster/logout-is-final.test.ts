import { killAll, partitionablePair } from '../../helpers/node-process.js'
import { session } from '../../helpers/sessions.js'
import { settles } from '../../helpers/settle.js'

/**
 * Logout is final across takeovers (rebinds) and clears: two node processes that can be partitioned
 * by fault proxies, changes made on both sides while apart, then the nodes meet and anti-entropy
 * must end the same everywhere, with no logged-out session alive anywhere.
 */
const A = { nodeId: 'was1', host: '127.0.4.1', port: 4301 }
const B = { nodeId: 'was2', host: '127.0.4.2', port: 4301 }
const C = { nodeId: 'was3', host: '127.0.4.3', port: 4301 }

let close: (() => Promise<void>) | undefined
afterEach(async () => {
  await close?.()
  close = undefined
  await killAll()
})

async function pair(a = A, b = B) {
  const nodes = await partitionablePair(a, b)
  close = nodes.close
  return nodes
}

test('a logout by the id a session had before another node took it over ends it under its new id', async () => {
  const { was1, was2 } = await pair()
  await was1.call('set', 'S', session({ user: 'ada' }))
  await was2.waitForReplicated('S', 'upsert')
  const moved = await was2.call<string>('rebind', 'S')
  // was1 learns of the move: the session is there under its new id, and S is gone.
  await settles(
    async () => (await was1.call('get', moved)) !== null && (await was1.call('get', 'S')) === null,
    10_000,
    () => 'was1 never saw the move',
  )
  // A request on was1 that read S before the move now logs out by that id.
  await was1.call('destroy', 'S')
  await settles(
    async () => (await was1.call('get', moved)) === null && (await was2.call('get', moved)) === null,
    10_000,
    () => 'the session lives on under its new id after a logout by its old one',
  )
  for (const node of [was1, was2]) expect(await node.call('ids')).toEqual([])
})

test('a logout on one node while the other takes the session over (a stolen cookie) ends it under both ids', async () => {
  const { was1, was2, partition, heal } = await pair()
  await was1.call('set', 'S', session({ user: 'ada' }))
  await was2.waitForReplicated('S', 'upsert')
  await partition()
  await was1.call('destroy', 'S')
  const stolen = await was2.call<string>('rebind', 'S')
  expect(stolen).toMatch(/\.was2$/)
  expect(await was2.call('get', stolen)).toMatchObject({ user: 'ada' })
  await heal()
  for (const node of [was1, was2]) {
    expect(await node.call('get', stolen)).toBeNull()
    expect(await node.call('get', 'S')).toBeNull()
    expect(await node.call('ids')).toEqual([])
  }
}, 60_000)

test('a write on one node while the other takes the session over: the higher version (here the write) wins on both', async () => {
  const { was1, was2, partition, heal } = await pair()
  await was1.call('set', 'S', session({ user: 'ada', cart: 0 }))
  await was2.waitForReplicated('S', 'upsert')
  await partition()
  const moved = await was1.call<string>('rebind', 'S')
  await was2.call('set', 'S', session({ user: 'ada', cart: 5 }))
  await heal()
  // Same counter on both sides; was2 > was1, so was2's write wins and the move is undone.
  for (const node of [was1, was2]) {
    expect(await node.call('get', 'S')).toMatchObject({ cart: 5 })
    expect(await node.call('get', moved)).toBeNull()
    expect(await node.call('ids')).toEqual(['S'])
  }
}, 60_000)

test('a takeover on the greater node id beats a concurrent write: the same on both', async () => {
  const { was1, was2, partition, heal } = await pair(A, { ...C, port: 4302 })
  await was1.call('set', 'S', session({ user: 'ada', cart: 0 }))
  await was2.waitForReplicated('S', 'upsert')
  await partition()
  await was1.call('set', 'S', session({ user: 'ada', cart: 5 }))
  const moved = await was2.call<string>('rebind', 'S')
  await heal()
  for (const node of [was1, was2]) {
    expect(await node.call('get', 'S')).toBeNull()
    expect(await node.call('get', moved)).toMatchObject({ cart: 0 })
    expect(await node.call('ids')).toEqual([moved])
  }
}, 60_000)

test('both nodes take one session over at once: one live id remains, and destroying it ends the session', async () => {
  const { was1, was2, partition, heal } = await pair()
  await was1.call('set', 'S', session({ user: 'ada' }))
  await was2.waitForReplicated('S', 'upsert')
  await partition()
  const onWas1 = await was1.call<string>('rebind', 'S')
  const onWas2 = await was2.call<string>('rebind', 'S')
  await heal()
  for (const node of [was1, was2]) expect(await node.call('ids')).toEqual([onWas2])
  expect(await was1.call('get', onWas1)).toBeNull()
  await was1.call('destroy', onWas2)
  await was2.waitForReplicated(onWas2, 'destroy')
  for (const node of [was1, was2]) expect(await node.call('ids')).toEqual([])
}, 60_000)

test('a clear during a partition is final: the cut-off node clears when it returns, and nothing comes back', async () => {
  const { was1, was2, partition, heal } = await pair()
  for (let i = 0; i < 20; i++) await was1.call('set', `s${i}`, session({ i }))
  await was2.waitForReplicated('s19', 'upsert')
  await partition()
  await was1.call('clear')
  // On the far side the sessions are still in use, and one more is made: all from before the clear.
  await was2.call('set', 's3', session({ i: 3, touched: true }))
  await was2.call('set', 'late', session({ i: 99 }))
  await heal()
  for (const node of [was1, was2]) expect(await node.call('ids')).toEqual([])
  // Life goes on in the new epoch, in both directions.
  await was2.call('set', 'after', session({ n: 1 }))
  await was1.waitForReplicated('after', 'upsert')
  expect(await was1.call('get', 'after')).toMatchObject({ n: 1 })
}, 60_000)

test('takeovers that alternate between nodes leave at most maxRebinds tombstones for one session', async () => {
  const { was1, was2 } = await pair()
  await was1.call('set', 'S', session({ user: 'ada' }))
  await was2.waitForReplicated('S', 'upsert')
  // A cookie holder alternating the route cookie: every request lands on the other node.
  let sid = 'S'
  let takeovers = 0
  for (let i = 0; i < 50; i++) {
    const [node, other] = i % 2 === 0 ? [was2, was1] : [was1, was2]
    const moved = await node.call<string | null>('rebind', sid)
    if (moved === null) continue
    takeovers += 1
    await other.waitForReplicated(moved, 'upsert')
    sid = moved
  }
  expect(takeovers).toBe(10)
  for (const node of [was1, was2]) {
    expect(await node.call('stats')).toMatchObject({ sessions: 1, tombstones: 10 })
    expect(await node.call('get', sid)).toMatchObject({ user: 'ada' })
  }
}, 60_000)

test('a destroy inside a static request (withoutReplication) still reaches the peer', async () => {
  const { was1, was2 } = await pair()
  await was1.call('set', 'S', session({ user: 'ada' }))
  await was2.waitForReplicated('S', 'upsert')
  await was1.call('destroyUnreplicated', 'S')
  await was2.waitForReplicated('S', 'destroy')
  expect(await was2.call('get', 'S')).toBeNull()
}, 60_000)

/**
 * Limits that protect memory (issue 17, part 4): two node processes over real TCP with
 * `maxSessions: 1000`, 10 logged-in users (sessions with a principal), then a flood of 50,000
 * anonymous sessions, 25,000 created on each node at once (in the node, through the store API, one
 * per event-loop turn as requests would), each with 2 KB of data: 100 MB if they were all kept.
 * About 15 s for the flood, then until the first evictions' tombstones expire, 30 s after it started.
 */
import { killAll, NodeProcess } from '../../helpers/node-process.js'
import { settles } from '../../helpers/settle.js'
import { HOUR } from '../../helpers/sessions.js'

const A = { nodeId: 'lim1', host: '127.0.20.21', port: 4221 }
const B = { nodeId: 'lim2', host: '127.0.20.22', port: 4221 }
const MAX_SESSIONS = 1000
const USERS = 10
const PER_NODE = 25_000
const PADDING = 2048
/** How long the tombstone of an evicted session lasts (EVICTED_TOMBSTONE_MS in lib/peer-store/session-writer.ts, and docs/sessions.md). */
const EVICTED_TOMBSTONE_MS = 30_000

/**
 * Live sessions a node may hold beyond `maxSessions`: a node evicts only when it creates a session,
 * so the other node's new sessions, replicated here before their own eviction's destroy arrives (or
 * whose victim this node had evicted already), count for a moment. The next local creation makes
 * room for them too.
 */
const LIVE_SLACK = 100
/**
 * Heap growth allowed, after a full collection, from before the flood to after it: 1000 live
 * sessions of 2 KB, up to 50,000 tombstones (a few hundred bytes each with their entry, expiry
 * wheel slot and index) and the replication's buffers. Keeping the flood would take over 100 MB.
 */
const HEAP_GROWTH_AFTER = 40 * 1024 * 1024
/** Heap growth allowed at the highest sample during the flood (garbage not yet collected counts). */
const HEAP_GROWTH_DURING = 80 * 1024 * 1024

interface Stats {
  sessions: number
  tombstones: number
  evicted: number
  refused: number
}

afterAll(killAll)

test('50k anonymous sessions against maxSessions 1000: memory bounded, the 10 users still logged in, both nodes agree', async () => {
  const nodes = await Promise.all(
    [A, B].map((self) =>
      NodeProcess.start({
        ...self,
        peers: [self === A ? B : A],
        principalKey: 'userId',
        options: { maxSessions: MAX_SESSIONS },
      }),
    ),
  )
  const [lim1, lim2] = nodes as [NodeProcess, NodeProcess]
  await Promise.all([lim1.waitForSync(B.nodeId), lim2.waitForSync(A.nodeId)])

  const users = await Promise.all(
    Array.from({ length: USERS }, (_, i) => nodes[i % 2]!.call<string>('create', { userId: `user-${i}`, cart: [i] }, HOUR)),
  )
  await settles(
    async () => (await Promise.all(nodes.map((node) => node.call<number>('length')))).every((count) => count === USERS),
    10_000,
    () => 'the users did not reach both nodes',
  )
  const before = await Promise.all(nodes.map((node) => node.call<NodeJS.MemoryUsage>('memory')))

  const started = Date.now()
  const floods = await Promise.all(
    nodes.map((node) => node.call<{ ms: number; maxHeapUsed: number; maxLive: number }>('flood', PER_NODE, PADDING)),
  )

  // Both nodes end up with the same sessions.
  let ids: string[][] = []
  await settles(
    async () => {
      ids = await Promise.all(nodes.map((node) => node.call<string[]>('ids').then((each) => each.sort())))
      return ids[0]!.length > 0 && JSON.stringify(ids[0]) === JSON.stringify(ids[1])
    },
    20_000,
    () =>
      `lim1 holds ${ids[0]?.length} sessions, lim2 ${ids[1]?.length}, ${ids[0]?.filter((sid) => !ids[1]!.includes(sid)).length} only on lim1`,
  )
  const stats = await Promise.all(nodes.map((node) => node.call<Stats>('stats')))
  const after = await Promise.all(nodes.map((node) => node.call<NodeJS.MemoryUsage>('memory')))

  // The 10 users are still logged in, on both nodes.
  for (const node of nodes) {
    for (const [i, sid] of users.entries()) expect(await node.call(`get`, sid)).toMatchObject({ userId: `user-${i}`, cart: [i] })
    expect(await node.call('sessionsOf', 'user-3')).toEqual([expect.objectContaining({ id: users[3] })])
  }
  expect(ids[0]).toEqual(expect.arrayContaining(users))

  // Memory bounded: live sessions, at every sample during the flood and at the end; the heap.
  expect(ids[0]!.length).toBeLessThanOrEqual(MAX_SESSIONS + LIVE_SLACK)
  for (const [i, flood] of floods.entries()) {
    expect(flood.maxLive).toBeLessThanOrEqual(MAX_SESSIONS + LIVE_SLACK)
    expect(stats[i]!.sessions).toBeLessThanOrEqual(MAX_SESSIONS + LIVE_SLACK)
    expect(after[i]!.heapUsed - before[i]!.heapUsed).toBeLessThan(HEAP_GROWTH_AFTER)
    expect(flood.maxHeapUsed - before[i]!.heapUsed).toBeLessThan(HEAP_GROWTH_DURING)
  }

  // Every session gone was evicted (none refused), and counted once: each node evicts its own
  // anonymous sessions first, so two nodes making room at once do not pick the same one.
  const gone = USERS + 2 * PER_NODE - ids[0]!.length
  const evicted = stats.reduce((sum, each) => sum + each.evicted, 0)
  expect(evicted).toBeGreaterThanOrEqual(gone)
  expect(evicted - gone).toBeLessThanOrEqual(gone / 1000)
  expect(stats.map((each) => each.refused)).toEqual([0, 0])

  // Tombstones: one per evicted session on each node, none for anything else.
  for (const each of stats) expect(each.tombstones).toBeLessThanOrEqual(gone)

  // And they last 30 s (not `tombstoneTtl`, 10 minutes, nor the session's hour), on the node that
  // evicted and on the one that learnt of it alike: so they are bounded by the creation rate times
  // 30 s. The first evictions were made right after the flood started; wait until the tombstones
  // of at least the first 1000 are gone from both nodes.
  let tombstones: number[] = []
  await settles(
    async () => {
      tombstones = await Promise.all(nodes.map((node) => node.call<Stats>('stats').then((each) => each.tombstones)))
      return tombstones.every((count) => count <= gone - 1000)
    },
    started + EVICTED_TOMBSTONE_MS + 15_000 - Date.now(),
    () => `tombstones per node ${tombstones.join(', ')}, ${Date.now() - started} ms after the flood started`,
    250,
  )
  expect(Date.now() - started).toBeGreaterThanOrEqual(EVICTED_TOMBSTONE_MS)
}, 120_000)

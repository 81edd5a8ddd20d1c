/**
 * Session events once per cluster (issue 17, part 3): three node processes over real TCP, each
 * forwarding its `session:*` events over IPC. 100 sessions with short lifetimes, created across the
 * nodes under routed ids (`store.genid()`), and last written on another node: exactly one
 * `session:expired` each in the whole cluster, with the last data, on the node the id is routed to;
 * and when that node is killed before they expire, on one survivor instead.
 */
import { killAll, NodeProcess, type NodeEvent } from '../../helpers/node-process.js'
import { settles } from '../../helpers/settle.js'
import { HOUR, session } from '../../helpers/sessions.js'

const HOSTS = ['127.0.20.1', '127.0.20.2', '127.0.20.3']
const COUNT = 100

afterEach(killAll)

/** Three nodes that all see each other, on `port`, forwarding their session events. */
async function startCluster(port: number): Promise<NodeProcess[]> {
  const specs = HOSTS.map((host, i) => ({ nodeId: `ev${i + 1}`, host, port }))
  const nodes = await Promise.all(
    specs.map((spec) =>
      NodeProcess.start({
        ...spec,
        peers: specs.filter((other) => other !== spec),
        sessionEvents: true,
        // Expiries are found within 100 ms, not a second.
        options: { reapInterval: 100 },
      }),
    ),
  )
  await Promise.all(nodes.flatMap((node) => nodes.filter((other) => other !== node).map((other) => node.waitForSync(other.nodeId))))
  return nodes
}

/** The node a routed id belongs to (`<random>.<nodeId>`). */
function ownerOf(sid: string): string {
  return sid.slice(sid.lastIndexOf('.') + 1)
}

/**
 * COUNT sessions created round-robin on the nodes with `lifetimeMs` to live, each then rewritten
 * (`last: 'updated'`) on the next node once every node has it, and waited for until every node
 * holds the rewritten data: what each expiry event must carry. Returns the ids, session `i` at `i`.
 */
async function createAndRewrite(nodes: NodeProcess[], lifetimeMs: number): Promise<string[]> {
  const sids = await Promise.all(
    Array.from({ length: COUNT }, (_, i) => nodes[i % nodes.length]!.call<string>('create', { n: i, last: 'created' }, lifetimeMs)),
  )
  await everyNodeHolds(nodes, sids, 'created')
  await Promise.all(sids.map((sid, i) => nodes[(i + 1) % nodes.length]!.call('set', sid, session({ n: i, last: 'updated' }, lifetimeMs))))
  await everyNodeHolds(nodes, sids, 'updated')
  return sids
}

/** Waits until every node holds every one of `sids` with `last` as given. */
async function everyNodeHolds(nodes: NodeProcess[], sids: string[], last: string): Promise<void> {
  const missing = new Map<string, number>()
  await settles(
    async () => {
      const views = await Promise.all(nodes.map((node) => node.call<Record<string, { last?: string }>>('all')))
      views.forEach((view, i) => missing.set(nodes[i]!.nodeId, sids.filter((sid) => view[sid]?.last !== last).length))
      return [...missing.values()].every((count) => count === 0)
    },
    10_000,
    () => `sessions not yet '${last}' on each node: ${JSON.stringify(Object.fromEntries(missing))}`,
  )
}

/** Every event named `name` the nodes reported, in no particular order. */
function eventsNamed(nodes: NodeProcess[], name: string): NodeEvent[] {
  return nodes.flatMap((node) => node.events.filter((event) => event.event === name))
}

/**
 * Waits until every running node in `nodes` has let go of every session (each has then decided
 * about each expiry: reported it or not) and `expected` expiry events have arrived. Replies come
 * after the events a node sent before them, so nothing a node decided is still on its way.
 */
async function allExpired(nodes: NodeProcess[], expected: number, timeoutMs: number): Promise<void> {
  let held: number[] = []
  await settles(
    async () => {
      held = await Promise.all(nodes.map((node) => node.call<{ sessions: number }>('stats').then((stats) => stats.sessions)))
      return held.every((count) => count === 0) && eventsNamed(nodes, 'session:expired').length >= expected
    },
    timeoutMs,
    () => `sessions still held per node: ${held.join(', ')}; expiry events: ${eventsNamed(nodes, 'session:expired').length}`,
  )
}

/** Asserts one expiry event per id of `sids`, with session `i`'s last data, on the node `reporter` names. */
function expectOneExpiryEach(events: NodeEvent[], sids: string[], reporter: (sid: string) => string | ((node: string) => boolean)) {
  expect(events).toHaveLength(sids.length)
  const bySid = new Map<string, NodeEvent[]>()
  for (const event of events) bySid.set(event.sid as string, [...(bySid.get(event.sid as string) ?? []), event])
  expect([...bySid.keys()].sort()).toEqual([...sids].sort())
  sids.forEach((sid, i) => {
    const [event] = bySid.get(sid)!
    expect(event!.data).toMatchObject({ n: i, last: 'updated' })
    const expected = reporter(sid)
    if (typeof expected === 'string') expect({ sid, node: event!.node }).toEqual({ sid, node: expected })
    else expect({ sid, node: event!.node, chosen: expected(event!.node as string) }).toEqual({ sid, node: event!.node, chosen: true })
  })
}

test('100 sessions expire: one session:expired each in the cluster, on its owner, with its last data; created and destroyed once', async () => {
  const nodes = await startCluster(4201)
  const sids = await createAndRewrite(nodes, 5000)

  // One more, destroyed on a node that did not create it.
  const [first, second] = nodes as [NodeProcess, NodeProcess, NodeProcess]
  const doomed = await first.call<string>('create', { n: 'doomed', last: 'created' }, HOUR)
  await everyNodeHolds(nodes, [doomed], 'created')
  await second.call('destroy', doomed)
  await settles(
    async () => (await Promise.all(nodes.map((node) => node.call('get', doomed)))).every((found) => found === null),
    10_000,
    () => `${doomed} still held somewhere`,
  )

  await allExpired(nodes, COUNT, 20_000)

  expectOneExpiryEach(eventsNamed(nodes, 'session:expired'), sids, ownerOf)

  const created = eventsNamed(nodes, 'session:created')
  expect(created.map((event) => event.sid).sort()).toEqual([...sids, doomed].sort())
  for (const event of created) expect({ sid: event.sid, node: event.node }).toEqual({ sid: event.sid, node: ownerOf(event.sid as string) })

  const destroyed = eventsNamed(nodes, 'session:destroyed')
  expect(destroyed).toHaveLength(1)
  expect(destroyed[0]).toMatchObject({ sid: doomed, node: second.nodeId, reason: 'destroyed', data: { n: 'doomed', last: 'created' } })
}, 60_000)

test('the owner is killed before its sessions expire: the survivors report its sessions, still once each', async () => {
  const nodes = await startCluster(4202)
  const lifetimeMs = 6000
  const firstExpiry = Date.now() + lifetimeMs
  const sids = await createAndRewrite(nodes, lifetimeMs)
  const [a, b, owner] = nodes as [NodeProcess, NodeProcess, NodeProcess]
  const survivors = [a, b]
  const marks = survivors.map((node) => node.mark)

  await owner.kill()
  await Promise.all(survivors.map((node, i) => node.waitForPeer(owner.nodeId, 'dead', marks[i])))
  // What this test is about: the owner was known dead before any of its sessions expired. (If this
  // fails the machine was too slow for the lifetimes above, not the store wrong.)
  expect(Date.now()).toBeLessThan(firstExpiry)
  expect(eventsNamed(nodes, 'session:expired')).toEqual([])

  await allExpired(survivors, COUNT, 20_000)

  const orphans = sids.filter((sid) => ownerOf(sid) === owner.nodeId)
  expect(orphans.length).toBeGreaterThan(30)
  const survivorIds = survivors.map((node) => node.nodeId)
  expectOneExpiryEach(eventsNamed(nodes, 'session:expired'), sids, (sid) =>
    ownerOf(sid) === owner.nodeId ? (node) => survivorIds.includes(node) : ownerOf(sid),
  )
  // The dead owner's sessions are shared between the survivors (rendezvous hashing), not all on one.
  const reporters = new Set(
    eventsNamed(survivors, 'session:expired')
      .filter((event) => ownerOf(event.sid as string) === owner.nodeId)
      .map((event) => event.node),
  )
  expect([...reporters].sort()).toEqual(survivorIds.sort())
}, 60_000)

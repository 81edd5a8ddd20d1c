/**
 * A rolling upgrade for real: a node of the previous protocol version (the release frozen in
 * fixtures/previous-protocol by scripts/freeze-previous-protocol.mjs, run as its own process) and a
 * node of this one agree on the previous version and replicate both ways, including state transfer
 * when either restarts.
 */
import type { Member } from '../../../lib/index.js'
import { PROTOCOL_VERSION } from '../../../lib/protocol/frame.js'
import { killAll, NodeProcess, type NodeEvent } from '../../helpers/node-process.js'
import { extractPreviousRelease, type PreviousRelease } from '../../helpers/previous-protocol.js'
import { session } from '../../helpers/sessions.js'

const OLD = { nodeId: 'was1', host: '127.0.18.1', port: 4181 }
const NEW = { nodeId: 'was2', host: '127.0.18.2', port: 4181 }

let previous: PreviousRelease

beforeAll(() => {
  previous = extractPreviousRelease()
})
afterAll(() => previous.remove())
afterEach(killAll)

/** As in production: a cluster secret, so every frame after the handshake is an encrypted record whose authenticated header carries the version. */
const options = { secret: 'rolling upgrade test secret, 32+ chars' }
const startOld = () => NodeProcess.start({ ...OLD, peers: [NEW], dist: previous.dist, options })
const startNew = () => NodeProcess.start({ ...NEW, peers: [OLD], options })

async function pair(): Promise<{ old: NodeProcess; next: NodeProcess }> {
  const [old, next] = await Promise.all([startOld(), startNew()])
  await Promise.all([old.waitForSync(NEW.nodeId), next.waitForSync(OLD.nodeId)])
  return { old, next }
}

test('the frozen release is the previous protocol version', () => {
  expect(previous.protocol).toBe(PROTOCOL_VERSION - 1)
})

test('an old node and a new one agree on the old version, and writes and destroys replicate both ways', async () => {
  const { old, next } = await pair()
  const [member] = await next.call<Member[]>('members')
  expect(member).toMatchObject({ nodeId: OLD.nodeId, state: 'alive', protocol: PROTOCOL_VERSION - 1 })
  // The old node knows nothing of versions: its members have no protocol at all.
  const [seenByOld] = await old.call<Member[]>('members')
  expect(seenByOld).toMatchObject({ nodeId: NEW.nodeId, state: 'alive' })
  expect(seenByOld).not.toHaveProperty('protocol')

  let mark = next.mark
  await old.call('set', 'from-old', session({ user: { name: 'ada' } }))
  await next.waitForReplicated('from-old', 'upsert', mark)
  expect(await next.call('get', 'from-old')).toMatchObject({ user: { name: 'ada' } })

  mark = old.mark
  await next.call('set', 'from-new', session({ user: { name: 'grace' } }))
  await old.waitForReplicated('from-new', 'upsert', mark)
  expect(await old.call('get', 'from-new')).toMatchObject({ user: { name: 'grace' } })

  // A change on top of a replicated session travels as a delta, in the old layout.
  mark = old.mark
  await next.call('mutate', 'from-old', 'name', 'lovelace')
  await old.waitForReplicated('from-old', 'upsert', mark)
  expect(await old.call('get', 'from-old')).toMatchObject({ user: { name: 'lovelace' } })

  mark = old.mark
  await next.call('destroy', 'from-old')
  await old.waitForReplicated('from-old', 'destroy', mark)
  expect(await old.call('get', 'from-old')).toBeNull()

  mark = next.mark
  await old.call('destroy', 'from-new')
  await next.waitForReplicated('from-new', 'destroy', mark)
  expect(await next.call('get', 'from-new')).toBeNull()

  // The new node proposed its own version first and fell back: that is no refusal on its side.
  const stats = await next.call<{ versionRefusals: number; protocolErrors: number }>('stats')
  expect(stats).toMatchObject({ versionRefusals: 0, protocolErrors: 0 })
  expect(await old.call<{ protocolErrors: number }>('stats')).toMatchObject({ protocolErrors: 0 })
}, 60_000)

test('state transfer works between the versions whichever node restarts', async () => {
  let { old, next } = await pair()
  await old.call('set', 'kept', session({ n: 0 }))
  await next.waitForReplicated('kept', 'upsert')

  // The new node restarts (as during its upgrade): it gets what the old one wrote meanwhile.
  await next.kill()
  for (let i = 0; i < 200; i++) await old.call('set', `while-new-down-${i}`, session({ n: i, padding: 'x'.repeat(500) }))
  await old.call('destroy', 'kept')
  next = await startNew()
  await next.waitForSync(OLD.nodeId)
  expect(await next.call('get', 'while-new-down-199')).toMatchObject({ n: 199 })
  expect(await next.call('length')).toBe(200)
  expect(await next.call('get', 'kept')).toBeNull()
  // Its progress, from a digest without sizes: the sessions expected, and the bytes as they came.
  const progress = next.events.filter((event) => event.event === 'sync:progress' && event.peer === OLD.nodeId)
  expect(progress.at(-1)).toMatchObject({ sessions: 200, expectedSessions: 200, bytes: expect.any(Number) as number })
  expect((progress.at(-1) as NodeEvent & { bytes: number }).bytes).toBeGreaterThan(200 * 500)

  // The old node restarts (a rollback, or a node not upgraded yet that crashed): it gets what the new one wrote.
  await old.kill()
  for (let i = 0; i < 200; i++) await next.call('set', `while-old-down-${i}`, session({ n: i }))
  await next.call('destroy', 'while-new-down-0')
  old = await startOld()
  await old.waitForSync(NEW.nodeId)
  expect(await old.call('get', 'while-old-down-199')).toMatchObject({ n: 199 })
  expect(await old.call('get', 'while-new-down-0')).toBeNull()
  expect(await old.call('length')).toBe(399)
}, 90_000)

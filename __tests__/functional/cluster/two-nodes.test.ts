import { killAll, NodeProcess } from '../../helpers/node-process.js'
import { session } from '../../helpers/sessions.js'

const A = { nodeId: 'was1', host: '127.0.0.11', port: 4055 }
const B = { nodeId: 'was2', host: '127.0.0.12', port: 4055 }

let was1: NodeProcess
let was2: NodeProcess

beforeAll(async () => {
  ;[was1, was2] = await Promise.all([NodeProcess.start({ ...A, peers: [B] }), NodeProcess.start({ ...B, peers: [A] })])
  await Promise.all([was1.waitForSync('was2'), was2.waitForSync('was1')])
}, 60_000)

afterAll(killAll)

test('a session written on one node is readable on the other', async () => {
  const mark = was2.mark
  await was1.call('set', 'create-1', session({ user: { name: 'ada' }, roles: ['admin'] }))
  await was2.waitForReplicated('create-1', 'upsert', mark)
  expect(await was2.call('get', 'create-1')).toMatchObject({ user: { name: 'ada' }, roles: ['admin'] })
})

test('a modification replicates, and only the changed field travels', async () => {
  await was1.call('set', 'modify-1', session({ user: { name: 'ada' }, big: 'x'.repeat(4000), n: 1 }))
  await was2.waitForReplicated('modify-1', 'upsert')
  const before = (await was1.call<{ bytesOut: number }>('stats')).bytesOut
  const mark = was2.mark
  await was1.call('set', 'modify-1', session({ user: { name: 'ada' }, big: 'x'.repeat(4000), n: 2 }))
  await was2.waitForReplicated('modify-1', 'upsert', mark)
  const sent = (await was1.call<{ bytesOut: number }>('stats')).bytesOut - before
  expect(await was2.call('get', 'modify-1')).toMatchObject({ n: 2 })
  expect(sent).toBeLessThan(400) // the 4 KB field did not travel again
})

test('an in-place mutation of a nested value replicates', async () => {
  await was1.call('set', 'mutate-1', session({ user: { name: 'ada', email: 'ada@example.com' } }))
  await was2.waitForReplicated('mutate-1', 'upsert')
  const mark = was2.mark
  await was1.call('mutate', 'mutate-1', 'email', 'lovelace@example.com')
  await was2.waitForReplicated('mutate-1', 'upsert', mark)
  expect(await was2.call('get', 'mutate-1')).toMatchObject({ user: { name: 'ada', email: 'lovelace@example.com' } })
})

test('a destroy replicates and the id stays destroyed on both nodes', async () => {
  await was1.call('set', 'destroy-1', session({ n: 1 }))
  await was2.waitForReplicated('destroy-1', 'upsert')
  const mark = was2.mark
  await was1.call('destroy', 'destroy-1')
  await was2.waitForReplicated('destroy-1', 'destroy', mark)
  expect(await was2.call('get', 'destroy-1')).toBeNull()
  await was2.call('set', 'destroy-1', session({ n: 2 })) // a late write on the other node
  expect(await was2.call('get', 'destroy-1')).toBeNull()
})

test('an id change (regenerate: destroy the old id, write the new one) replicates', async () => {
  await was1.call('set', 'old-id', session({ user: 'ada' }))
  await was2.waitForReplicated('old-id', 'upsert')
  const mark = was2.mark
  await was1.call('destroy', 'old-id')
  await was1.call('set', 'new-id', session({ user: 'ada' }))
  await was2.waitForReplicated('new-id', 'upsert', mark)
  await was2.waitForReplicated('old-id', 'destroy', mark)
  expect(await was2.call('get', 'old-id')).toBeNull()
  expect(await was2.call('get', 'new-id')).toMatchObject({ user: 'ada' })
})

test('an expiry change (touch) replicates', async () => {
  const first = session({ n: 1 }, 60_000)
  await was1.call('set', 'touch-1', first)
  await was2.waitForReplicated('touch-1', 'upsert')
  // Same cookie, later expiry: what express-session's touch hands over on a later request.
  const touched = {
    ...first,
    cookie: { ...(first.cookie as object), expires: new Date((first.cookie as { expires: Date }).expires.getTime() + 30_000) },
  }
  const mark = was2.mark
  await was1.call('touch', 'touch-1', touched)
  await was2.waitForReplicated('touch-1', 'expiry', mark)
  const seen = await was2.call<{ cookie: { expires: Date } }>('get', 'touch-1')
  expect(seen.cookie.expires.getTime()).toBe(touched.cookie.expires.getTime())
})

test('writes on both nodes in both directions', async () => {
  const mark1 = was1.mark
  await was2.call('set', 'from-was2', session({ origin: 'was2' }))
  await was1.waitForReplicated('from-was2', 'upsert', mark1)
  expect(await was1.call('get', 'from-was2')).toMatchObject({ origin: 'was2' })
})

test('the members report the peer alive', async () => {
  const members = await was1.call<{ nodeId: string; state: string; address: string }[]>('members')
  expect(members).toEqual([expect.objectContaining({ nodeId: 'was2', state: 'alive', address: '127.0.0.12:4055' })])
})

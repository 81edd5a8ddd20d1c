import type { MemberState } from '../../../lib/cluster/peer-link.js'
import { decideExpiry, type ExpiryOwnerContext } from '../../../lib/peer-store/expiry-owner.js'

const NODES = ['was1', 'was2', 'was3', 'was4']

/** What `self` knows: every other node, in the states given (alive unless named). */
function contextOf(self: string, states: Record<string, MemberState> = {}, holders?: string[]): ExpiryOwnerContext {
  const members = NODES.filter((node) => node !== self).map((nodeId) => ({
    nodeId,
    address: nodeId,
    state: states[nodeId] ?? 'alive',
    since: new Date(0),
    queuedBytes: 0,
    connections: 1,
    protocol: 3,
  }))
  return { nodeId: self, members: () => members, holders: () => holders }
}

test('the owner named in the id reports; every other node leaves it to the owner while it is alive', () => {
  expect(decideExpiry(contextOf('was2'), 'abc.was2', 'was1')).toBe('emit')
  expect(decideExpiry(contextOf('was1'), 'abc.was2', 'was1')).toBe('skip')
  expect(decideExpiry(contextOf('was3'), 'abc.was2', 'was1')).toBe('skip')
})

test('an id without a route is owned by the node that last wrote it', () => {
  expect(decideExpiry(contextOf('was3'), 'plain', 'was3')).toBe('emit')
  expect(decideExpiry(contextOf('was1'), 'plain', 'was3')).toBe('skip')
})

test('while the owner is suspected (or not reached yet), the decision waits', () => {
  expect(decideExpiry(contextOf('was1', { was2: 'suspect' }), 'abc.was2', 'was2')).toBe('wait')
  expect(decideExpiry(contextOf('was1', { was2: 'connecting' }), 'abc.was2', 'was2')).toBe('wait')
})

test('when the owner is dead, exactly one survivor reports, the same one whichever survivor decides', () => {
  for (let i = 0; i < 200; i++) {
    const sid = `session-${i}.was2`
    const emitters = ['was1', 'was3', 'was4'].filter((self) => decideExpiry(contextOf(self, { was2: 'dead' }), sid, 'was2') === 'emit')
    expect(emitters).toHaveLength(1)
  }
})

test('survivors spread the sessions of a dead owner between them', () => {
  const counts = new Map<string, number>()
  for (let i = 0; i < 300; i++) {
    for (const self of ['was1', 'was3', 'was4']) {
      if (decideExpiry(contextOf(self, { was2: 'dead' }), `s${i}.was2`, 'was2') === 'emit') counts.set(self, (counts.get(self) ?? 0) + 1)
    }
  }
  for (const self of ['was1', 'was3', 'was4']) expect(counts.get(self)).toBeGreaterThan(50)
})

test('an owner that is gone from the members counts as dead; a dead survivor is never chosen', () => {
  const sid = 'abc.was9'
  const emitters = NODES.filter((self) => decideExpiry(contextOf(self), sid, 'was9') === 'emit')
  expect(emitters).toHaveLength(1)
  for (let i = 0; i < 100; i++) {
    const states = { was2: 'dead', was3: 'dead' } as const
    expect(decideExpiry(contextOf('was1', states), `s${i}.was2`, 'was2')).toBe(
      decideExpiry(contextOf('was4', states), `s${i}.was2`, 'was2') === 'emit' ? 'skip' : 'emit',
    )
  }
})

test('in backups mode, only a holder of the session is chosen', () => {
  for (let i = 0; i < 100; i++) {
    const sid = `s${i}.was2`
    const holders = ['was2', i % 2 === 0 ? 'was3' : 'was4']
    const emitters = ['was1', 'was3', 'was4'].filter(
      (self) => decideExpiry(contextOf(self, { was2: 'dead' }, holders), sid, 'was2') === 'emit',
    )
    expect(emitters).toEqual([holders[1]])
  }
})

test('a node without peers (a Redis tier only) reports only the expiries of its own sessions', () => {
  const alone: ExpiryOwnerContext = { nodeId: 'was1', members: () => undefined, holders: () => undefined }
  expect(decideExpiry(alone, 'abc.was1', 'was1')).toBe('emit')
  expect(decideExpiry(alone, 'abc.was2', 'was2')).toBe('skip')
})

import {
  InvalidArgumentError,
  InvalidOptionError,
  NotReplicableError,
  PeerStore,
  SessionLimitError,
  type PeerStoreOptions,
} from '../../../lib/index.js'
import { session } from '../../helpers/sessions.js'

const SECOND = 1000
const byUser = (s: { user?: string }) => s.user
let store: PeerStore

function open(options: PeerStoreOptions = {}): PeerStore {
  store = new PeerStore({ principal: byUser, ...options })
  return store
}

afterEach(async () => {
  await store?.close()
  jest.useRealTimers()
})

describe('sessions by user', () => {
  test('sessionsOf lists the live sessions of a principal, oldest first, without their data', async () => {
    open()
    await store.set('a1', session({ user: 'ann', secret: 'x' }))
    await store.set('b1', session({ user: 'bob' }))
    await store.set('a2', session({ user: 'ann' }))
    await store.set('anon', session({}))
    const sessions = await store.sessionsOf('ann')
    expect(sessions.map((s) => s.id)).toEqual(['a1', 'a2'])
    expect(Object.keys(sessions[0]!).sort()).toEqual(['createdAt', 'expiresAt', 'id', 'lastAccess', 'servedBy'])
    expect(sessions[0]!.servedBy).toBe('local')
    expect(sessions[0]!.expiresAt.getTime()).toBeGreaterThan(Date.now())
    expect(await store.sessionsOf('nobody')).toEqual([])
  })

  test('the index follows logins, logouts, destroys and a change of user', async () => {
    open()
    await store.set('s', session({}))
    expect(await store.sessionsOf('ann')).toEqual([])
    await store.set('s', session({ user: 'ann' }))
    expect((await store.sessionsOf('ann')).map((s) => s.id)).toEqual(['s'])
    await store.set('s', session({ user: 'bob' }))
    expect(await store.sessionsOf('ann')).toEqual([])
    expect((await store.sessionsOf('bob')).map((s) => s.id)).toEqual(['s'])
    await store.set('s', session({}))
    expect(await store.sessionsOf('bob')).toEqual([])
    await store.set('t', session({ user: 'bob' }))
    await store.destroy('t')
    expect(await store.sessionsOf('bob')).toEqual([])
  })

  test('an expired session leaves the index (Spring Session keeps such entries in Redis)', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate'] })
    open({ reapInterval: 100 })
    await store.set('short', session({ user: 'ann' }, 2 * SECOND))
    await store.set('long', session({ user: 'ann' }, 60 * SECOND))
    await jest.advanceTimersByTimeAsync(3 * SECOND)
    expect((await store.sessionsOf('ann')).map((s) => s.id)).toEqual(['long'])
  })

  test('numeric principals and their strings are one user', async () => {
    store = new PeerStore({ principal: (s) => (s as { uid?: number }).uid })
    await store.set('s', session({ uid: 42 }))
    expect((await store.sessionsOf(42)).map((s) => s.id)).toEqual(['s'])
    expect((await store.sessionsOf('42')).map((s) => s.id)).toEqual(['s'])
  })

  test('destroyAllOf destroys every session of a principal but those excepted, for good', async () => {
    open()
    for (const sid of ['a1', 'a2', 'a3']) await store.set(sid, session({ user: 'ann' }))
    await store.set('b1', session({ user: 'bob' }))
    expect(await store.destroyAllOf('ann', { except: ['a2'] })).toBe(2)
    expect(await store.get('a1')).toBeNull()
    expect(await store.get('a3')).toBeNull()
    expect(await store.get('a2')).toMatchObject({ user: 'ann' })
    expect(await store.get('b1')).toMatchObject({ user: 'bob' })
    // A slow request that still holds the old session cannot bring it back.
    await store.set('a1', session({ user: 'ann' }))
    expect(await store.get('a1')).toBeNull()
  })

  test('the store keeps its facts out of what the application sees, and the key is reserved', async () => {
    open({ absoluteTimeout: 3600 })
    await store.set('s', session({ user: 'ann', n: 1 }))
    const read = (await store.get('s'))!
    expect(Object.keys(read).sort()).toEqual(['cookie', 'n', 'user'])
    expect(Object.keys((await store.all())['s']!).sort()).toEqual(['cookie', 'n', 'user'])
    await expect(store.set('t', session({ '\u0000connect-peer': 1 }))).rejects.toThrow(NotReplicableError)
  })

  test('without a principal option, sessionsOf and destroyAllOf say what is missing', async () => {
    store = new PeerStore()
    await expect(store.sessionsOf('ann')).rejects.toThrow(/Invalid option `principal`/)
    await expect(store.destroyAllOf('ann')).rejects.toThrow(InvalidOptionError)
  })

  test('in backups mode, where no node knows every session, they are refused', async () => {
    store = new PeerStore({ principal: byUser, replication: { backups: 1 } })
    await expect(store.sessionsOf('ann')).rejects.toThrow(/backups mode/)
  })

  test('a bad principal is refused, from the option and from the function', async () => {
    expect(() => new PeerStore({ principal: 'userId' as never })).toThrow(/Invalid option `principal`/)
    expect(() => new PeerStore({ maxSessionsPerPrincipal: 2 })).toThrow(/`principal`/)
    store = new PeerStore({ principal: () => ({ id: 1 }) as never })
    await expect(store.set('s', session({}))).rejects.toThrow(/Invalid option `principal`/)
    await expect(store.sessionsOf({} as never)).rejects.toThrow(InvalidArgumentError)
  })
})

describe('maxSessionsPerPrincipal', () => {
  test("'evict-oldest' destroys the oldest session of the user to make room, and counts it", async () => {
    open({ maxSessionsPerPrincipal: 2 })
    const destroyed: Array<{ sid: string; reason: string; data: unknown }> = []
    store.on('session:destroyed', (event) => destroyed.push(event))
    for (const sid of ['d1', 'd2', 'd3']) await store.set(sid, session({ user: 'ann', device: sid }))
    expect((await store.sessionsOf('ann')).map((s) => s.id)).toEqual(['d2', 'd3'])
    expect(destroyed).toEqual([{ sid: 'd1', reason: 'evicted', data: expect.objectContaining({ device: 'd1' }) }])
    expect(store.stats().evicted).toBe(1)
    // A session that already belongs to the user is not a new one: saving it evicts nothing.
    await store.set('d2', session({ user: 'ann', device: 'd2', n: 2 }))
    expect(store.stats().evicted).toBe(1)
  })

  test("'refuse' fails the new session with SessionLimitError and keeps the others", async () => {
    open({ maxSessionsPerPrincipal: 1, principalLimitPolicy: 'refuse' })
    await store.set('d1', session({ user: 'ann' }))
    await expect(store.set('d2', session({ user: 'ann' }))).rejects.toThrow(SessionLimitError)
    // An anonymous session logging in as ann is refused too; it stays what it was.
    await store.set('d3', session({}))
    await expect(store.set('d3', session({ user: 'ann' }))).rejects.toMatchObject({ limit: 'maxSessionsPerPrincipal' })
    expect(await store.get('d3')).not.toHaveProperty('user')
    expect(await store.get('d2')).toBeNull()
    expect(store.stats().refused).toBe(2)
  })
})

describe('maxSessions', () => {
  test('evicts the least recently used anonymous session first, never one with a principal', async () => {
    open({ maxSessions: 3 })
    await store.set('user', session({ user: 'ann' }))
    await store.set('anon1', session({}))
    await store.set('anon2', session({}))
    await store.get('anon1') // now anon2 is the least recently used
    await store.set('anon3', session({}))
    expect((await store.ids()).sort()).toEqual(['anon1', 'anon3', 'user'])
    for (let i = 0; i < 20; i++) await store.set(`flood${i}`, session({}))
    expect(await store.get('user')).toMatchObject({ user: 'ann' })
    expect(store.stats().sessions).toBe(3)
    expect(store.stats().evicted).toBe(21)
  })

  test("a node evicts its own anonymous sessions before other nodes' (they evict theirs)", async () => {
    open({ nodeId: 'was1', maxSessions: 3 })
    await store.set('old.was2', session({}))
    await store.set('a.was1', session({}))
    await store.set('b.was1', session({}))
    await store.set('c.was1', session({}))
    expect((await store.ids()).sort()).toEqual(['b.was1', 'c.was1', 'old.was2'])
    await store.set('d.was1', session({ user: 'ann' }))
    await store.set('e.was1', session({ user: 'bob' }))
    expect((await store.ids()).sort()).toEqual(['d.was1', 'e.was1', 'old.was2'])
    // None of its own left: the other node's goes before any logged-in user's.
    await store.set('f.was1', session({ user: 'cat' }))
    expect((await store.ids()).sort()).toEqual(['d.was1', 'e.was1', 'f.was1'])
  })

  test('a new anonymous session that finds only logged-in users is refused; a new login evicts the idlest one', async () => {
    open({ maxSessions: 2 })
    await store.set('u1', session({ user: 'ann' }))
    await store.set('u2', session({ user: 'bob' }))
    await expect(store.set('anon', session({}))).rejects.toMatchObject({ limit: 'maxSessions' })
    expect(store.stats().refused).toBe(1)
    await store.get('u1')
    await store.set('u3', session({ user: 'cat' }))
    expect((await store.ids()).sort()).toEqual(['u1', 'u3'])
  })

  test('writes to existing sessions are never refused', async () => {
    open({ maxSessions: 1 })
    await store.set('u1', session({ user: 'ann' }))
    await store.set('u1', session({ user: 'ann', n: 2 }))
    expect(await store.get('u1')).toMatchObject({ n: 2 })
  })
})

describe('absoluteTimeout', () => {
  test('a session ends at creation + absoluteTimeout however active it is', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate'] })
    open({ absoluteTimeout: 10, reapInterval: 100 })
    const expired: string[] = []
    store.on('session:expired', ({ sid }) => expired.push(sid))
    await store.set('s', session({ user: 'ann' }, 5 * SECOND))
    for (let t = 0; t < 9; t++) {
      await jest.advanceTimersByTimeAsync(SECOND)
      await store.touch('s', session({ user: 'ann' }, 5 * SECOND))
      await store.set('s', session({ user: 'ann', t }, 5 * SECOND))
    }
    expect(await store.get('s')).toMatchObject({ t: 8 })
    await jest.advanceTimersByTimeAsync(SECOND)
    expect(await store.get('s')).toBeNull()
    expect(expired).toEqual(['s'])
  })
})

describe('session events on one node', () => {
  test('created once, destroyed once with the last data, expired once', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate'] })
    open({ reapInterval: 100 })
    const seen: string[] = []
    store.on('session:created', ({ sid, data }) => seen.push(`created ${sid} ${JSON.stringify((data as { n?: number }).n)}`))
    store.on('session:destroyed', ({ sid, data, reason }) => seen.push(`destroyed ${sid} ${(data as { n?: number }).n} ${reason}`))
    store.on('session:expired', ({ sid, data }) => seen.push(`expired ${sid} ${(data as { n?: number }).n}`))
    await store.set('a', session({ n: 1 }))
    await store.set('a', session({ n: 2 }))
    await store.destroy('a')
    await store.destroy('a')
    await store.set('b', session({ n: 3 }, 2 * SECOND))
    await jest.advanceTimersByTimeAsync(3 * SECOND)
    expect(await store.get('b')).toBeNull()
    expect(seen).toEqual(['created a 1', 'destroyed a 2 destroyed', 'created b 3', 'expired b 3'])
  })
})

describe('merge on save, within one store', () => {
  type Data = Record<string, unknown>
  const tenantUser = (s: Data) => (typeof s.tenant === 'string' && typeof s.user === 'string' ? `${s.tenant}:${s.user}` : undefined)

  test('a request that saves twice keeps the change another request stored between its reads and saves', async () => {
    store = new PeerStore()
    await store.set('s', session({ a: 1, b: 1 }))
    const first = (await store.get('s')) as Data & ReturnType<typeof session>
    const second = (await store.get('s')) as Data & ReturnType<typeof session>
    second.b = 2
    await store.set('s', second)
    first.a = 2
    await store.set('s', first)
    expect(await store.get('s')).toMatchObject({ a: 2, b: 2 })
    // Its second save (an explicit save(), then express-session's own) must not write back its stale b.
    first.c = 3
    await store.set('s', first)
    expect(await store.get('s')).toMatchObject({ a: 2, b: 2, c: 3 })
    expect(store.stats().merged).toBe(2)
  })

  test('the principal follows the merged data, when it depends on keys two requests changed', async () => {
    store = new PeerStore({ principal: (s) => tenantUser(s as unknown as Data) })
    await store.set('s', session({}))
    const first = (await store.get('s')) as Data & ReturnType<typeof session>
    const second = (await store.get('s')) as Data & ReturnType<typeof session>
    first.tenant = 'acme'
    await store.set('s', first)
    second.user = 'ann'
    await store.set('s', second)
    expect(await store.get('s')).toMatchObject({ tenant: 'acme', user: 'ann' })
    expect((await store.sessionsOf('acme:ann')).map((s) => s.id)).toEqual(['s'])
  })
})

describe('limits and the absolute timeout, at the edges', () => {
  test('a save after the absolute end, by a request that read the session before, does not bring it back', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate'] })
    open({ absoluteTimeout: 10, reapInterval: 100 })
    const seen: string[] = []
    store.on('session:created', ({ sid }) => seen.push(`created ${sid}`))
    store.on('session:expired', ({ sid }) => seen.push(`expired ${sid}`))
    await store.set('s', session({ user: 'ann' }, 60 * SECOND))
    const slow = (await store.get('s'))!
    await jest.advanceTimersByTimeAsync(11 * SECOND)
    await store.set('s', slow)
    expect(await store.get('s')).toBeNull()
    expect(seen).toEqual(['created s', 'expired s'])
  })

  test('an expired session not yet swept counts toward no limit', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate'] })
    open({ maxSessionsPerPrincipal: 1, principalLimitPolicy: 'refuse', maxSessions: 1, reapInterval: 3_600_000 })
    await store.set('old', session({ user: 'ann' }, 2 * SECOND))
    await jest.advanceTimersByTimeAsync(3 * SECOND)
    await store.set('new', session({ user: 'ann' }))
    expect(await store.ids()).toEqual(['new'])
    expect(store.stats()).toMatchObject({ refused: 0, evicted: 0 })
  })

  test("a logged-in user's session evicted for another keeps a full tombstone; an anonymous one's lasts 30 s", async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate'] })
    open({ maxSessions: 1, reapInterval: 100, tombstoneTtl: 600 })
    await store.set('anon', session({}))
    await store.set('u1', session({ user: 'ann' }))
    await store.set('u2', session({ user: 'bob' }))
    expect(await store.ids()).toEqual(['u2'])
    expect(store.stats()).toMatchObject({ evicted: 2, tombstones: 2 })
    await jest.advanceTimersByTimeAsync(31 * SECOND)
    expect(store.stats().tombstones).toBe(1)
    await store.set('u1', session({ user: 'ann' }))
    expect(await store.get('u1')).toBeNull()
  })
})

import type { SessionData, Store } from 'express-session'
import { HOUR, session } from './sessions.js'

/**
 * The express-session Store contract, run against PeerStore and against express-session's own
 * MemoryStore. Where the two differ on purpose, the difference is a named trait, documented in
 * docs/api.md ("Differences from MemoryStore"), and each store's test asserts its own value.
 */
export interface StoreTraits {
  /** What `get` reports for a missing session: MemoryStore `undefined`, PeerStore `null`. */
  readonly missing: null | undefined
  /** Whether Dates come back as Dates (PeerStore) or as ISO strings (MemoryStore, JSON). */
  readonly revivesDates: boolean
  /** Whether a destroyed id stays destroyed, ignoring later writes (PeerStore: tombstones). */
  readonly destroyIsFinal: boolean
}

type Closable = Store & { close?: () => Promise<void> }

function call<T>(
  invoke: (callback: (error: unknown, value?: T) => void) => void,
): Promise<{ value: T | undefined; calls: number; sync: boolean }> {
  return new Promise((resolve, reject) => {
    let calls = 0
    let returned = false
    let sync = false
    invoke((error, value) => {
      calls += 1
      if (!returned) sync = true
      if (error) reject(error instanceof Error ? error : new Error(`callback error: ${JSON.stringify(error)}`))
      // Wait a few turns so a second call of the callback would be counted.
      else setImmediate(() => setImmediate(() => resolve({ value, calls, sync })))
    })
    returned = true
  })
}

export function describeStoreContract(name: string, create: () => Closable, traits: StoreTraits): void {
  describe(`store contract: ${name}`, () => {
    let store: Closable

    const get = (sid: string) => call<SessionData | null>((cb) => store.get(sid, cb))
    const set = (sid: string, data: SessionData) => call<void>((cb) => store.set(sid, data, cb))
    const destroy = (sid: string) => call<void>((cb) => store.destroy(sid, cb))
    const touch = (sid: string, data: SessionData) => call<void>((cb) => store.touch!(sid, data, cb as () => void))
    const length = () => call<number>((cb) => store.length!(cb))
    const all = () => call<Record<string, SessionData>>((cb) => store.all!(cb as never))
    const clear = () => call<void>((cb) => store.clear!(cb))

    beforeEach(() => {
      store = create()
    })
    afterEach(async () => {
      await store.close?.()
    })

    test('get of an unknown id reports no session, once and asynchronously', async () => {
      const result = await get('nope')
      expect(result.value).toBe(traits.missing)
      expect(result.calls).toBe(1)
      expect(result.sync).toBe(false)
    })

    test('set then get returns the same data', async () => {
      const stored = await set('s1', session({ user: 'ada', visits: 3, tags: ['a', 'b'], nested: { deep: { x: null } } }))
      expect(stored).toMatchObject({ calls: 1, sync: false })
      const { value } = await get('s1')
      expect(value).toMatchObject({ user: 'ada', visits: 3, tags: ['a', 'b'], nested: { deep: { x: null } } })
      expect(value!.cookie).toMatchObject({ originalMaxAge: HOUR, httpOnly: true, path: '/' })
    })

    test('cookie.expires comes back with the same instant', async () => {
      const data = session({})
      await set('s1', data)
      const { value } = await get('s1')
      const expires = value!.cookie.expires as unknown
      expect(traits.revivesDates ? expires instanceof Date : typeof expires === 'string').toBe(true)
      expect(new Date(expires as string).getTime()).toBe(data.cookie.expires!.getTime())
    })

    test('set replaces the previous version', async () => {
      await set('s1', session({ n: 1, gone: true }))
      await set('s1', session({ n: 2 }))
      const { value } = await get('s1')
      expect(value).toMatchObject({ n: 2 })
      expect(value).not.toHaveProperty('gone')
    })

    test('the stored copy is isolated from the objects passed in and handed out', async () => {
      const data = session({ list: [1], profile: { name: 'ada' } }) as SessionData & { list: number[]; profile: { name: string } }
      await set('s1', data)
      data.list.push(2)
      data.profile.name = 'mutated after set'
      const first = (await get('s1')).value as typeof data
      first.list.push(3)
      first.profile.name = 'mutated after get'
      const second = (await get('s1')).value as typeof data
      expect(second.list).toEqual([1])
      expect(second.profile.name).toBe('ada')
    })

    test('destroy removes the session; destroying an unknown id is not an error', async () => {
      await set('s1', session({ n: 1 }))
      expect(await destroy('s1')).toMatchObject({ calls: 1, sync: false })
      expect((await get('s1')).value).toBe(traits.missing)
      expect(await destroy('never-existed')).toMatchObject({ calls: 1 })
    })

    test('a write after destroy is ignored only where destroy is final', async () => {
      await set('s1', session({ n: 1 }))
      await destroy('s1')
      await set('s1', session({ n: 2 }))
      const { value } = await get('s1')
      if (traits.destroyIsFinal) expect(value).toBe(traits.missing)
      else expect(value).toMatchObject({ n: 2 })
    })

    test('touch moves the expiry of an existing session', async () => {
      await set('s1', session({ n: 1 }, 60_000))
      const later = session({ n: 1 }, 120_000)
      expect(await touch('s1', later)).toMatchObject({ calls: 1, sync: false })
      const { value } = await get('s1')
      expect(new Date(value!.cookie.expires as unknown as string).getTime()).toBe(later.cookie.expires!.getTime())
    })

    test('touch of an unknown or destroyed session is a silent no-op that creates nothing', async () => {
      expect(await touch('ghost', session({ n: 1 }))).toMatchObject({ calls: 1 })
      expect((await get('ghost')).value).toBe(traits.missing)
      await set('s1', session({ n: 1 }))
      await destroy('s1')
      await touch('s1', session({ n: 1 }))
      expect((await get('s1')).value).toBe(traits.missing)
      expect((await length()).value).toBe(0)
    })

    test('an expired session is never returned', async () => {
      await set('old', session({ n: 1 }, -1000))
      expect((await get('old')).value).toBe(traits.missing)
      expect((await length()).value).toBe(0)
    })

    test('length and all count and list the live sessions, keyed by id', async () => {
      await set('a', session({ n: 1 }))
      await set('b', session({ n: 2 }))
      await set('c', session({ n: 3 }))
      await destroy('b')
      expect((await length()).value).toBe(2)
      const { value } = await all()
      expect(Object.keys(value!).sort()).toEqual(['a', 'c'])
      expect(value!.a).toMatchObject({ n: 1 })
    })

    test('clear removes every session', async () => {
      await set('a', session({ n: 1 }))
      await set('b', session({ n: 2 }))
      expect(await clear()).toMatchObject({ calls: 1, sync: false })
      expect((await length()).value).toBe(0)
      expect((await get('a')).value).toBe(traits.missing)
    })

    test('a cookie.expires that is an Invalid Date is stored as no expiry (express-session already reported it)', async () => {
      const data = session({ n: 1 })
      data.cookie.expires = new Date(Number.NaN)
      expect(await set('s1', data)).toMatchObject({ calls: 1 })
      const { value } = await get('s1')
      expect(value).toMatchObject({ n: 1 })
      expect(value!.cookie.expires ?? null).toBeNull()
    })

    test('a session without a cookie expiry is stored and returned', async () => {
      await set('s1', session({ n: 1 }, null))
      const { value } = await get('s1')
      expect(value).toMatchObject({ n: 1 })
      expect(value!.cookie.expires ?? null).toBeNull()
    })
  })
}

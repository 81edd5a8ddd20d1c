import { PeerStore, type PeerStoreOptions } from '../../../lib/index.js'
import { session } from '../../helpers/sessions.js'

const SECOND = 1000
let store: PeerStore

function open(options: PeerStoreOptions = {}): PeerStore {
  store = new PeerStore(options)
  return store
}

beforeEach(() => {
  // Promises and callbacks stay real; only clocks and timers are fake.
  jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate'], now: new Date('2026-01-01T00:00:00Z') })
})
afterEach(async () => {
  await store?.close()
  jest.useRealTimers()
})

test('a session is returned until cookie.expires and never after', async () => {
  open()
  await store.set('a', session({ n: 1 }, 5 * SECOND))
  await jest.advanceTimersByTimeAsync(5 * SECOND - 1)
  expect(await store.get('a')).toMatchObject({ n: 1 })
  await jest.advanceTimersByTimeAsync(1)
  expect(await store.get('a')).toBeNull()
})

test('expired sessions are reclaimed by the periodic sweep without any read', async () => {
  open({ reapInterval: 500 })
  for (let i = 0; i < 50; i++) await store.set(`s${i}`, session({ i }, (i < 25 ? 2 : 20) * SECOND))
  expect(store.stats().sessions).toBe(50)
  await jest.advanceTimersByTimeAsync(2 * SECOND + 500)
  expect(store.stats().sessions).toBe(25)
  await jest.advanceTimersByTimeAsync(18 * SECOND)
  expect(store.stats().sessions).toBe(0)
})

test.each([
  ['an Invalid Date', new Date(Number.NaN)],
  ['an unparsable string', 'not a date'],
  ['NaN', Number.NaN],
])('a cookie.expires that is %s counts as no expiry: the ttl decides, and get returns null for it', async (_, expires) => {
  open({ ttl: 10 })
  await store.set('a', { cookie: { originalMaxAge: null, path: '/', expires }, n: 1 } as never)
  await jest.advanceTimersByTimeAsync(10 * SECOND - 1)
  const back = await store.get('a')
  expect(back).toMatchObject({ n: 1 })
  expect(back!.cookie.expires).toBeNull()
  await jest.advanceTimersByTimeAsync(1)
  expect(await store.get('a')).toBeNull()
})

test('without a cookie expiry, the ttl option (seconds) decides', async () => {
  open({ ttl: 10 })
  await store.set('a', session({}, null))
  await jest.advanceTimersByTimeAsync(10 * SECOND - 1)
  expect(await store.get('a')).not.toBeNull()
  await jest.advanceTimersByTimeAsync(1)
  expect(await store.get('a')).toBeNull()
})

test('the default ttl is one day', async () => {
  open()
  await store.set('a', session({}, null))
  await jest.advanceTimersByTimeAsync(86_400 * SECOND - 1)
  expect(await store.get('a')).not.toBeNull()
  await jest.advanceTimersByTimeAsync(1)
  expect(await store.get('a')).toBeNull()
})

test('a ttl function wins over the cookie', async () => {
  open({ ttl: (data) => ((data as { rememberMe?: boolean }).rememberMe ? 3600 : 60) })
  await store.set('remembered', session({ rememberMe: true }, 5 * SECOND))
  await store.set('plain', session({ rememberMe: false }, 3_600 * SECOND))
  await jest.advanceTimersByTimeAsync(60 * SECOND)
  expect(await store.get('plain')).toBeNull()
  expect(await store.get('remembered')).not.toBeNull()
  await jest.advanceTimersByTimeAsync(3540 * SECOND)
  expect(await store.get('remembered')).toBeNull()
})

test('touch moves the expiry; a touched session outlives its first expiry', async () => {
  open()
  await store.set('a', session({}, 5 * SECOND))
  await jest.advanceTimersByTimeAsync(4 * SECOND)
  await store.touch('a', session({}, 5 * SECOND))
  await jest.advanceTimersByTimeAsync(4 * SECOND)
  expect(await store.get('a')).not.toBeNull()
  await jest.advanceTimersByTimeAsync(1 * SECOND)
  expect(await store.get('a')).toBeNull()
})

test('disableTouch: touch never moves the expiry', async () => {
  open({ disableTouch: true })
  await store.set('a', session({}, 5 * SECOND))
  await jest.advanceTimersByTimeAsync(4 * SECOND)
  await store.touch('a', session({}, 5 * SECOND))
  await jest.advanceTimersByTimeAsync(1 * SECOND)
  expect(await store.get('a')).toBeNull()
})

test('touchAfter: an unchanged session has its expiry rewritten at most once per window', async () => {
  open({ touchAfter: 60 })
  const maxAge = 600 * SECOND
  await store.set('a', session({ n: 1 }, maxAge))
  await jest.advanceTimersByTimeAsync(10 * SECOND)
  await store.touch('a', session({ n: 1 }, maxAge)) // inside the window: ignored
  await store.set('a', session({ n: 1 }, maxAge)) // resave of unchanged data: ignored too
  await jest.advanceTimersByTimeAsync(590 * SECOND)
  expect(await store.get('a')).toBeNull() // expired 600 s after the first write
})

test('touchAfter: a touch after the window rewrites the expiry', async () => {
  open({ touchAfter: 60 })
  const maxAge = 600 * SECOND
  await store.set('a', session({ n: 1 }, maxAge))
  await jest.advanceTimersByTimeAsync(61 * SECOND)
  await store.touch('a', session({ n: 1 }, maxAge))
  await jest.advanceTimersByTimeAsync(599 * SECOND)
  expect(await store.get('a')).not.toBeNull()
  await jest.advanceTimersByTimeAsync(1 * SECOND)
  expect(await store.get('a')).toBeNull()
})

test('touchAfter never lets an active session lapse when maxAge is shorter than the window', async () => {
  open({ touchAfter: 60 })
  await store.set('a', session({}, 30 * SECOND))
  for (let i = 0; i < 15; i++) {
    await jest.advanceTimersByTimeAsync(20 * SECOND)
    expect(await store.get('a')).not.toBeNull()
    await store.touch('a', session({}, 30 * SECOND))
  }
})

test('a changed session is always written, whatever touchAfter says', async () => {
  open({ touchAfter: 60 })
  await store.set('a', session({ n: 1 }, 600 * SECOND))
  await jest.advanceTimersByTimeAsync(10 * SECOND)
  await store.set('a', session({ n: 2 }, 600 * SECOND))
  await jest.advanceTimersByTimeAsync(595 * SECOND)
  expect(await store.get('a')).toMatchObject({ n: 2 })
})

test('a tombstone blocks writes to the destroyed id, then is forgotten', async () => {
  open({ tombstoneTtl: 30, reapInterval: 1000 })
  await store.set('a', session({ n: 1 }, 10 * SECOND))
  await store.destroy('a')
  await store.set('a', session({ n: 2 }, 10 * SECOND)) // an in-flight request saving the old session
  expect(await store.get('a')).toBeNull()
  expect(store.stats()).toMatchObject({ sessions: 0, tombstones: 1 })
  await jest.advanceTimersByTimeAsync(31 * SECOND)
  expect(store.stats()).toMatchObject({ sessions: 0, tombstones: 0 })
  await store.set('a', session({ n: 3 }, 10 * SECOND))
  expect(await store.get('a')).toMatchObject({ n: 3 })
})

test('a tombstone lasts at least as long as the session it replaced would have', async () => {
  open({ tombstoneTtl: 30 })
  await store.set('a', session({ n: 1 }, 300 * SECOND))
  await store.destroy('a')
  await jest.advanceTimersByTimeAsync(299 * SECOND)
  await store.set('a', session({ n: 2 }, 10 * SECOND))
  expect(await store.get('a')).toBeNull()
  await jest.advanceTimersByTimeAsync(2 * SECOND)
  expect(store.stats().tombstones).toBe(0)
})

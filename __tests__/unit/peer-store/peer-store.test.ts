import { Socket } from 'node:net'
import type { SessionData } from 'express-session'
import {
  ErrorCodes,
  InvalidArgumentError,
  InvalidOptionError,
  NotReplicableError,
  PeerStore,
  SessionTooLargeError,
  StoreClosedError,
} from '../../../lib/index.js'
import { sessionWithCookie } from '../../helpers/sessions.js'

let store: PeerStore
beforeEach(() => {
  store = new PeerStore()
})
afterEach(async () => {
  await store.close()
})

describe('promises and callbacks', () => {
  test('every method returns a promise when no callback is given', async () => {
    await expect(store.set('a', sessionWithCookie({ n: 1 }))).resolves.toBeUndefined()
    await expect(store.get('a')).resolves.toMatchObject({ n: 1 })
    await expect(store.touch('a', sessionWithCookie({ n: 1 }))).resolves.toBeUndefined()
    await expect(store.length()).resolves.toBe(1)
    await expect(store.ids()).resolves.toEqual(['a'])
    await expect(store.all()).resolves.toHaveProperty('a')
    await expect(store.destroy('a')).resolves.toBeUndefined()
    await expect(store.clear()).resolves.toBeUndefined()
  })

  test('a callback gets the error of a bad call instead of a throw, once and asynchronously', async () => {
    let calls = 0
    let returned = false
    const error = await new Promise<unknown>((resolve) => {
      const result = store.set('a', { f: () => 1 } as never, (err) => {
        calls += 1
        expect(returned).toBe(true)
        resolve(err)
      })
      expect(result).toBeUndefined()
      returned = true
    })
    await new Promise((resolve) => setImmediate(resolve))
    expect(calls).toBe(1)
    expect(error).toBeInstanceOf(NotReplicableError)
  })
})

describe('values', () => {
  test('Dates and Buffers inside session data round-trip as Dates and Buffers', async () => {
    const when = new Date('2024-02-29T12:34:56.789Z')
    await store.set('a', sessionWithCookie({ when, list: [{ at: when }], bytes: Buffer.from([1, 2, 3]) }))
    const back = (await store.get('a')) as unknown as { when: Date; list: { at: Date }[]; bytes: Buffer }
    expect(back.when).toBeInstanceOf(Date)
    expect(back.when.getTime()).toBe(when.getTime())
    expect(back.list[0]!.at).toBeInstanceOf(Date)
    expect(Buffer.isBuffer(back.bytes) && back.bytes.equals(Buffer.from([1, 2, 3]))).toBe(true)
  })

  test('a returned Buffer is a copy: changing it does not change the store', async () => {
    await store.set('a', sessionWithCookie({ bytes: Buffer.from([1, 2, 3]) }))
    const first = (await store.get('a')) as unknown as { bytes: Buffer }
    first.bytes[0] = 99
    const second = (await store.get('a')) as unknown as { bytes: Buffer }
    expect(second.bytes[0]).toBe(1)
  })

  test('cookie is stored through cookie.toJSON() and its expires comes back as a Date', async () => {
    const data = sessionWithCookie({}, 30_000)
    await store.set('a', data)
    const back = await store.get('a')
    expect(back!.cookie).toEqual({ originalMaxAge: 30_000, expires: data.cookie.expires, httpOnly: true, path: '/' })
    expect(back!.cookie.expires).toBeInstanceOf(Date)
    expect(back!.cookie).not.toHaveProperty('maxAge')
  })

  test('undefined properties are left out, as JSON does', async () => {
    await store.set('a', sessionWithCookie({ gone: undefined, list: [undefined, 1] }))
    const back = (await store.get('a')) as unknown as Record<string, unknown>
    expect(back).not.toHaveProperty('gone')
    expect(back.list).toEqual([null, 1])
  })

  class Account {
    constructor(readonly id: number) {}
  }
  const circular: Record<string, unknown> = {}
  circular.self = circular
  const cases: [string, Record<string, unknown>, string][] = [
    ['a function', { onLogin: () => 1 }, 'onLogin'],
    ['a symbol', { tag: Symbol('x') }, 'tag'],
    ['a bigint', { nested: { big: 10n } }, 'nested.big'],
    ['a Map', { cart: new Map() }, 'cart'],
    ['a Set', { seen: new Set([1]) }, 'seen'],
    ['a class instance', { account: new Account(1) }, 'account'],
    ['a socket', { conn: { socket: new Socket() } }, 'conn.socket'],
    ['a circular reference', { loop: circular }, 'loop.self'],
    ['an invalid Date', { list: [1, new Date('nope')] }, 'list[1]'],
    ['a typed array other than Uint8Array', { floats: new Float32Array(2) }, 'floats'],
    ['a key that is not an identifier', { 'odd key': { f: () => 1 } }, '["odd key"].f'],
  ]
  test.each(cases)('%s is refused with a coded error naming the path, and the stored version stays', async (_, data, path) => {
    await store.set('a', sessionWithCookie({ version: 1 }))
    const error = await store.set('a', sessionWithCookie({ version: 2, ...data })).catch((err: unknown) => err)
    expect(error).toBeInstanceOf(NotReplicableError)
    expect(error).toMatchObject({ code: ErrorCodes.NOT_REPLICABLE, path })
    expect(String((error as Error).message)).toContain(path)
    expect(await store.get('a')).toMatchObject({ version: 1 })
  })

  test('a reference back to the session object is circular', async () => {
    const data = sessionWithCookie({}) as SessionData & { me?: unknown }
    data.me = { session: data }
    await expect(store.set('a', data)).rejects.toMatchObject({ code: ErrorCodes.NOT_REPLICABLE, path: 'me.session' })
  })

  test('values nested deeper than maxDepth are refused', async () => {
    const shallow = new PeerStore({ maxDepth: 3 })
    try {
      await expect(shallow.set('a', sessionWithCookie({ a: { b: { c: 1 } } }))).resolves.toBeUndefined()
      await expect(shallow.set('a', sessionWithCookie({ a: { b: { c: { d: 1 } } } }))).rejects.toMatchObject({
        code: ErrorCodes.NOT_REPLICABLE,
        path: 'a.b.c',
      })
    } finally {
      await shallow.close()
    }
  })

  test('a session larger than maxSessionBytes is refused and the stored version stays', async () => {
    const small = new PeerStore({ maxSessionBytes: 1024 })
    try {
      await small.set('a', sessionWithCookie({ text: 'fits' }))
      const error = await small.set('a', sessionWithCookie({ text: 'x'.repeat(2000) })).catch((err: unknown) => err)
      expect(error).toBeInstanceOf(SessionTooLargeError)
      expect(error).toMatchObject({ code: ErrorCodes.SESSION_TOO_LARGE, limit: 1024 })
      expect((error as SessionTooLargeError).size).toBeGreaterThan(2000)
      expect(await small.get('a')).toMatchObject({ text: 'fits' })
    } finally {
      await small.close()
    }
  })

  test.each([
    ['null', null],
    ['a string', 'session'],
    ['an array', []],
    ['a cookie that is not an object', { cookie: 'yes' }],
  ])('a session that is %s is refused with InvalidArgumentError', async (_, data) => {
    await expect(store.set('a', data as never)).rejects.toBeInstanceOf(InvalidArgumentError)
    await expect(store.length()).resolves.toBe(0)
  })

  test.each([
    ['a number', 42],
    ['an empty string', ''],
    ['an over-long string', 'x'.repeat(257)],
    ['undefined', undefined],
  ])('a session id that is %s is refused with InvalidArgumentError', async (_, sid) => {
    await expect(store.get(sid as never)).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT })
    await expect(store.set(sid as never, sessionWithCookie())).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT })
    await expect(store.destroy(sid as never)).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT })
  })
})

describe('expiry', () => {
  test('a ttl function that returns something else than a number fails the write', async () => {
    const bad = new PeerStore({ ttl: () => 'soon' as never })
    try {
      await expect(bad.set('a', sessionWithCookie())).rejects.toBeInstanceOf(InvalidOptionError)
    } finally {
      await bad.close()
    }
  })

  test('a set whose expiry has already passed deletes the session', async () => {
    await store.set('a', sessionWithCookie({ n: 1 }))
    await store.set('a', sessionWithCookie({ n: 2 }, -1))
    expect(await store.get('a')).toBeNull()
    expect(store.stats()).toMatchObject({ sessions: 0, tombstones: 1 })
  })

  test('touch stores a changed cookie (a new maxAge) but not the other data it is given', async () => {
    await store.set('a', sessionWithCookie({ n: 1 }, 60_000))
    await store.touch('a', sessionWithCookie({ n: 999 }, 3_600_000))
    const back = await store.get('a')
    expect(back).toMatchObject({ n: 1, cookie: { originalMaxAge: 3_600_000 } })
  })
})

describe('lifecycle and options', () => {
  test('close is idempotent and later calls fail with StoreClosedError', async () => {
    const closing = store.close()
    expect(store.close()).toBe(closing)
    await closing
    await expect(store.get('a')).rejects.toBeInstanceOf(StoreClosedError)
    await expect(store.set('a', sessionWithCookie())).rejects.toMatchObject({ code: ErrorCodes.CLOSED })
    await expect(store.ready()).rejects.toBeInstanceOf(StoreClosedError)
  })

  test('Symbol.asyncDispose closes the store', async () => {
    {
      await using disposable = new PeerStore()
      await disposable.set('a', sessionWithCookie())
      store = disposable
    }
    await expect(store.get('a')).rejects.toBeInstanceOf(StoreClosedError)
  })

  test('ready resolves at once for a store without peers', async () => {
    await expect(store.ready()).resolves.toBeUndefined()
  })

  test('all constructor forms are accepted', async () => {
    const stores = [new PeerStore(), new PeerStore({ ttl: 5 }), new PeerStore([], { ttl: 5 }), new PeerStore([])]
    for (const each of stores) await each.close()
    expect(stores).toHaveLength(4)
  })

  test.each([
    [{ ttl: 0 }, 'ttl'],
    [{ ttl: '1d' }, 'ttl'],
    [{ touchAfter: -1 }, 'touchAfter'],
    [{ disableTouch: 'yes' }, 'disableTouch'],
    [{ maxSessionBytes: 1.5 }, 'maxSessionBytes'],
    [{ maxDepth: 0 }, 'maxDepth'],
    [{ tombstoneTtl: Number.NaN }, 'tombstoneTtl'],
    [{ reapInterval: 1 }, 'reapInterval'],
    [{ tll: 5 }, 'tll'],
  ])('invalid options %p fail at construction naming %s', (options, name) => {
    let error: unknown
    try {
      new PeerStore(options as never)
    } catch (err) {
      error = err
    }
    expect(error).toBeInstanceOf(InvalidOptionError)
    expect(error).toMatchObject({ code: ErrorCodes.INVALID_OPTION, option: name })
    expect((error as Error).message).toContain(`\`${name}\``)
  })
})

describe('cluster options', () => {
  const base = { nodeId: 'was1', listen: '127.0.0.61:4070' }
  test.each([
    ['peers without nodeId', ['127.0.0.62:4070'], { listen: base.listen }, 'nodeId'],
    ['peers without listen', ['127.0.0.62:4070'], { nodeId: 'was1' }, 'listen'],
    ['a peer that is not host:port', ['127.0.0.62'], base, 'peers[0]'],
    ['a peer on port 0', ['127.0.0.62:0'], base, 'peers[0]'],
    ['a peer object without a port', [{ host: '127.0.0.62' }], base, 'peers[0].port'],
    ['the same peer twice', ['127.0.0.62:4070', '127.0.0.62:4070'], base, 'peers[1]'],
    ["a peer with this node's id", [{ host: '127.0.0.62', port: 4070, nodeId: 'was1' }], base, 'peers[0].nodeId'],
    [
      'two peers with one id',
      [
        { host: '127.0.0.62', port: 4070, nodeId: 'x' },
        { host: '127.0.0.63', port: 4070, nodeId: 'x' },
      ],
      base,
      'peers[1].nodeId',
    ],
    ['a node id with a dot', ['127.0.0.62:4070'], { ...base, nodeId: 'was.1' }, 'nodeId'],
    ['an unknown sendMode', ['127.0.0.62:4070'], { ...base, sendMode: 'fast' }, 'sendMode'],
    [
      'a suspectTimeout under two heartbeats',
      ['127.0.0.62:4070'],
      { ...base, heartbeatInterval: 1000, suspectTimeout: 1500 },
      'suspectTimeout',
    ],
    ['a deadTimeout not above suspectTimeout', ['127.0.0.62:4070'], { ...base, suspectTimeout: 3000, deadTimeout: 3000 }, 'deadTimeout'],
    ['a maxFrameBytes with no room for a session', ['127.0.0.62:4070'], { ...base, maxFrameBytes: 100_000 }, 'maxFrameBytes'],
    ['a maxQueueBytes under one frame', ['127.0.0.62:4070'], { ...base, maxQueueBytes: 1000 }, 'maxQueueBytes'],
    ['a retry that is not a function', ['127.0.0.62:4070'], { ...base, retry: 100 }, 'retry'],
    [
      'an autoBind over 100',
      ['127.0.0.62:4070'],
      { ...base, listen: { host: '127.0.0.61', port: 4070, autoBind: 500 } },
      'listen.autoBind',
    ],
    ['an empty secret', ['127.0.0.62:4070'], { ...base, secret: '' }, 'secret'],
    ['peers that are not a list', 'not a list', base, 'peers'],
  ])('%s fails at construction naming the option', (_, peers, options, name) => {
    let error: unknown
    try {
      new PeerStore(peers as never, options as never)
    } catch (err) {
      error = err
    }
    expect(error).toBeInstanceOf(InvalidOptionError)
    expect(error).toMatchObject({ option: name })
  })
})

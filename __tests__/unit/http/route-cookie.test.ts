import { ErrorCodes } from '../../../lib/index.js'
import { resolveRouteCookie } from '../../../lib/http/route-cookie.js'
import { createSessionId, routeOf } from '../../../lib/table/session-id.js'
import { DEFAULT_STATIC_FILTER, pathOf, staticMatcher } from '../../../lib/http/static-filter.js'

describe('session ids', () => {
  test('are 144 random bits in base64url, a dot and the node id', () => {
    const id = createSessionId('was1')
    expect(id).toMatch(/^[A-Za-z0-9_-]{24}\.was1$/)
    expect(Buffer.from(id.split('.')[0]!, 'base64url')).toHaveLength(18)
  })

  test('do not repeat', () => {
    const ids = new Set(Array.from({ length: 10_000 }, () => createSessionId('was1')))
    expect(ids.size).toBe(10_000)
  })

  test('name their route after the last dot', () => {
    expect(routeOf('abc.was1')).toBe('was1')
    expect(routeOf('a.b.was2')).toBe('was2')
    expect(routeOf('no-route')).toBeUndefined()
    expect(routeOf(createSessionId('node-7'))).toBe('node-7')
  })
})

describe('route cookie', () => {
  test('defaults: ROUTEID=<node>, path /, HttpOnly, SameSite=Lax, no expiry', () => {
    const cookie = resolveRouteCookie()
    expect(cookie.header('was1')).toBe('ROUTEID=was1; Path=/; HttpOnly; SameSite=Lax')
    expect(cookie.read('a=1; ROUTEID=was2; b=2')).toBe('was2')
    expect(cookie.read(undefined)).toBeUndefined()
  })

  test('is added only when the client does not hold it and the request has a session worth routing', () => {
    const cookie = resolveRouteCookie()
    const request = (cookieHeader: string | undefined, hasData: boolean) => ({ cookieHeader, sessionCookieName: 'connect.sid', hasData })
    expect(cookie.headerFor(request('ROUTEID=was1', true), 'was1')).toBeUndefined()
    expect(cookie.headerFor(request('ROUTEID=was2', true), 'was1')).toMatch(/^ROUTEID=was1;/)
    expect(cookie.headerFor(request(undefined, false), 'was1')).toBeUndefined()
    expect(cookie.headerFor(request('connect.sid=s%3Aabc', false), 'was1')).toMatch(/^ROUTEID=was1;/)
    // A cookie whose name merely ends in the session cookie's name is not the session cookie.
    expect(cookie.headerFor(request('xconnect.sid=1', false), 'was1')).toBeUndefined()
  })

  test("Apache's format puts a dot before the route, and reads it back without", () => {
    const cookie = resolveRouteCookie({ format: 'dot', name: 'BALANCEID', secure: true, maxAge: 3_600_000, domain: 'example.com', sameSite: 'strict' })
    expect(cookie.header('was1')).toBe('BALANCEID=.was1; Max-Age=3600; Domain=example.com; Path=/; HttpOnly; Secure; SameSite=Strict')
    expect(cookie.read('BALANCEID=.was1')).toBe('was1')
  })

  test.each([
    [{ name: 'bad name' }, 'routeCookie.name'],
    [{ format: 'jk' }, 'routeCookie.format'],
    [{ sameSite: 'sometimes' }, 'routeCookie.sameSite'],
    [{ maxAge: -5 }, 'routeCookie.maxAge'],
  ])('refuses %p', (options, option) => {
    expect(() => resolveRouteCookie(options as never)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_OPTION, option }))
  })
})

describe('static-asset filter', () => {
  const matches = staticMatcher<unknown>(undefined)
  test.each(['/logo.gif', '/js/app.js', '/a.jpeg', '/b.jpg', '/c.png', '/index.htm', '/index.html', '/site.css', '/robots.txt'])(
    'the default (the seed\'s filter) matches %s',
    (path) => expect(matches({}, path)).toBe(true),
  )
  test.each(['/', '/api/users', '/app.json', '/app.js/download', '/scripts'])('the default does not match %s', (path) => {
    expect(matches({}, path)).toBe(false)
  })

  test('matches the path without its query string', () => {
    expect(matches({}, pathOf('/app.js?v=3'))).toBe(true)
    expect(matches({}, pathOf('/api?file=app.js'))).toBe(false)
    expect(DEFAULT_STATIC_FILTER.test('/x.css')).toBe(true)
  })

  test('a global RegExp does not carry state from one request to the next', () => {
    const custom = staticMatcher<unknown>(/\.svg$/g)
    expect([custom({}, '/a.svg'), custom({}, '/a.svg'), custom({}, '/a.svg')]).toEqual([true, true, true])
  })

  test('a function decides from the request; false filters nothing', () => {
    const byHeader = staticMatcher<{ headers: Record<string, string> }>((request) => request.headers.accept === 'image/*')
    expect(byHeader({ headers: { accept: 'image/*' } }, '/x')).toBe(true)
    expect(staticMatcher<unknown>(false)({}, '/app.js')).toBe(false)
    expect(() => staticMatcher<unknown>('*.js' as never)).toThrow(expect.objectContaining({ option: 'staticFilter' }))
  })
})

import { ErrorCodes } from '../../../lib/index.js'
import { resolveRouteCookie } from '../../../lib/http/route-cookie.js'

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
    const cookie = resolveRouteCookie({
      format: 'dot',
      name: 'BALANCEID',
      secure: true,
      maxAge: 3_600_000,
      domain: 'example.com',
      sameSite: 'strict',
    })
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

import { InvalidOptionError } from '../../../lib/base/errors.js'
import { resolveOptions } from '../../../lib/peer-store/options.js'

const base = { nodeId: 'was1', listen: '127.0.3.250:0' }
const resolve = (options: object) => resolveOptions(['127.0.3.251:4000'], { ...base, ...options }).cluster!

describe('maxPendingHandshakesPerHost', () => {
  test('defaults to 4, or to maxPendingHandshakes when that is smaller', () => {
    expect(resolve({}).maxPendingHandshakesPerHost).toBe(4)
    expect(resolve({ maxPendingHandshakes: 2 }).maxPendingHandshakesPerHost).toBe(2)
  })

  test.each([0, 1.5, '4', 33])('%p is refused, naming the option', (value) => {
    expect(() => resolve({ maxPendingHandshakesPerHost: value })).toThrow(
      expect.objectContaining({ option: 'maxPendingHandshakesPerHost' }),
    )
  })

  test('more than maxPendingHandshakes is refused, saying so', () => {
    expect(() => resolve({ maxPendingHandshakes: 8, maxPendingHandshakesPerHost: 9 })).toThrow(InvalidOptionError)
    expect(() => resolve({ maxPendingHandshakes: 8, maxPendingHandshakesPerHost: 9 })).toThrow(/at most maxPendingHandshakes \(8\)/)
  })
})

describe('verifyPeerAddress', () => {
  test('is on by default', () => {
    expect(resolve({}).verifyPeerAddress).toBe(true)
    expect(resolve({ verifyPeerAddress: false }).verifyPeerAddress).toBe(false)
  })

  test('anything but a boolean is refused, naming the option', () => {
    expect(() => resolve({ verifyPeerAddress: 'no' })).toThrow(expect.objectContaining({ option: 'verifyPeerAddress' }))
  })
})

describe('tls.identity', () => {
  const tls = { ca: 'ca', cert: 'cert', key: 'key' }

  test("defaults to 'cn-or-dns'; { uriPrefix } is kept as given", () => {
    expect(resolve({ tls }).tls!.identity).toBe('cn-or-dns')
    expect(resolve({ tls: { ...tls, identity: 'cn-or-dns' } }).tls!.identity).toBe('cn-or-dns')
    expect(resolve({ tls: { ...tls, identity: { uriPrefix: 'spiffe://cluster/' } } }).tls!.identity).toEqual({
      uriPrefix: 'spiffe://cluster/',
    })
    expect(resolve({ tls: { ...tls, identity: { uriPrefix: 'urn:example:nodes:' } } }).tls!.identity).toEqual({
      uriPrefix: 'urn:example:nodes:',
    })
  })

  test.each([
    ['cn', 'tls.identity'],
    [['cn-or-dns'], 'tls.identity'],
    [{ uriPrefix: 'spiffe://cluster/', extra: 1 }, 'tls.identity'],
    [{ prefix: 'spiffe://cluster/' }, 'tls.identity'],
    [{ uriPrefix: '' }, 'tls.identity.uriPrefix'],
    [{ uriPrefix: 'cluster/' }, 'tls.identity.uriPrefix'],
    [{ uriPrefix: 'spiffe://cluster' }, 'tls.identity.uriPrefix'],
    [{ uriPrefix: 'spiffe://clu ster/' }, 'tls.identity.uriPrefix'],
    [{ uriPrefix: 'spiffe://a,b/' }, 'tls.identity.uriPrefix'],
    [{ uriPrefix: 42 }, 'tls.identity.uriPrefix'],
  ])('%p is refused, naming %s', (identity, option) => {
    expect(() => resolve({ tls: { ...tls, identity } })).toThrow(expect.objectContaining({ option }))
  })

  test('an unknown field in tls is refused, so a typo cannot leave the weaker binding on', () => {
    expect(() => resolve({ tls: { ...tls, identiy: { uriPrefix: 'spiffe://cluster/' } } })).toThrow(
      expect.objectContaining({ option: 'tls.identiy' }),
    )
  })
})

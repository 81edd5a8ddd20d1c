import { createSessionId, routeOf } from '../../../lib/table/session-id.js'

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

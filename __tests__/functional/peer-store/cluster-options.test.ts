import { InvalidOptionError, PeerStore } from '../../../lib/index.js'

// The one test of the constructor's option checks that needs a socket: a valid store listens where
// an invalid one was refused. The other option checks are in unit/peer-store/peer-store.test.ts.
describe('cluster options', () => {
  const base = { nodeId: 'was1', listen: '127.0.0.61:4070' }
  test('nothing is opened when an option is invalid: the port stays free', async () => {
    expect(() => new PeerStore(['127.0.0.62:4070'], { ...base, sendMode: 'fast' as never })).toThrow(InvalidOptionError)
    const valid = new PeerStore(['127.0.0.62:4070'], { ...base, retry: () => 60_000 })
    try {
      await expect(valid.ready()).resolves.toBeUndefined()
      expect(valid.port).toBe(4070)
    } finally {
      await valid.close()
    }
  })
})

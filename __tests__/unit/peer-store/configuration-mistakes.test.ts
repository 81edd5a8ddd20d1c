import { InvalidOptionError } from '../../../lib/base/errors.js'
import { resolveOptions } from '../../../lib/peer-store/options.js'

// The configuration mistakes a newcomer made (issue 14), each refused or understood at construction.

const BASE = { nodeId: 'was1', listen: '127.0.3.240:4055' }

function refusal(peers: readonly unknown[], options: Record<string, unknown>): InvalidOptionError {
  try {
    resolveOptions(peers as never, options)
  } catch (error) {
    if (error instanceof InvalidOptionError) return error
    throw error
  }
  throw new Error('the options were accepted')
}

describe("the 'nodeId@host:port' peer form (the demo's own PEERS format)", () => {
  test('names the peer and its address', () => {
    const { cluster } = resolveOptions(['was2@127.0.3.241:4055', '[::1]:4056'], BASE)
    expect(cluster!.peers).toEqual([
      { host: '127.0.3.241', port: 4055, nodeId: 'was2' },
      { host: '::1', port: 4056, nodeId: undefined },
    ])
  })

  test('is checked like a peer object: its node id may not be this node', () => {
    expect(refusal(['was1@127.0.3.241:4055'], BASE).option).toBe('peers[0].nodeId')
  })

  test('a bad node id before @ is refused as a node id, not as a host name', () => {
    const error = refusal(['was.2@127.0.3.241:4055'], BASE)
    expect(error.option).toBe('peers[0] (the node id before @)')
    expect(error.message).toContain('letters, digits')
    expect(error.message).not.toMatch(/loopback|host/)
  })

  test('a peer that is neither form says how to write one', () => {
    expect(refusal(['127.0.3.241'], BASE).message).toContain("'nodeId@host:port'")
  })
})

describe('unknown names are refused, with the closest known one', () => {
  test.each([
    ['a misspelt option', [], { tll: 5 }, 'tll', 'did you mean `ttl` or `tls`?'],
    ['a misspelt option', [], { tombstoneTTL: 5 }, 'tombstoneTTL', 'did you mean `tombstoneTtl`?'],
    ['a misspelt option', [], { maxSessionsBytes: 5 }, 'maxSessionsBytes', 'did you mean `maxSessionBytes`?'],
    ['a misspelt option of the cluster', ['127.0.3.241:4055'], { ...BASE, nodeid: 'x' }, 'nodeid', 'did you mean `nodeId`?'],
    [
      'a misspelt key in a peer object',
      [{ host: '127.0.3.241', port: 4055, nodeid: 'was2' }],
      BASE,
      'peers[0].nodeid',
      'did you mean `nodeId`?',
    ],
    [
      'a misspelt key in the listen object',
      ['127.0.3.241:4055'],
      { ...BASE, listen: { host: '127.0.3.240', port: 4055, autobind: 3 } },
      'listen.autobind',
      'did you mean `autoBind`?',
    ],
  ])('%s', (_, peers, options, option, suggestion) => {
    const error = refusal(peers, options)
    expect(error.option).toBe(option)
    expect(error.message).toContain(suggestion)
  })

  test('a name nothing resembles lists the known ones instead', () => {
    const error = refusal([{ host: '127.0.3.241', port: 4055, weight: 2 }], BASE)
    expect(error.option).toBe('peers[0].weight')
    expect(error.message).toContain('one of host, port, nodeId')
  })
})

describe('every option is validated whatever the mode', () => {
  test.each([
    ['sendMode', { sendMode: 'Async' }],
    ['ackTimeout', { ackTimeout: -1 }],
    ['heartbeatInterval', { heartbeatInterval: 'often' }],
    ['listen', { listen: 'nowhere' }],
    ['secret', { secret: 'short' }],
  ])('%s is checked on a store without peers', (option, options) => {
    expect(refusal([], options).option).toBe(option)
  })
})

describe('the route a store gives its session ids', () => {
  test('a plain store without a node id routes nowhere (MemoryStore-like ids)', () => {
    expect(resolveOptions([], {}).routed).toBe(false)
  })

  test('a node id, even without peers, routes to it', () => {
    expect(resolveOptions([], { nodeId: 'was1' }).routed).toBe(true)
  })

  test('a Redis tier needs a node id: it tells the nodes on one Redis apart', () => {
    expect(refusal([], { redis: 'redis://127.0.0.1:6379' }).option).toBe('nodeId')
  })
})

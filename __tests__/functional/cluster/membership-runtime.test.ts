import {
  DiscoveryError,
  ErrorCodes,
  HandshakeRefusals,
  HandshakeRefusedError,
  InvalidArgumentError,
  InvalidOptionError,
  PeerStore,
  StoreClosedError,
  type PeerSpec,
  type PeerStoreEvents,
  type PeerStoreOptions,
} from '../../../lib/index.js'
import { DnsServer } from '../../helpers/dns-server.js'
import { storesClosedAfterEach } from '../../helpers/stores.js'
import { FAST, session } from '../../helpers/sessions.js'

// Loopback addresses 127.0.9.1 to 127.0.9.60 are this file's alone.
const PORT = 4055

const open = storesClosedAfterEach(FAST)

/** A node of this file: `was<n>` at 127.0.9.<n>. */
function node(n: number, peers: ConstructorParameters<typeof PeerStore>[0] = [], options: PeerStoreOptions = {}): PeerStore {
  return open(peers, { nodeId: `was${n}`, listen: `127.0.9.${n}:${PORT}`, ...options })
}

function nextEvent<E extends keyof PeerStoreEvents>(
  store: PeerStore,
  event: E,
  match: (...args: PeerStoreEvents[E]) => boolean = () => true,
): Promise<PeerStoreEvents[E]> {
  return new Promise((resolve) => {
    const listener = (...args: PeerStoreEvents[E]) => {
      if (!match(...args)) return
      store.off(event, listener)
      resolve(args)
    }
    store.on(event, listener)
  })
}

const syncWith = (store: PeerStore, peer: string) => nextEvent(store, 'sync', (event) => event.peer === peer)
const addresses = (store: PeerStore) => store.members().map((member) => member.address)

describe('addPeer', () => {
  test('two running stores become peers: state transfer both ways, then changes flow both ways', async () => {
    const a = node(1)
    const b = node(2)
    await Promise.all([a.ready(), b.ready()])
    await a.set('made-on-a', session({ on: 'a' }))
    await b.set('made-on-b', session({ on: 'b' }))
    expect(a.members()).toEqual([])

    const added = nextEvent(a, 'peer:added')
    const synced = [syncWith(a, 'was2'), syncWith(b, 'was1')]
    a.addPeer('was2@127.0.9.2:4055')
    b.addPeer({ host: '127.0.9.1', port: PORT, nodeId: 'was1' })
    const [member] = await added
    expect(member).toMatchObject({ nodeId: 'was2', address: '127.0.9.2:4055', state: 'connecting' })
    await Promise.all(synced)

    // Transferred into each node's own memory, not fetched on a miss.
    expect(await b.ids()).toEqual(expect.arrayContaining(['made-on-a', 'made-on-b']))
    expect(await a.ids()).toEqual(expect.arrayContaining(['made-on-a', 'made-on-b']))
    expect(b.stats().syncing).toBe(false)
    expect(await b.get('made-on-a')).toMatchObject({ on: 'a' })
    expect(a.members()).toEqual([expect.objectContaining({ nodeId: 'was2', state: 'alive' })])

    const toB = nextEvent(b, 'session:replicated', (event) => event.sid === 'after-on-a')
    await a.set('after-on-a', session({ n: 1 }))
    await toB
    const toA = nextEvent(a, 'session:replicated', (event) => event.sid === 'after-on-b')
    await b.set('after-on-b', session({ n: 2 }))
    await toA
    expect(await a.get('after-on-b')).toMatchObject({ n: 2 })
  })

  test('a peer added by address learns its node id in the handshake', async () => {
    const a = node(3)
    const b = node(4)
    await Promise.all([a.ready(), b.ready()])
    const synced = [syncWith(a, 'was4'), syncWith(b, 'was3')]
    a.addPeer('127.0.9.4:4055')
    b.addPeer('127.0.9.3:4055')
    await Promise.all(synced)
    expect(a.members()).toEqual([expect.objectContaining({ nodeId: 'was4', address: '127.0.9.4:4055', state: 'alive' })])
  })

  test('refused with a clear error: a bad spec, this node, a duplicate, a non-loopback peer without a secret, a store without peers, after close()', async () => {
    const a = node(5, ['was6@127.0.9.6:4055'])
    await a.ready()
    const invalid = (spec: unknown, message: RegExp) =>
      expect(() => a.addPeer(spec as PeerSpec)).toThrow(
        expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT, message: expect.stringMatching(message) }),
      )
    invalid('nonsense', /Invalid peer: expected 'host:port'/)
    invalid({ host: '127.0.9.7', port: 70_000 }, /peer\.port: expected a port number from 1 to 65535, received number 70000/)
    invalid({ host: '127.0.9.7', port: PORT, node: 'was7' }, /peer\.node: expected a field of `peer`/)
    invalid(42, /received number 42/)
    invalid('127.0.9.6:4055', /a peer not already in members\(\) \(was6 is at 127\.0\.9\.6:4055\)/)
    invalid('was6@127.0.9.8:4055', /a peer not already in members\(\)/)
    invalid('was5@127.0.9.8:4055', /a peer other than this node/)
    invalid('127.0.9.5:4055', /a peer other than this node/)
    expect(() => a.addPeer('peer.invalid:4055')).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_OPTION, option: 'secret' }))
    expect(() => a.addPeer('nonsense')).toThrow(InvalidArgumentError)
    expect(addresses(a)).toEqual(['127.0.9.6:4055'])

    await expect(a.removePeer('was9')).rejects.toThrow(
      /Invalid peer to remove: expected the node id or address of one of this node's peers \(was6\)/,
    )
    await expect(a.removePeer(7 as unknown as string)).rejects.toBeInstanceOf(InvalidArgumentError)

    const plain = open([], {})
    expect(() => plain.addPeer('127.0.9.6:4055')).toThrow(InvalidOptionError)
    expect(() => plain.addPeer('127.0.9.6:4055')).toThrow(/addPeer\(\) changes the peers of a store that replicates to peers/)
    await expect(plain.removePeer('was6')).rejects.toMatchObject({ code: ErrorCodes.INVALID_OPTION, option: 'listen' })

    await a.close()
    expect(() => a.addPeer('127.0.9.7:4055')).toThrow(StoreClosedError)
    await expect(a.removePeer('was6')).rejects.toBeInstanceOf(StoreClosedError)
  })

  test('a secret is never echoed in an addPeer error', async () => {
    const secret = 'a-very-secret-cluster-key-0123456789'
    const a = node(9, [], { secret })
    await a.ready()
    // The options object passed by mistake, or a secret beside the peer's fields: named, never shown.
    for (const spec of [
      { nodeId: 'was9', listen: '127.0.9.9:4055', secret },
      { host: '127.0.9.10', port: PORT, secret },
    ]) {
      let error: unknown
      try {
        a.addPeer(spec as unknown as PeerSpec)
      } catch (caught) {
        error = caught
      }
      expect(error).toBeInstanceOf(InvalidArgumentError)
      expect(String((error as Error).message)).not.toContain(secret)
    }
  })
})

describe('removePeer', () => {
  test('the removed peer is said goodbye to, sees this node leave, is refused when it dials again, and nothing flows any more', async () => {
    const a = node(11, ['was12@127.0.9.12:4055'], { sendMode: 'sync' })
    const b = node(12, ['was11@127.0.9.11:4055'], { sendMode: 'sync' })
    await Promise.all([syncWith(a, 'was12'), syncWith(b, 'was11')])
    await a.set('before', session({ n: 1 }))
    expect(await b.get('before')).toMatchObject({ n: 1 })
    // Let the connection outlive suspectTimeout (300 ms): a connection that closes before that counts as a
    // failed attempt and goes straight to dead, so only the goodbye can explain a dead with no suspect first.
    const since = b.members()[0]!.since.getTime()
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, since + 400 - Date.now())))

    const states: string[] = []
    b.on('peer:state', (member) => states.push(member.state))
    const down = nextEvent(b, 'peer:down')
    const refused = nextEvent(
      b,
      'peer:error',
      (error) => error instanceof HandshakeRefusedError && error.reason === HandshakeRefusals.UNKNOWN_NODE,
    )
    const removed = nextEvent(a, 'peer:removed')
    const goodbye = a.removePeer('was12')
    expect(a.members()).toEqual([])
    const [member] = await removed
    expect(member).toMatchObject({ nodeId: 'was12', address: '127.0.9.12:4055', state: 'alive' })
    await goodbye
    const [left] = await down
    expect(left).toMatchObject({ nodeId: 'was11', state: 'dead' })
    expect(states[0]).toBe('dead') // no suspect phase: the goodbye said it all
    await refused
    expect(a.stats().refusedHandshakes).toBeGreaterThanOrEqual(1)

    // In sync mode a write waits for every reachable peer: had was12 stayed one, it would have the session now.
    await a.set('after', session({ n: 2 }))
    expect(await b.get('after')).toBeNull()
    await b.set('from-b', session({ n: 3 }))
    expect(await a.get('from-b')).toBeNull()
    // Never let in again: its one connection is the one it had before the removal.
    expect(b.members()).toEqual([expect.objectContaining({ nodeId: 'was11', state: 'dead', connections: 1 })])
    expect(a.members()).toEqual([])
  }, 20_000)

  test('a peer removed by address, then added again: it is let in again and gets what it missed', async () => {
    const a = node(13, ['127.0.9.14:4055'])
    const b = node(14, ['127.0.9.13:4055'])
    await Promise.all([syncWith(a, 'was14'), syncWith(b, 'was13')])
    const down = nextEvent(b, 'peer:down')
    await a.removePeer('127.0.9.14:4055')
    await down
    await a.set('missed', session({ n: 1 }))
    const back = [syncWith(a, 'was14'), syncWith(b, 'was13')]
    a.addPeer('127.0.9.14:4055')
    await Promise.all(back)
    expect(await b.ids()).toContain('missed')
  }, 20_000)
})

describe('peers from a function', () => {
  test('called at start (ready() waits for it) and every interval; the difference is applied, this node left out, failures reported', async () => {
    const all = ['127.0.9.21:4055', '127.0.9.22:4055']
    let listed: string[] | Error = all
    const list = () => {
      if (listed instanceof Error) throw listed
      return listed
    }
    const a = node(21, { resolve: list, interval: 50 })
    const b = node(22, () => Promise.resolve(all)) // a promise of them, too
    await a.ready()
    expect(addresses(a)).toEqual(['127.0.9.22:4055']) // itself left out
    await Promise.all([syncWith(a, 'was22'), syncWith(b, 'was21')])
    const shared = nextEvent(b, 'session:replicated', (event) => event.sid === 'shared')
    await a.set('shared', session({ n: 1 }))
    await shared

    listed = new Error('inventory service down')
    const [failure] = await nextEvent(a, 'discovery:error')
    expect(failure).toBeInstanceOf(DiscoveryError)
    expect(failure).toMatchObject({ code: ErrorCodes.DISCOVERY, source: 'the peers function' })
    expect(failure.message).toContain('inventory service down')
    expect(addresses(a)).toEqual(['127.0.9.22:4055'])

    const removed = nextEvent(a, 'peer:removed')
    const down = nextEvent(b, 'peer:down')
    listed = ['127.0.9.21:4055']
    expect((await removed)[0]).toMatchObject({ nodeId: 'was22' })
    await down
    expect(a.members()).toEqual([])

    const back = [syncWith(a, 'was22'), syncWith(b, 'was21')]
    listed = all
    await Promise.all(back)
    expect(a.members()).toEqual([expect.objectContaining({ nodeId: 'was22', state: 'alive' })])

    listed = ['nonsense']
    const [bad] = await nextEvent(a, 'discovery:error')
    expect(bad.message).toMatch(/peers\(\)\[0\]/)
    expect(addresses(a)).toEqual(['127.0.9.22:4055'])
  }, 20_000)

  test('a peer added by hand is not removed by discovery; one removed by hand comes back at the next round', async () => {
    const a = node(23, { resolve: () => ['127.0.9.24:4055'], interval: 50 })
    const b = node(24, ['127.0.9.23:4055'])
    const c = node(25, ['127.0.9.23:4055'])
    await Promise.all([syncWith(a, 'was24'), b.ready(), c.ready()])
    a.addPeer('127.0.9.25:4055')
    await syncWith(a, 'was25')
    const readded = nextEvent(a, 'peer:added', (member) => member.address === '127.0.9.24:4055')
    const goodbye = a.removePeer('was24')
    expect(addresses(a)).toEqual(['127.0.9.25:4055'])
    await goodbye
    await readded
    await syncWith(a, 'was24')
    expect(addresses(a).sort()).toEqual(['127.0.9.24:4055', '127.0.9.25:4055'])
  }, 20_000)
  test('a function whose promise never settles: the round is given up at its deadline and reported, ready() resolves, the next round runs', async () => {
    let answer: () => Promise<string[]> = () => new Promise(() => {}) // never settles
    const a = node(26, { resolve: () => answer(), interval: 50 })
    const failed = nextEvent(a, 'discovery:error')
    await a.ready()
    const [failure] = await failed
    expect(failure).toBeInstanceOf(DiscoveryError)
    expect(failure.message).toBe('Peer discovery (the peers function) failed: no answer within 1000 ms; the current peers are kept.')
    expect(a.members()).toEqual([])

    const added = nextEvent(a, 'peer:added')
    answer = () => Promise.resolve(['127.0.9.27:4055'])
    expect((await added)[0]).toMatchObject({ address: '127.0.9.27:4055' })
  }, 10_000)

  test('a list of no peers fails the round and keeps the peers', async () => {
    let listed: string[] = ['127.0.9.29:4055']
    const a = node(28, { resolve: () => listed, interval: 50 })
    await a.ready()
    expect(addresses(a)).toEqual(['127.0.9.29:4055'])
    listed = []
    const [empty] = await nextEvent(a, 'discovery:error')
    expect(empty.message).toBe('Peer discovery (the peers function) failed: no peers found; the current peers are kept.')
    expect(addresses(a)).toEqual(['127.0.9.29:4055'])
  }, 20_000)

  test('a list of more than 256 peers fails the round and keeps the peers; 256 are taken', async () => {
    const many = (count: number) => Array.from({ length: count }, (_, index) => `127.0.10.${index % 250}:${4000 + index}`)
    let listed: string[] = ['127.0.9.29:4055']
    const a = node(30, { resolve: () => listed, interval: 50 })
    await a.ready()
    listed = many(300)
    const [tooMany] = await nextEvent(a, 'discovery:error')
    expect(tooMany.message).toBe(
      'Peer discovery (the peers function) failed: peers(): 300 entries, more than 256; the current peers are kept.',
    )
    expect(addresses(a)).toEqual(['127.0.9.29:4055'])

    const removed = nextEvent(a, 'peer:removed', (member) => member.address === '127.0.9.29:4055')
    listed = many(256)
    await removed
    expect(a.members()).toHaveLength(256)
  }, 20_000)
})

describe('peers from DNS', () => {
  let dns: DnsServer
  beforeEach(async () => {
    dns = await DnsServer.start('127.0.9.50')
  })
  afterEach(async () => {
    await dns.close()
  })

  test('A records: nodes find each other, a record added is a peer added, a record removed a peer removed', async () => {
    dns.set('app-peers.test', { a: ['127.0.9.31', '127.0.9.32'] })
    const peers = { dns: 'app-peers.test', interval: 50, servers: [dns.address] }
    const a = node(31, peers)
    const b = node(32, peers)
    await Promise.all([syncWith(a, 'was32'), syncWith(b, 'was31')])
    expect(addresses(a)).toEqual(['127.0.9.32:4055'])
    expect(dns.questions).toEqual(expect.arrayContaining(['app-peers.test/1', 'app-peers.test/28']))
    await a.set('before-c', session({ n: 1 }))

    const c = node(33, peers)
    const added = [a, b].map((store) => nextEvent(store, 'peer:added', (member) => member.address === '127.0.9.33:4055'))
    const cSynced = [syncWith(c, 'was31'), syncWith(c, 'was32')]
    dns.set('app-peers.test', { a: ['127.0.9.31', '127.0.9.32', '127.0.9.33'] })
    await Promise.all([...added, ...cSynced])
    expect(await c.ids()).toContain('before-c')
    const toC = nextEvent(c, 'session:replicated', (event) => event.sid === 'after-c')
    await b.set('after-c', session({ n: 2 }))
    await toC

    const removed = [a, b].map((store) => nextEvent(store, 'peer:removed', (member) => member.address === '127.0.9.33:4055'))
    dns.set('app-peers.test', { a: ['127.0.9.31', '127.0.9.32'] })
    for (const [gone] of await Promise.all(removed)) expect(gone).toMatchObject({ nodeId: 'was33' })
    expect(addresses(a)).toEqual(['127.0.9.32:4055'])
    expect(addresses(b)).toEqual(['127.0.9.31:4055'])
  }, 30_000)

  test('SRV records give targets and ports; a name that no longer resolves keeps the peers and is reported', async () => {
    dns.set('_cp._tcp.test', {
      srv: [
        { target: 'n41.test', port: 4061 },
        { target: 'n42.test', port: 4062 },
      ],
    })
    dns.set('n41.test', { a: ['127.0.9.41'] })
    dns.set('n42.test', { a: ['127.0.9.42'] })
    const peers = { dns: '_cp._tcp.test', srv: true, interval: 50, servers: [dns.address] }
    const a = open(peers, { nodeId: 'was41', listen: '127.0.9.41:4061' })
    const b = open(peers, { nodeId: 'was42', listen: '127.0.9.42:4062' })
    await Promise.all([syncWith(a, 'was42'), syncWith(b, 'was41')])
    expect(a.members()).toEqual([expect.objectContaining({ nodeId: 'was42', address: '127.0.9.42:4062' })])

    b.on('discovery:error', () => {}) // heard: not a process warning
    dns.delete('_cp._tcp.test')
    const [failure] = await nextEvent(a, 'discovery:error')
    expect(failure).toMatchObject({
      code: ErrorCodes.DISCOVERY,
      source: 'dns srv _cp._tcp.test',
      cause: expect.objectContaining({ code: 'ENOTFOUND' }),
    })
    expect(a.members()).toEqual([expect.objectContaining({ nodeId: 'was42', state: 'alive' })])
  }, 30_000)

  test('close() stops asking: no question after it', async () => {
    dns.set('app-peers.test', { a: ['127.0.9.35'] })
    const a = node(35, { dns: 'app-peers.test', interval: 20, servers: [dns.address] })
    await a.ready()
    await dns.questionsAtLeast(6) // a few rounds have run
    await a.close()
    const asked = dns.questions.length
    await new Promise((resolve) => setTimeout(resolve, 200)) // ten intervals: a live timer would have asked again
    expect(dns.questions.length).toBe(asked)
  })

  test('an answer with no records fails the round and keeps the peers', async () => {
    dns.set('app-peers.test', { a: ['127.0.9.37', '127.0.9.38'] })
    const a = node(37, { dns: 'app-peers.test', interval: 50, servers: [dns.address] })
    await a.ready()
    expect(addresses(a)).toEqual(['127.0.9.38:4055'])
    dns.set('app-peers.test', {}) // the name exists, with no A and no AAAA record: a successful empty answer
    const [empty] = await nextEvent(a, 'discovery:error')
    expect(empty.message).toBe('Peer discovery (dns app-peers.test) failed: no peers found; the current peers are kept.')
    expect(addresses(a)).toEqual(['127.0.9.38:4055'])
  }, 20_000)

  test('SRV: a "." target is skipped, a record with port 0 fails the round (the peers are kept)', async () => {
    dns.set('_cp._tcp.test', {
      srv: [
        { target: '.', port: 0 },
        { target: 'n43.test', port: 4063 },
      ],
    })
    dns.set('n43.test', { a: ['127.0.9.43'] })
    dns.set('n45.test', { a: ['127.0.9.45'] })
    const a = open(
      { dns: '_cp._tcp.test', srv: true, interval: 50, servers: [dns.address] },
      { nodeId: 'was44', listen: '127.0.9.44:4064' },
    )
    await a.ready()
    expect(addresses(a)).toEqual(['127.0.9.43:4063'])

    dns.set('_cp._tcp.test', {
      srv: [
        { target: 'n43.test', port: 0 },
        { target: 'n45.test', port: 4065 },
      ],
    })
    const [failure] = await nextEvent(a, 'discovery:error')
    expect(failure.message).toBe(
      'Peer discovery (dns srv _cp._tcp.test) failed: Invalid option `dns srv _cp._tcp.test[0].port`: expected a port number from 1 to 65535, received number 0; the current peers are kept.',
    )
    expect(addresses(a)).toEqual(['127.0.9.43:4063'])

    dns.set('_none._tcp.test', { srv: [{ target: '.', port: 0 }] }) // "service not available" only: no peers
    const b = open(
      { dns: '_none._tcp.test', srv: true, interval: 50, servers: [dns.address] },
      { nodeId: 'was39', listen: '127.0.9.39:4055' },
    )
    const [none] = await nextEvent(b, 'discovery:error')
    expect(none.message).toBe('Peer discovery (dns srv _none._tcp.test) failed: no peers found; the current peers are kept.')
  }, 20_000)

  test('SRV targets are resolved 8 at a time; a server that never answers ends the round at its deadline', async () => {
    const targets = Array.from({ length: 12 }, (_, index) => `t${index}.test`)
    dns.set('_cp._tcp.test', { srv: targets.map((target) => ({ target, port: 4066 })) })
    for (const target of targets) dns.ignore(target)
    const a = open(
      { dns: '_cp._tcp.test', srv: true, interval: 50, servers: [dns.address] },
      { nodeId: 'was46', listen: '127.0.9.46:4066' },
    )
    const failed = nextEvent(a, 'discovery:error')
    await a.ready()
    const [failure] = await failed
    expect(failure.message).toBe('Peer discovery (dns srv _cp._tcp.test) failed: no answer within 1000 ms; the current peers are kept.')
    const asked = new Set(dns.questions.map((question) => question.split('/')[0]).filter((name) => name !== '_cp._tcp.test'))
    expect(asked.size).toBe(8)
    expect(a.members()).toEqual([])
  }, 20_000)

  test('a wrong peers source is an InvalidOptionError at construction', () => {
    const listen = { nodeId: 'was36', listen: '127.0.9.36:4055' }
    expect(() => new PeerStore({ dns: 'x.test', srv: true, port: 4055 }, listen)).toThrow(/peers\.port/)
    expect(() => new PeerStore({ dns: '', port: 4055 }, listen)).toThrow(/peers\.dns/)
    expect(() => new PeerStore({ dns: 'x.test', servers: ['not an address'] }, listen)).toThrow(/peers\.servers/)
    expect(() => new PeerStore({ dns: 'x.test', intervall: 5 } as never, listen)).toThrow(/did you mean `interval`/)
    expect(() => new PeerStore({ resolve: 'x' } as never, listen)).toThrow(/peers\.resolve/)
    expect(() => new PeerStore({ dns: 'x.test' }, { nodeId: 'was36' })).toThrow(expect.objectContaining({ option: 'listen' }))
  })
})

import { readFileSync } from 'node:fs'
import path from 'node:path'
import { HandshakeRefusals, PeerStore, type PeerStoreOptions } from '../../../lib/index.js'
import { FIXTURES } from '../../helpers/child.js'
import { FaultProxy } from '../../helpers/fault-proxy.js'
import { FAST, session } from '../../helpers/sessions.js'

const TLS = path.join(FIXTURES, 'tls')
const pem = (name: string) => readFileSync(path.join(TLS, name))
const tlsFor = (name: string, ca = 'cluster-ca.crt') => ({ ca: pem(ca), cert: pem(`${name}.crt`), key: pem(`${name}.key`) })
const TIMING = { ...FAST, handshakeTimeout: 1000 }

const stores: PeerStore[] = []
afterEach(async () => {
  await Promise.all(stores.splice(0).map((store) => store.close()))
})

function open(nodeId: string, host: string, port: number, peer: { host: string; nodeId: string }, options: PeerStoreOptions): PeerStore {
  const store = new PeerStore([{ host: peer.host, port, nodeId: peer.nodeId }], {
    ...TIMING,
    nodeId,
    listen: `${host}:${port}`,
    ...options,
  })
  stores.push(store)
  return store
}

function next(store: PeerStore, event: 'sync' | 'peer:error'): Promise<unknown[]> {
  return new Promise((resolve) => store.once(event as 'sync', (...args: unknown[]) => resolve(args)))
}

test('two nodes with certificates from the cluster CA replicate over mutual TLS', async () => {
  const was1 = open('was1', '127.0.0.91', 4120, { host: '127.0.0.92', nodeId: 'was2' }, { tls: tlsFor('was1'), sendMode: 'sync' })
  const was2 = open('was2', '127.0.0.92', 4120, { host: '127.0.0.91', nodeId: 'was1' }, { tls: tlsFor('was2') })
  await Promise.all([next(was1, 'sync'), next(was2, 'sync')])
  await was1.set('over-tls', session({ n: 1 }))
  expect(await was2.get('over-tls')).toMatchObject({ n: 1 })
})

test('mutual TLS and a secret together: both must match', async () => {
  const secret = 'defence in depth secret 1234'
  const was1 = open('was1', '127.0.0.91', 4121, { host: '127.0.0.92', nodeId: 'was2' }, { tls: tlsFor('was1'), secret, sendMode: 'sync' })
  const was2 = open('was2', '127.0.0.92', 4121, { host: '127.0.0.91', nodeId: 'was1' }, { tls: tlsFor('was2'), secret })
  await Promise.all([next(was1, 'sync'), next(was2, 'sync')])
  await was1.set('both', session({ n: 1 }))
  expect(await was2.get('both')).toMatchObject({ n: 1 })
})

test('a node whose certificate comes from another CA is refused, and nothing replicates', async () => {
  const was1 = open('was1', '127.0.0.91', 4122, { host: '127.0.0.92', nodeId: 'was2' }, { tls: tlsFor('was1'), retry: () => 60_000 })
  const rogue = open(
    'was2',
    '127.0.0.92',
    4122,
    { host: '127.0.0.91', nodeId: 'was1' },
    { tls: { ...tlsFor('rogue-was2'), ca: pem('other-ca.crt') }, retry: () => 60_000 },
  )
  const errors: string[] = []
  was1.on('peer:error', (error) => errors.push(error.message))
  await Promise.all([next(was1, 'peer:error'), rogue.ready()])
  await rogue.set('injected', session({ admin: true }))
  expect(errors.join('\n')).toMatch(/TLS/)
  expect(was1.members()[0]!.state).not.toBe('alive')
  expect(await was1.get('injected')).toBeNull()
})

test("a certificate from the right CA that names another node is refused: the node id must be the certificate's", async () => {
  const was1 = open('was1', '127.0.0.91', 4123, { host: '127.0.0.92', nodeId: 'was2' }, { tls: tlsFor('was1'), retry: () => 60_000 })
  // was3's certificate, used by a process that claims to be was2.
  open('was2', '127.0.0.92', 4123, { host: '127.0.0.91', nodeId: 'was1' }, { tls: tlsFor('was3'), retry: () => 60_000 })
  const [error] = (await next(was1, 'peer:error')) as [{ reason: string; message: string }]
  expect(error.reason).toBe(HandshakeRefusals.AUTH)
  expect(error.message).toMatch(/was3/)
})

test('closing a node connected over mutual TLS sends its goodbye and returns at once, not after closeTimeout', async () => {
  // Long idle cut (deadTimeout) and closeTimeout, so neither can end the wait in place of the flush.
  const slow = { closeTimeout: 10_000, deadTimeout: 20_000 }
  const was1 = open('was1', '127.0.3.31', 4320, { host: '127.0.3.32', nodeId: 'was2' }, { tls: tlsFor('was1'), ...slow })
  const was2 = open('was2', '127.0.3.32', 4320, { host: '127.0.3.31', nodeId: 'was1' }, { tls: tlsFor('was2'), ...slow })
  await Promise.all([next(was1, 'sync'), next(was2, 'sync')])
  const left = new Promise((resolve) => was2.once('peer:down', resolve))
  const startedAt = Date.now()
  await was1.close()
  expect(Date.now() - startedAt).toBeLessThan(2000)
  await left
})

test('over mutual TLS, a stalled peer overflows its queue and is resynchronised once it reads again', async () => {
  const proxy = await FaultProxy.start({ host: '127.0.3.34', port: 5321 }, { host: '127.0.3.34', port: 4321 })
  try {
    const limits = { maxSessionBytes: 8192, maxFrameBytes: 80_000, maxQueueBytes: 200_000, deadTimeout: 60_000, suspectTimeout: 30_000 }
    // was1 reaches was2 through the proxy (which the test can pause); was2 dials was1 directly.
    const through = new PeerStore([{ host: '127.0.3.34', port: 5321, nodeId: 'was2' }], {
      ...TIMING,
      nodeId: 'was1',
      listen: '127.0.3.33:4321',
      tls: tlsFor('was1'),
      ...limits,
    })
    stores.push(through)
    const was2 = open('was2', '127.0.3.34', 4321, { host: '127.0.3.33', nodeId: 'was1' }, { tls: tlsFor('was2'), ...limits })
    await Promise.all([next(through, 'sync'), next(was2, 'sync')])
    proxy.pause()
    for (let i = 0; i < 600; i++) await through.set(`flood-${i}`, session({ i, pad: 'p'.repeat(4000) }))
    expect(through.stats().queueOverflows).toBeGreaterThanOrEqual(1)
    const caughtUp = new Promise<void>((resolve) => {
      const check = () => {
        if (was2.stats().sessions !== 600) return
        was2.off('session:replicated', check)
        resolve()
      }
      was2.on('session:replicated', check)
    })
    proxy.resume()
    await caughtUp
    expect(await was2.get('flood-599')).toMatchObject({ i: 599 })
  } finally {
    await proxy.close()
  }
}, 60_000)

/** Whether `store` first refuses its peer or synchronises with it. */
function firstOutcome(store: PeerStore): Promise<'refused' | 'synced'> {
  return Promise.race([next(store, 'peer:error').then(() => 'refused' as const), next(store, 'sync').then(() => 'synced' as const)])
}

test('a certificate from the cluster CA whose SANs only look like was2\'s (DNS:was2:x, DNS:"a, DNS:was2") cannot pass as was2', async () => {
  const was1 = open('was1', '127.0.3.35', 4322, { host: '127.0.3.36', nodeId: 'was2' }, { tls: tlsFor('was1'), retry: () => 60_000 })
  const errors: Array<{ reason?: string; message: string }> = []
  was1.on('peer:error', (error) => errors.push(error as { reason?: string; message: string }))
  const outcome = firstOutcome(was1)
  const impostor = open(
    'was2',
    '127.0.3.36',
    4322,
    { host: '127.0.3.35', nodeId: 'was1' },
    { tls: tlsFor('tricky-was3'), retry: () => 60_000 },
  )
  expect(await outcome).toBe('refused')
  expect(errors[0]).toMatchObject({ reason: HandshakeRefusals.AUTH, message: expect.stringContaining('was2:x') })
  await impostor.set('injected', session({ admin: true }))
  expect(was1.members()[0]!.state).not.toBe('alive')
  expect(await was1.get('injected')).toBeNull()
})

describe("tls.identity { uriPrefix }: a URI SAN '<prefix><nodeId>' names the node", () => {
  const identity = { uriPrefix: 'spiffe://cluster/' }

  test('nodes whose certificates name them only by URI replicate', async () => {
    const was1 = open(
      'was1',
      '127.0.3.37',
      4323,
      { host: '127.0.3.38', nodeId: 'was2' },
      { tls: { ...tlsFor('uri-was1'), identity }, sendMode: 'sync' },
    )
    const was2 = open('was2', '127.0.3.38', 4323, { host: '127.0.3.37', nodeId: 'was1' }, { tls: { ...tlsFor('uri-was2'), identity } })
    await Promise.all([next(was1, 'sync'), next(was2, 'sync')])
    await was1.set('by-uri', session({ n: 1 }))
    expect(await was2.get('by-uri')).toMatchObject({ n: 1 })
  })

  test.each([
    ['names was2 by CN and DNS only', 'was2', 4324],
    ['has the URI spiffe://cluster/was2/extra', 'tricky-was3', 4325],
  ])('a certificate from the cluster CA that %s is refused', async (_, certificate, port) => {
    const was1 = open(
      'was1',
      '127.0.3.37',
      port,
      { host: '127.0.3.38', nodeId: 'was2' },
      { tls: { ...tlsFor('uri-was1'), identity }, retry: () => 60_000 },
    )
    const outcome = firstOutcome(was1)
    open(
      'was2',
      '127.0.3.38',
      port,
      { host: '127.0.3.37', nodeId: 'was1' },
      { tls: { ...tlsFor(certificate), identity }, retry: () => 60_000 },
    )
    expect(await outcome).toBe('refused')
    expect(was1.members()[0]!.state).not.toBe('alive')
  })
})

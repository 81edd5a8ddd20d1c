import { readFileSync } from 'node:fs'
import path from 'node:path'
import type { SessionData } from 'express-session'
import { HandshakeRefusals, PeerStore, type PeerStoreOptions } from '../../lib/index.js'
import { ROOT } from '../helpers/child.js'

const TLS = path.join(ROOT, '__tests__', 'fixtures', 'tls')
const pem = (name: string) => readFileSync(path.join(TLS, name))
const tlsFor = (name: string, ca = 'cluster-ca.crt') => ({ ca: pem(ca), cert: pem(`${name}.crt`), key: pem(`${name}.key`) })
const FAST = { heartbeatInterval: 100, suspectTimeout: 300, deadTimeout: 1000, handshakeTimeout: 1000 }

function session(data: Record<string, unknown>): SessionData {
  return { cookie: { originalMaxAge: 3_600_000, expires: new Date(Date.now() + 3_600_000), path: '/' }, ...data } as unknown as SessionData
}

const stores: PeerStore[] = []
afterEach(async () => {
  await Promise.all(stores.splice(0).map((store) => store.close()))
})

function open(nodeId: string, host: string, port: number, peer: { host: string; nodeId: string }, options: PeerStoreOptions): PeerStore {
  const store = new PeerStore([{ host: peer.host, port, nodeId: peer.nodeId }], { ...FAST, nodeId, listen: `${host}:${port}`, ...options })
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
  const rogue = open('was2', '127.0.0.92', 4122, { host: '127.0.0.91', nodeId: 'was1' }, { tls: { ...tlsFor('rogue-was2'), ca: pem('other-ca.crt') }, retry: () => 60_000 })
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

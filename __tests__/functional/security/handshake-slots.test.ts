import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import path from 'node:path'
import { PROTOCOL_VERSION } from '../../../lib/protocol/frame.js'
import { encodeMessage, MessageType } from '../../../lib/protocol/messages.js'
import { deriveSecretKey } from '../../../lib/security/keys.js'
import { HandshakeRefusals, PeerStore, type PeerStoreOptions } from '../../../lib/index.js'
import { FIXTURES } from '../../helpers/child.js'
import { RawPeer } from '../../helpers/raw-peer.js'
import { FAST, session } from '../../helpers/sessions.js'

// Nodes on 127.0.3.10 to 127.0.3.19, strangers on 127.0.3.100 to 127.0.3.199: this file's addresses.
const SECRET = 'handshake slots test secret 0123'
// A stranger's slot is held for handshakeTimeout (the idle cut, deadTimeout, comes later): longer than
// the 8 s a real peer is given to get through, so it cannot slip in when the slots turn over.
const TIMING = { ...FAST, deadTimeout: 20_000, handshakeTimeout: 10_000, retry: () => 100 }

const stores: PeerStore[] = []
const squatters: Squatter[] = []
afterEach(async () => {
  await Promise.all(squatters.splice(0).map((squatter) => squatter.stop()))
  await Promise.all(stores.splice(0).map((store) => store.close()))
})

function open(peers: unknown[], options: PeerStoreOptions): PeerStore {
  const store = new PeerStore(peers as never, { ...TIMING, secret: SECRET, ...options })
  stores.push(store)
  return store
}

function nextEvent<T extends unknown[]>(store: PeerStore, event: string): Promise<T> {
  return new Promise((resolve) => store.once(event as never, (...args: T) => resolve(args)))
}

/** Fails with `what` unless `promise` settles within `ms`. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)))
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * A HELLO that names the cluster's key id: every node sends it in clear, so anyone on the path has
 * it. It gets a WELCOME, and then holds its slot until handshakeTimeout, not just the HELLO deadline.
 */
async function sniffedHello(): Promise<Buffer> {
  const { id } = await deriveSecretKey(SECRET)
  return encodeMessage({
    type: MessageType.HELLO,
    protocol: PROTOCOL_VERSION,
    cluster: 'connect-peer',
    nodeId: 'was2',
    incarnation: 'x',
    maxFrameBytes: 1 << 20,
    nonce: randomBytes(32),
    keyId: id,
  })
}

/**
 * A stranger that opens `perAddress` sockets from each of `from`, sends `greeting` on each (or
 * nothing) and keeps them open: a socket the node closes is reopened at once if it had held a slot,
 * or 20 ms later if it was turned away. `ready` resolves once every socket has connected and the
 * node has turned at least one away.
 */
class Squatter {
  readonly ready: Promise<void>
  readonly #sockets = new Set<Socket>()
  readonly #timers = new Set<NodeJS.Timeout>()
  #stopped = false
  #connected = 0
  #turnedAway = 0
  #wake: () => void = () => undefined

  readonly #greeting: Buffer | undefined

  constructor(target: { host: string; port: number }, from: readonly string[], perAddress: number, greeting?: Buffer) {
    this.#greeting = greeting
    const total = from.length * perAddress
    this.ready = new Promise((resolve) => {
      this.#wake = () => {
        if (this.#connected >= total && this.#turnedAway > 0) resolve()
      }
    })
    for (const localAddress of from) for (let i = 0; i < perAddress; i++) this.#open(target, localAddress, true)
  }

  #open(target: { host: string; port: number }, localAddress: string, first: boolean): void {
    if (this.#stopped) return
    const socket = connect({ ...target, localAddress })
    this.#sockets.add(socket)
    let openedAt = 0
    socket.on('error', () => undefined)
    socket.on('connect', () => {
      openedAt = Date.now()
      if (this.#greeting) socket.write(this.#greeting)
      if (first) this.#connected += 1
      this.#wake()
    })
    socket.on('close', () => {
      this.#sockets.delete(socket)
      const held = openedAt > 0 && Date.now() - openedAt >= 50
      if (!held) this.#turnedAway += 1
      this.#wake()
      if (held) return this.#open(target, localAddress, false)
      const timer = setTimeout(() => {
        this.#timers.delete(timer)
        this.#open(target, localAddress, !openedAt && first)
      }, 20)
      this.#timers.add(timer)
    })
  }

  async stop(): Promise<void> {
    this.#stopped = true
    for (const timer of this.#timers) clearTimeout(timer)
    const closed = [...this.#sockets].map((socket) => new Promise((resolve) => socket.once('close', resolve)))
    for (const socket of this.#sockets) socket.destroy()
    await Promise.all(closed)
  }
}

function squat(target: { host: string; port: number }, from: readonly string[], perAddress: number, greeting?: Buffer): Squatter {
  const squatter = new Squatter(target, from, perAddress, greeting)
  squatters.push(squatter)
  return squatter
}

/** was1 is attacked; was2 (the real peer, on its own address) must still connect to it and replicate. */
async function realPeerGetsThrough(port: number, was1: PeerStore, options: PeerStoreOptions = {}): Promise<void> {
  const was2 = open([{ host: '127.0.3.10', port, nodeId: 'was1' }], {
    nodeId: 'was2',
    listen: `127.0.3.11:${port}`,
    sendMode: 'sync',
    ...options,
  })
  // was2's 'sync' needs its own outbound connection, the one accepted by the node under attack.
  await within(8000, 'was2 connecting to the node under attack', Promise.all([nextEvent(was1, 'sync'), nextEvent(was2, 'sync')]))
  await was2.set('through-the-crowd', session({ n: 1 }))
  expect(await was1.get('through-the-crowd')).toMatchObject({ n: 1 })
}

test('a stranger holding many idle sockets from one address, and reopening them, cannot keep a real peer out', async () => {
  const port = 4310
  const was1 = open([{ host: '127.0.3.11', port, nodeId: 'was2' }], {
    nodeId: 'was1',
    listen: `127.0.3.10:${port}`,
    maxPendingHandshakes: 8,
  })
  await was1.ready()
  await squat({ host: '127.0.3.10', port }, ['127.0.3.100'], 24, await sniffedHello()).ready
  await realPeerGetsThrough(port, was1)
  expect(was1.stats().rejectedConnections).toBeGreaterThan(0)
})

test("strangers from many addresses filling the shared slots cannot keep a configured peer's host out", async () => {
  const port = 4311
  const was1 = open([{ host: '127.0.3.11', port, nodeId: 'was2' }], {
    nodeId: 'was1',
    listen: `127.0.3.10:${port}`,
    maxPendingHandshakes: 8,
  })
  await was1.ready()
  const crowd = Array.from({ length: 40 }, (_, index) => `127.0.3.${120 + index}`)
  await squat({ host: '127.0.3.10', port }, crowd, 1, await sniffedHello()).ready
  await realPeerGetsThrough(port, was1)
})

test('a connection that sends no HELLO is closed after a second, long before handshakeTimeout', async () => {
  const was1 = open([{ host: '127.0.3.11', port: 4312, nodeId: 'was2' }], {
    nodeId: 'was1',
    listen: '127.0.3.10:4312',
    handshakeTimeout: 10_000,
    deadTimeout: 20_000,
  })
  await was1.ready()
  const reported = nextEvent<[Error & { reason?: string }, string]>(was1, 'peer:error')
  const idle = await RawPeer.connect('127.0.3.10', 4312, '127.0.3.101')
  const openedAt = Date.now()
  const [error] = await within(5000, 'a refusal for the idle connection', reported)
  await idle.closed
  expect(Date.now() - openedAt).toBeLessThan(3000)
  expect(error.reason).toBe(HandshakeRefusals.TIMEOUT)
})

test('with mutual TLS, slots are taken before the TLS handshake: idle TCP sockets cannot keep a real peer out, nor delay close()', async () => {
  const port = 4313
  const tls = (name: string) => {
    const pem = (file: string) => readFileSync(path.join(FIXTURES, 'tls', file))
    return { ca: pem('cluster-ca.crt'), cert: pem(`${name}.crt`), key: pem(`${name}.key`) }
  }
  const was1 = open([{ host: '127.0.3.11', port, nodeId: 'was2' }], {
    nodeId: 'was1',
    listen: `127.0.3.10:${port}`,
    maxPendingHandshakes: 8,
    tls: tls('was1'),
  })
  await was1.ready()
  await squat({ host: '127.0.3.10', port }, ['127.0.3.102'], 24).ready
  await realPeerGetsThrough(port, was1, { tls: tls('was2') })
  // The strangers' TLS handshakes are still pending: close() ends them instead of waiting them out.
  await within(3000, 'close() with TLS handshakes pending', was1.close())
})

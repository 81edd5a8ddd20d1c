import { randomBytes } from 'node:crypto'
import { PROTOCOL_VERSION } from '../../../lib/protocol/frame.js'
import { MessageType, type Message } from '../../../lib/protocol/messages.js'
import { HandshakeRefusals, PeerStore, type PeerStoreOptions } from '../../../lib/index.js'
import { RawPeer } from '../../helpers/raw-peer.js'
import { FAST, session } from '../../helpers/sessions.js'

// Addresses 127.0.3.1 to 127.0.3.9 belong to this file.
const SECRET = 'peer identity test secret 0123'
/** Control characters, a forged log line and an ANSI escape, then far more than a log line should hold. */
const HOSTILE = `nope\n2030-01-01T00:00:00Z connect-peer:transport was2 authenticated\r\u001b[31m\u2028${'A'.repeat(400)}`

const stores: PeerStore[] = []
const listeners: Array<{ close(): Promise<void> }> = []
afterEach(async () => {
  await Promise.all(stores.splice(0).map((store) => store.close()))
  await Promise.all(listeners.splice(0).map((listener) => listener.close()))
})

function open(peers: unknown[], options: PeerStoreOptions): PeerStore {
  const store = new PeerStore(peers as never, { ...FAST, handshakeTimeout: 1000, ...options })
  stores.push(store)
  return store
}

function nextEvent<T extends unknown[]>(store: PeerStore, event: string, match: (...args: T) => boolean = () => true): Promise<T> {
  return new Promise((resolve) => {
    const listener = (...args: T) => {
      if (!match(...args)) return
      store.off(event as never, listener)
      resolve(args)
    }
    store.on(event as never, listener)
  })
}

/** A stranger listening on a peer's address that answers every HELLO with `answer`. */
async function squat(host: string, port: number, answer: Message): Promise<{ close(): Promise<void> }> {
  const listener = await RawPeer.accept(host, port, (peer) => {
    void peer.next(MessageType.HELLO).then((hello) => {
      if (!hello) return
      peer.send(answer)
      peer.socket.end()
    })
  })
  listeners.push(listener)
  return listener
}

/** What a log line or an error message may show of text a stranger chose: one short line. */
function expectOneShortLine(text: string): void {
  expect(text).not.toMatch(/[\p{Cc}\u2028\u2029]/u)
  expect(text.length).toBeLessThan(320)
}

describe.each([
  ['with a secret', { secret: SECRET }, 4301],
  ['without a secret, on loopback', {}, 4302],
])('%s', (_, security, port) => {
  test("a REFUSE from a stranger on a down peer's address does not rename the peer; the real peer connects when it is back", async () => {
    const fake = await squat('127.0.3.2', port, {
      type: MessageType.REFUSE,
      nodeId: 'ghost',
      reason: HandshakeRefusals.UNKNOWN_NODE,
      detail: HOSTILE,
    })
    const was1 = open([`127.0.3.2:${port}`], { nodeId: 'was1', listen: `127.0.3.1:${port}`, retry: () => 50, ...security })
    const [refusal] = await nextEvent<[Error, string]>(was1, 'peer:error')
    expectOneShortLine(refusal.message)
    expect(was1.members()[0]!.nodeId).toBeNull()

    await fake.close()
    // The real peer, configured by address too: both learn the other's id from an authenticated WELCOME.
    const was2 = open([`127.0.3.1:${port}`], {
      nodeId: 'was2',
      listen: `127.0.3.2:${port}`,
      retry: () => 50,
      sendMode: 'sync',
      ...security,
    })
    await Promise.all([nextEvent(was1, 'sync'), nextEvent(was2, 'sync')])
    expect(was1.members()[0]).toMatchObject({ nodeId: 'was2', state: 'alive' })
    expect(was2.members()[0]).toMatchObject({ nodeId: 'was1', state: 'alive' })
    await was2.set('after-the-squatter', session({ n: 1 }))
    expect(await was1.get('after-the-squatter')).toMatchObject({ n: 1 })
  })
})

test("a stranger's WELCOME with a hostile cluster name reaches peer:error as one short line", async () => {
  const welcome: Message = {
    type: MessageType.WELCOME,
    cluster: HOSTILE.slice(0, 128),
    nodeId: 'was2',
    incarnation: 'x',
    maxFrameBytes: 1 << 20,
    nonce: randomBytes(32),
    proof: null,
  }
  await squat('127.0.3.4', 4303, welcome)
  const was1 = open([{ host: '127.0.3.4', port: 4303, nodeId: 'was2' }], { nodeId: 'was1', listen: '127.0.3.3:4303', retry: () => 60_000 })
  const [error] = await nextEvent<[Error & { reason?: string }, string]>(was1, 'peer:error')
  expect(error.reason).toBe(HandshakeRefusals.CLUSTER)
  expectOneShortLine(error.message)
})

test("a stranger's HELLO with a hostile cluster name reaches peer:error as one short line", async () => {
  const was1 = open([{ host: '127.0.3.6', port: 4304, nodeId: 'was2' }], { nodeId: 'was1', listen: '127.0.3.5:4304', retry: () => 60_000 })
  await was1.ready()
  const reported = nextEvent<[Error & { reason?: string }, string]>(was1, 'peer:error')
  const stranger = await RawPeer.connect('127.0.3.5', 4304, '127.0.3.7')
  const answer = await stranger.handshake({ protocol: PROTOCOL_VERSION, cluster: HOSTILE.slice(0, 128), nodeId: 'was2', incarnation: 'x' })
  expect(answer).toMatchObject({ type: MessageType.REFUSE, reason: HandshakeRefusals.CLUSTER })
  const [error] = await reported
  expectOneShortLine(error.message)
  stranger.destroy()
})

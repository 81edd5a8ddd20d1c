import { Cluster } from '../../../lib/cluster/cluster.js'
import { resolveOptions } from '../../../lib/peer-store/options.js'

// The cluster's name lookups answered by the test, when it says: no resolver is asked.
const lookups: Array<{ host: string; answer: (addresses: Array<{ address: string; family: number }>) => void }> = []
jest.mock('node:dns/promises', () => ({
  ...jest.requireActual<object>('node:dns/promises'),
  lookup: (host: string) => new Promise((answer) => lookups.push({ host, answer })),
}))

/** A cluster never started: no socket is opened. */
function cluster(): Cluster {
  const { cluster: config } = resolveOptions([], {
    nodeId: 'was1',
    listen: '127.0.9.61:4055',
    secret: 'a-unit-test-secret-0123456789abcdef',
  })
  const events = { message() {}, connected() {}, needsResync() {}, memberChanged() {}, connectionError() {} }
  return new Cluster(config!, { session: { maxSessionBytes: 1 << 20 }, maxBatch: 1 } as never, events)
}

/** Answers every lookup asked so far, then lets the answers be applied. */
async function answerLookups(address: string): Promise<void> {
  for (const { answer } of lookups.splice(0)) answer([{ address, family: 4 }])
  await Promise.resolve()
  await Promise.resolve()
}

afterEach(() => {
  lookups.length = 0
})

test('the resolved addresses of a peer given by name are forgotten when its last peer is removed', async () => {
  const nodes = cluster()
  nodes.addPeer({ host: 'node2.test', port: 4056, nodeId: undefined })
  nodes.addPeer({ host: 'node2.test', port: 4057, nodeId: undefined })
  await answerLookups('127.0.9.62')
  expect(nodes.resolvedHostNames).toEqual(['node2.test'])
  nodes.removePeer('node2.test:4056', 'test', 10)
  expect(nodes.resolvedHostNames).toEqual(['node2.test']) // another peer still has that name
  nodes.removePeer('node2.test:4057', 'test', 10)
  expect(nodes.resolvedHostNames).toEqual([])
  await nodes.stop(10)
})

test('a name that resolves after its peer was removed is not kept', async () => {
  const nodes = cluster()
  nodes.addPeer({ host: 'node3.test', port: 4056, nodeId: undefined })
  expect(lookups.map(({ host }) => host)).toEqual(['node3.test'])
  nodes.removePeer('node3.test:4056', 'test', 10)
  await answerLookups('127.0.9.63')
  expect(nodes.resolvedHostNames).toEqual([])
  await nodes.stop(10)
})

import RedisMock from 'ioredis-mock'
import { ErrorCodes, InvalidOptionError, PeerStore } from '../../../lib/index.js'
import type { Member } from '../../../lib/cluster/peer-link.js'
import { CompositeReplication } from '../../../lib/replication/composite-replication.js'
import type { Replication } from '../../../lib/replication/replication.js'
import { SessionTable } from '../../../lib/table/session-table.js'

/** A part with nothing behind it; with `peers`, one that records the peers it is given. */
function part(peers?: string[]): Replication {
  const base: Replication = {
    start: () => Promise.resolve(),
    port: undefined,
    syncing: false,
    publish: () => undefined,
    publishClear: () => undefined,
    fetchMissing: () => Promise.resolve(),
    members: () => [],
    stats: () => ({}),
    stop: () => Promise.resolve(),
  }
  if (!peers) return base
  const member = (address: string): Member => ({
    nodeId: null,
    address,
    state: 'connecting',
    since: new Date(0),
    queuedBytes: 0,
    connections: 0,
    protocol: null,
  })
  return {
    ...base,
    addPeer: (address) => {
      peers.push(`${address.host}:${address.port}`)
      return member(`${address.host}:${address.port}`)
    },
    removePeer: (name) => {
      peers.splice(peers.indexOf(name), 1)
      return { member: member(name), goodbye: Promise.resolve() }
    },
  }
}

const table = () => new SessionTable({ nodeId: 'was1', tombstoneTtlMs: 0, expiryResolutionMs: 1000, maxRebinds: 1, touchAfterMs: 0 }, 0)

test('the composite passes addPeer and removePeer to the part that has peers', async () => {
  const peers: string[] = []
  const composite = new CompositeReplication(table(), [part(peers), part()])
  expect(composite.addPeer({ host: '127.0.0.2', port: 4055, nodeId: undefined })).toMatchObject({ address: '127.0.0.2:4055' })
  expect(peers).toEqual(['127.0.0.2:4055'])
  const { member, goodbye } = composite.removePeer('127.0.0.2:4055')
  await goodbye
  expect(member.address).toBe('127.0.0.2:4055')
  expect(peers).toEqual([])
})

test('a composite without a part that has peers refuses both, naming what to configure', () => {
  const composite = new CompositeReplication(table(), [part(), part()])
  expect(() => composite.addPeer({ host: '127.0.0.2', port: 4055, nodeId: undefined })).toThrow(InvalidOptionError)
  expect(() => composite.removePeer('was2')).toThrow(/removePeer\(\) changes the peers of a store that replicates to peers/)
})

test('a store with a Redis tier only: addPeer throws and removePeer rejects with InvalidOptionError', async () => {
  const client = new RedisMock({ host: 'redis-membership-unit', port: 7300 })
  const store = new PeerStore({ nodeId: 'was1', redis: client })
  try {
    expect(() => store.addPeer('127.0.0.2:4055')).toThrow(
      expect.objectContaining({ code: ErrorCodes.INVALID_OPTION, option: 'listen', message: expect.stringContaining('a Redis tier only') }),
    )
    await expect(store.removePeer('was2')).rejects.toMatchObject({ code: ErrorCodes.INVALID_OPTION })
    expect(store.members()).toEqual([])
  } finally {
    await store.close()
    client.disconnect()
  }
})

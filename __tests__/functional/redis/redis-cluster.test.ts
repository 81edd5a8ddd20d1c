import { Cluster } from 'ioredis'
import { killAll, NodeProcess } from '../../helpers/node-process.js'
import { RedisClusterServers } from '../../helpers/redis-server.js'
import { session } from '../../helpers/sessions.js'

/** The Redis tier on a real Redis Cluster (three masters), through ioredis's Cluster client. */
let servers: RedisClusterServers
beforeAll(async () => {
  servers = await RedisClusterServers.start(3)
}, 60_000)
afterAll(() => servers.stop())
afterEach(killAll)

test('sessions spread over the masters, one slot each, are shared by nodes that are not peers, destroys included', async () => {
  const options = { sendMode: 'sync' as const }
  const [was1, was9] = await Promise.all([
    NodeProcess.start({ nodeId: 'was1', host: '127.0.6.11', port: 4711, peers: [], options, redisCluster: servers.nodes }),
    NodeProcess.start({ nodeId: 'was9', host: '127.0.6.12', port: 4711, peers: [], options, redisCluster: servers.nodes }),
  ])
  for (let i = 0; i < 50; i++) await was1.call('set', `s${i}.was1`, session({ i }))
  for (const i of [0, 17, 49]) expect(await was9.call('get', `s${i}.was1`)).toMatchObject({ i })
  // The keys landed on every master (the hash tag puts a session in the slot of its id).
  const client = new Cluster(servers.nodes)
  try {
    await new Promise((resolve) => client.once('ready', resolve))
    expect(client.nodes('master')).toHaveLength(3)
    const perMaster = await Promise.all(client.nodes('master').map((node) => node.dbsize()))
    expect(perMaster.every((keys) => keys > 0)).toBe(true)
    expect(perMaster.reduce((sum, keys) => sum + keys, 0)).toBe(50)
  } finally {
    client.disconnect()
  }
  await was9.call('destroy', 's17.was1')
  await was1.waitForReplicated('s17.was1', 'destroy')
  expect(await was1.call('get', 's17.was1')).toBeNull()
}, 60_000)

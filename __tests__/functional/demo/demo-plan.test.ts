import { once } from 'node:events'
import { createServer } from 'node:net'
import { DemoSetupError, planDemo } from '../../../examples/express-app/demo-plan.js'

/** The demo's plan, in process: what it checks before starting anything (real listeners, 127.0.7.x). */
const env = (extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv => ({
  DEMO_HOST: '127.0.7.60',
  DEMO_HOSTS: '127.0.7.61,127.0.7.62',
  DEMO_PORT: '3900',
  DEMO_HTTP_PORT: '3901',
  DEMO_REPLICATION_PORT: '4901',
  ...extra,
})

test('addresses that can be bound: one per node, the same ports on each', async () => {
  expect(await planDemo(env({}))).toEqual({
    balancer: { host: '127.0.7.60', port: 3900 },
    nodes: [
      { key: '1', nodeId: 'was1', host: '127.0.7.61', httpPort: 3901, replicationPort: 4901 },
      { key: '2', nodeId: 'was2', host: '127.0.7.62', httpPort: 3901, replicationPort: 4901 },
    ],
  })
})

test('the fallback: both nodes on the balancer address, the second one port up', async () => {
  const plan = await planDemo(env({ DEMO_FALLBACK: '1' }))
  expect(plan.nodes.map(({ host, httpPort, replicationPort }) => [host, httpPort, replicationPort])).toEqual([
    ['127.0.7.60', 3901, 4901],
    ['127.0.7.60', 3902, 4902],
  ])
  expect(plan.fallback).toMatch(/^127\.0\.7\.61 and 127\.0\.7\.62 cannot be used here/)
})

test.each([
  [{ DEMO_PORT: 'abc' }, 'DEMO_PORT must be a port number (1-65534); got "abc"'],
  [{ DEMO_HTTP_PORT: '70000' }, 'DEMO_HTTP_PORT must be a port number (1-65534); got "70000"'],
  [{ DEMO_HOSTS: '127.0.7.61' }, 'DEMO_HOSTS must name two addresses, e.g. 127.0.0.11,127.0.0.12; got "127.0.7.61"'],
  [
    { DEMO_FALLBACK: '1', DEMO_HTTP_PORT: '3899' },
    "127.0.7.60:3900 would be both the load balancer and was2's web server: set DEMO_HTTP_PORT to another port",
  ],
])('%o is refused: %s', async (extra, message) => {
  await expect(planDemo(env(extra))).rejects.toEqual(new DemoSetupError(message))
})

test('a taken port is found, whichever it is', async () => {
  const blocker = createServer().listen(4901, '127.0.7.61')
  await once(blocker, 'listening')
  try {
    await expect(planDemo(env({}))).rejects.toThrow(
      "127.0.7.61:4901 (was1's replication) is in use (another demo?): stop it or run DEMO_REPLICATION_PORT=5001 npm run demo",
    )
  } finally {
    blocker.close()
  }
})

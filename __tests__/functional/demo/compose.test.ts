import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { parse } from 'yaml'
import { ROOT } from '../../helpers/child.js'

/**
 * docker-compose.yml checked for what it says, without Docker (fast, and where Docker cannot run):
 * the services, their addresses, environment, ports, healthchecks and the HAProxy config it mounts.
 * compose-docker.test.ts runs the file for real, and haproxy.test.ts runs that HAProxy config
 * without Docker.
 */
interface Service {
  build?: { context: string; dockerfile: string }
  image?: string
  environment?: Record<string, string>
  ports?: string[]
  volumes?: string[]
  healthcheck?: { test: string[] }
  depends_on?: Record<string, { condition: string }>
  networks?: Record<string, { ipv4_address?: string }>
}

const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, Service>
  networks: Record<string, { ipam?: { config?: { subnet: string; gateway: string }[] } }>
}
const { node1, node2, haproxy } = compose.services

test('three services: two app nodes and HAProxy', () => {
  expect(Object.keys(compose.services).sort()).toEqual(['haproxy', 'node1', 'node2'])
})

test('the app nodes are built from the example app Dockerfile, whose command is the app entry point', () => {
  for (const node of [node1!, node2!]) {
    expect(node.build).toEqual({ context: '.', dockerfile: 'examples/express-app/Dockerfile' })
  }
  const dockerfile = readFileSync(path.join(ROOT, 'examples/express-app/Dockerfile'), 'utf8')
  expect(dockerfile).toMatch(/^CMD \["node", "--import", "tsx", "examples\/express-app\/server\.ts"\]$/m)
  expect(existsSync(path.join(ROOT, 'examples/express-app/server.ts'))).toBe(true)
})

test("the seed's addresses: node1 at 10.10.10.1 and node2 at 10.10.10.2 of 10.10.10.0/24, whose gateway is not .1", () => {
  expect(compose.networks).toEqual({ seed: { ipam: { config: [{ subnet: '10.10.10.0/24', gateway: '10.10.10.254' }] } } })
  expect(node1!.networks).toEqual({ seed: { ipv4_address: '10.10.10.1' } })
  expect(node2!.networks).toEqual({ seed: { ipv4_address: '10.10.10.2' } })
  expect(haproxy!.networks).toEqual({ seed: { ipv4_address: '10.10.10.10' } })
})

test('each node has the environment the app reads, and the peers point at each other on 4055', () => {
  for (const [node, self, peer] of [
    [node1!, 'was1', 'was2@10.10.10.2:4055'],
    [node2!, 'was2', 'was1@10.10.10.1:4055'],
  ] as const) {
    expect(node.environment).toMatchObject({ NODE_ID: self, LISTEN: '0.0.0.0:4055', PEERS: peer, PORT: '3000' })
    expect(node.environment!.CLUSTER_SECRET).toMatch(/^\$\{CLUSTER_SECRET:\?/) // required, no default secret
  }
})

test('the nodes have healthchecks on /healthz, and HAProxy waits for them to be healthy', () => {
  for (const node of [node1!, node2!]) expect(node.healthcheck!.test.join(' ')).toContain('http://127.0.0.1:3000/healthz')
  expect(haproxy!.depends_on).toEqual({ node1: { condition: 'service_healthy' }, node2: { condition: 'service_healthy' } })
})

test('HAProxy publishes port 3000 on 127.0.0.1 only, mounts a config file that exists, and gets the node addresses', () => {
  expect(haproxy!.image).toMatch(/^haproxy:/)
  // DEMO_HOST and DEMO_PORT move it (as for npm run demo); the defaults keep it on loopback.
  expect(haproxy!.ports).toEqual(['${DEMO_HOST:-127.0.0.1}:${DEMO_PORT:-3000}:3000'])
  const [mount] = haproxy!.volumes!
  const [source, target] = mount!.split(':')
  expect(target).toBe('/usr/local/etc/haproxy/haproxy.cfg')
  expect(existsSync(path.join(ROOT, source!))).toBe(true)
  expect(haproxy!.environment).toEqual({ LISTEN_ADDR: '*:3000', NODE1_ADDR: '10.10.10.1:3000', NODE2_ADDR: '10.10.10.2:3000' })
})

test('the mounted config routes on the route cookie, passive, one server per node id', () => {
  const config = readFileSync(path.join(ROOT, 'examples/express-app/haproxy.cfg'), 'utf8')
  expect(config).toMatch(/^\s*cookie ROUTEID\s*$/m)
  expect(config).toMatch(/server was1 "\$\{NODE1_ADDR\}" cookie was1/)
  expect(config).toMatch(/server was2 "\$\{NODE2_ADDR\}" cookie was2/)
  expect(config).toMatch(/option httpchk GET \/healthz/)
  expect(config).toMatch(/option redispatch/)
})

test('HAProxy itself accepts the mounted config', async () => {
  const env = { ...process.env, LISTEN_ADDR: '127.0.0.1:3299', NODE1_ADDR: '127.0.0.11:3201', NODE2_ADDR: '127.0.0.12:3201' }
  const { stdout, stderr } = await promisify(execFile)('haproxy', ['-c', '-f', path.join(ROOT, 'examples/express-app/haproxy.cfg')], {
    env,
  })
  expect(`${stdout}${stderr}`).toMatch(/Configuration file is valid/)
})

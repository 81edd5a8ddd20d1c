import { randomBytes } from 'node:crypto'
import path from 'node:path'
import type { Browser as Chromium } from 'playwright-core'
import { launchChromium } from '../../helpers/chromium.js'
import { Browser, EXAMPLE } from '../../helpers/demo-nodes.js'
import { Compose, dockerEngine, dockerUnavailable, hostNow, inspect, run, type DockerEngine } from '../../helpers/docker.js'
import { settles } from '../../helpers/settle.js'

/**
 * docker-compose.yml run for real, as a user runs it (`up --build`, `kill`, `start`, `down -v`),
 * on the seed's addresses: node1 at 10.10.10.1 and node2 at 10.10.10.2 in a Docker network the
 * test makes, HAProxy in front. Every request of the test goes to HAProxy's published port on
 * loopback (127.0.16.1 here, moved there by DEMO_HOST; the default is 127.0.0.1:3000).
 *
 * Where no image registry answers, examples/express-app/docker/local-images.sh builds the base
 * images first (once per machine: they stay, as the cache of later runs). The Docker engine is
 * started and stopped by helpers/docker.ts when none runs.
 */
const unavailable = dockerUnavailable()
if (unavailable) console.log(`compose-docker.test.ts skipped: ${unavailable}`)
const describeDocker = unavailable ? describe.skip : describe

const HOST = '127.0.16.1'
const PORT = 3000
const FRONT = `http://${HOST}:${PORT}`
const compose = new Compose('connect-peer-test', {
  CLUSTER_SECRET: randomBytes(32).toString('base64'),
  DEMO_HOST: HOST,
  DEMO_PORT: String(PORT),
})
const NETWORK = `${compose.project}_seed`
const SUBNET = '10.10.10.0/24'
/** Each HTTP call's response timeout, so that a wait for health ends with its own message. */
const RESPONSE_MS = 5_000
/** beforeAll's time, shared by its steps: each one's deadline ends before the hook's. */
const SETUP_MS = 600_000
const SERVICE = { was1: 'node1', was2: 'node2' } as const
type NodeId = keyof typeof SERVICE

interface Health {
  status: string
  node: string
  sessions: number
  syncing: boolean
  peers: { nodeId: string; state: string }[]
}

interface Container {
  State: { Running: boolean; Health?: { Status: string } }
  NetworkSettings: { Networks: Record<string, { IPAddress: string }>; Ports: Record<string, { HostIp: string; HostPort: string }[] | null> }
}

describeDocker('docker-compose.yml in Docker', () => {
  let engine: DockerEngine | undefined
  let imagesBefore: string[] = []
  let browser: Chromium | undefined

  beforeAll(async () => {
    const end = Date.now() + SETUP_MS - 10_000
    const within = (ms: number) => Math.max(1_000, Math.min(ms, end - Date.now()))
    engine = await dockerEngine()
    await run('bash', [path.join(EXAMPLE, 'docker', 'local-images.sh')], { timeoutMs: within(300_000) })
    imagesBefore = await compose.builtImages()
    await compose.run(['down', '--volumes'], within(60_000)) // what a crashed run left
    await subnetIsFree()
    // `up --build --detach` in two steps, so that a build that fails leaves no container behind.
    await compose.run(['build', '--force-rm'], within(300_000))
    await compose.run(['up', '--detach'], within(120_000)).catch((error: Error) => {
      if (!/overlaps|already allocated|address already in use/.test(error.message)) throw error
      throw new Error(
        `docker-compose up: ${SUBNET} or ${HOST}:${PORT} is taken (another copy of the demo?): stop it (docker ps, docker network ls), then run the test again`,
        { cause: error },
      )
    })
  }, SETUP_MS)

  /** The demo's subnet must be free on the host: a route or an address in it (a VPN, a LAN) would catch its traffic. */
  async function subnetIsFree(): Promise<void> {
    const routes = (await run('ip', ['-4', 'route', 'show', 'root', SUBNET])).stdout.trim()
    const addresses = (await run('ip', ['-4', '-oneline', 'address'])).stdout
      .split('\n')
      .map((line) => /^\d+: (\S+)\s+inet (10\.10\.10\.\d+\/\d+)/.exec(line))
      .filter((match) => match !== null)
      .map(([, link, address]) => `${address} on ${link}`)
    const used = [...routes.split('\n'), ...addresses].filter(Boolean)
    if (used.length) {
      throw new Error(`${SUBNET}, the demo's network, is already used on this host (${used.join('; ')}): free it, then run the test again`)
    }
  }

  afterAll(async () => {
    await browser?.close()
    if (!engine) return // no engine: nothing was started
    try {
      await compose.run(['down', '--volumes'])
      // This run's build replaced the images of the one before: those are only in the way now.
      const current = new Set(await compose.builtImages())
      for (const id of imagesBefore.filter((id) => !current.has(id))) await run('docker', ['image', 'rm', id]).catch(() => undefined)
    } finally {
      await engine.stop()
    }
    // Put back exactly: the iptables tables, the sysctls and the links as they were before dockerd.
    if (engine.before) expect(await hostNow()).toEqual(engine.before)
  }, 120_000)

  /** /healthz of `node` through HAProxy (its route cookie), or null while HAProxy sends that route elsewhere. */
  async function healthOf(node: NodeId): Promise<Health | null> {
    const browser = new Browser(FRONT, RESPONSE_MS)
    browser.cookies.set('ROUTEID', node)
    const health = (await browser.get('/healthz').catch(() => null)) as Health | null
    return health?.node === node ? health : null
  }

  const other = (node: NodeId): NodeId => (node === 'was1' ? 'was2' : 'was1')

  test('the nodes are healthy at 10.10.10.1 and 10.10.10.2, and HAProxy is published on loopback only', async () => {
    const network = await inspect<{ IPAM: { Config: { Subnet: string; Gateway: string }[] } }>(NETWORK)
    expect(network.IPAM.Config).toEqual([{ Subnet: '10.10.10.0/24', Gateway: '10.10.10.254' }])
    for (const [service, address] of [
      ['node1', '10.10.10.1'],
      ['node2', '10.10.10.2'],
    ] as const) {
      const container = await inspect<Container>(await compose.container(service))
      expect(container.NetworkSettings.Networks[NETWORK]?.IPAddress).toBe(address)
      expect(container.State.Health?.Status).toBe('healthy')
      expect(container.NetworkSettings.Ports['4055/tcp']).toBeNull() // replication is not published
    }
    const haproxy = await inspect<Container>(await compose.container('haproxy'))
    expect(haproxy.NetworkSettings.Ports['3000/tcp']).toEqual([{ HostIp: HOST, HostPort: String(PORT) }])
    // Each node answers on its route, and sees the other over the network.
    for (const node of ['was1', 'was2'] as const) {
      let last: Health | null = null
      await settles(
        async () => (last = await healthOf(node))?.peers[0]?.state === 'alive',
        20_000,
        () => `${FRONT}/healthz with ROUTEID=${node}: ${JSON.stringify(last)}`,
        250,
      )
      expect(last).toMatchObject({ status: 'ok', node, peers: [{ nodeId: other(node), state: 'alive' }] })
    }
  }, 60_000)

  test('the counter survives `docker-compose kill` of the node that served it, in Chromium too, and the node started again recovers every session', async () => {
    const client = new Browser(FRONT, RESPONSE_MS)
    const first = await client.post('/count')
    const served = first.node as NodeId
    const survivor = other(served)
    expect(client.cookies.get('ROUTEID')).toBe(served)
    for (let count = 2; count <= 3; count++) expect(await client.post('/count')).toEqual({ node: served, count })
    // More clients, balanced round robin: sessions start on both nodes.
    const others = [new Browser(FRONT, RESPONSE_MS), new Browser(FRONT, RESPONSE_MS), new Browser(FRONT, RESPONSE_MS)]
    for (const each of others) await each.post('/count')
    expect(new Set(others.map((each) => each.cookies.get('ROUTEID')))).toEqual(new Set(['was1', 'was2']))
    // And a real browser (Debian's Chromium), on the same node: its route cookie says so.
    browser = await launchChromium()
    const page = await browser.newPage()
    await page.context().addCookies([{ name: 'ROUTEID', value: served, url: FRONT }])
    await page.goto(FRONT)
    for (let count = 1; count <= 2; count++) {
      await page.click('#increment')
      await page.waitForSelector(`#count >> text="${count}"`)
    }
    expect(await page.textContent('#node')).toBe(served)

    const container = await compose.container(SERVICE[served])
    await compose.run(['kill', SERVICE[served]])
    expect((await inspect<Container>(container)).State.Running).toBe(false)

    expect(await client.post('/count')).toEqual({ node: survivor, count: 4 })
    expect(client.cookies.get('ROUTEID')).toBe(survivor)
    for (const each of others) expect(await each.post('/count')).toEqual({ node: survivor, count: 2 })
    await page.reload()
    expect(await page.textContent('#node')).toBe(survivor)
    expect(await page.textContent('#count')).toBe('2')
    expect(await page.textContent('#rebound')).toContain(`took this session over from ${served}`)
    await page.click('#increment')
    await page.waitForSelector('#count >> text="3"')
    const held = (await healthOf(survivor))!.sessions
    expect(held).toBeGreaterThanOrEqual(2 + others.length)

    await compose.run(['start', SERVICE[served]])
    // Back in HAProxy (its health checks), it has received every session the survivor holds.
    let last: Health | null = null
    await settles(
      async () => {
        last = await healthOf(served)
        return last !== null && !last.syncing && last.sessions === held
      },
      45_000,
      () => `${served} restarted, expected ${held} sessions; its /healthz: ${JSON.stringify(last)}`,
      250,
    )
    const logs = await compose.run(['logs', '--no-color', SERVICE[served]])
    expect(logs).toMatch(new RegExp(`\\[${served}\\] received ${held} sessions? from ${survivor}`))
    // The client's route cookie points at the restarted node again: it takes the session back.
    client.cookies.set('ROUTEID', served)
    expect(await client.post('/count')).toEqual({ node: served, count: 5 })
  }, 120_000)

  test('`docker-compose down -v` leaves no container, network or volume behind', async () => {
    await compose.run(['down', '--volumes'])
    expect(await compose.leftovers()).toEqual({ containers: [], networks: [], volumes: [] })
    // Nor the network's bridge on the host (Docker gave it the gateway, 10.10.10.254).
    expect((await run('ip', ['-brief', 'address'])).stdout).not.toContain('10.10.10.')
  }, 60_000)
})

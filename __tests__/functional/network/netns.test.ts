/**
 * The namespaced-network harness itself (helpers/netns.ts): where things are made, that a delay
 * and a cut do what they say, and that nothing is left behind. Needs root.
 */
import { execFileSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { NetnsNetwork, netnsUnavailable, probeRtt, removeStaleNamespaces, type Endpoint } from '../../helpers/netns.js'

const unavailable = netnsUnavailable()
if (unavailable) console.log(`netns.test.ts skipped: ${unavailable}`)
const describeNetns = unavailable ? describe.skip : describe

const rootLinks = () =>
  execFileSync('ip', ['-o', 'link', 'show'])
    .toString()
    .split('\n')
    .map((line) => line.split(':')[1]?.trim())
const namespaces = () => execFileSync('ip', ['netns', 'list']).toString()
const inside = (network: NetnsNetwork, endpoint: Endpoint, ...args: string[]) =>
  execFileSync('ip', ['netns', 'exec', network.namespace(endpoint), ...args]).toString()

/** An echo server on `port` in an endpoint's namespace, ready when returned. */
async function listen(network: NetnsNetwork, endpoint: Endpoint, port: number): Promise<ChildProcess> {
  const server = network.spawn(
    endpoint,
    process.execPath,
    [
      '-e',
      `require('node:net').createServer((s) => s.pipe(s)).listen(${port}, '${network.address(endpoint)}', () => console.log('ready'))`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  await once(server.stdout!, 'data')
  return server
}

/** Whether a TCP connection from one endpoint to another's port opens within `timeoutMs`. */
async function connects(network: NetnsNetwork, from: Endpoint, to: Endpoint, port: number, timeoutMs = 1500): Promise<string> {
  const client = network.spawn(
    from,
    process.execPath,
    [
      '-e',
      `const s = require('node:net').connect(${port}, '${network.address(to)}', () => { console.log('open'); process.exit(0) })
       s.on('error', (e) => { console.log(e.code); process.exit(0) })
       setTimeout(() => { console.log('timeout'); process.exit(0) }, ${timeoutMs})`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  let out = ''
  client.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()))
  await once(client, 'exit')
  return out.trim()
}

describeNetns('namespaced network harness', () => {
  let network: NetnsNetwork | undefined

  afterEach(async () => {
    await network?.destroy()
    network = undefined
  })

  test('a namespace per node and the client, the bridge in its own; lo up; nothing made in the root namespace; all gone after destroy', async () => {
    const before = rootLinks()
    network = await NetnsNetwork.create({ nodes: 2 })
    expect(rootLinks()).toEqual(before)
    for (const endpoint of network.endpoints) {
      expect(inside(network, endpoint, 'ip', '-o', 'addr', 'show', 'dev', 'eth0')).toContain(`inet ${network.address(endpoint)}/24`)
      expect(inside(network, endpoint, 'ip', '-o', 'link', 'show', 'dev', 'lo')).toMatch(/[<,]UP[,>]/)
    }
    expect(network.address(2)).toBe('10.10.10.2')
    expect(network.address('client')).toBe('10.10.10.100')
    expect(namespaces()).toContain(`${network.prefix}br`)
    expect(await connects(network, 'client', 2, 9)).toBe('ECONNREFUSED')

    const prefix = network.prefix
    await network.destroy()
    expect(namespaces()).not.toContain(prefix)
  })

  test('the delay is on every link, each way; loss is a rule in the kernel', async () => {
    network = await NetnsNetwork.create({ nodes: 2, link: { delayMs: 1, lossPercent: 1 } })
    // 1 ms each way: a round trip of at least 2 ms (the delayer adds a little of its own).
    const rtt = await probeRtt(network, 1, 2, 30)
    expect(rtt).toBeGreaterThanOrEqual(2)
    expect(rtt).toBeLessThan(10) // the delayer's own cost grows on a busy machine
    const loss = /-i eth0 -m statistic --mode random --probability ([\d.]+) -j DROP/.exec(inside(network, 1, 'iptables', '-S', 'INPUT'))
    expect(Number(loss?.[1])).toBeCloseTo(0.01, 6)

    await network.shape(1, {})
    await network.shape(2, {})
    expect(await probeRtt(network, 1, 2, 30)).toBeLessThan(1.5)
  })

  test('cut(i) silences node i both ways, heal(i) brings it back', async () => {
    network = await NetnsNetwork.create({ nodes: 2 })
    await listen(network, 1, 7001)
    await listen(network, 2, 7002)
    expect(await connects(network, 1, 2, 7002)).toBe('open')
    expect(await connects(network, 2, 1, 7001)).toBe('open')

    await network.cut(1)
    expect(await connects(network, 2, 1, 7001)).toBe('timeout')
    expect(await connects(network, 1, 2, 7002)).not.toBe('open')
    expect(await connects(network, 'client', 2, 7002)).toBe('open')

    await network.heal(1)
    expect(await connects(network, 2, 1, 7001, 5000)).toBe('open')
    expect(await connects(network, 1, 2, 7002, 5000)).toBe('open')
  })

  test("a crashed run's namespaces (a process that is gone) are removed by the next one", async () => {
    const stale = 'cp4194305-1-n1' // above the largest pid Linux gives
    execFileSync('ip', ['netns', 'add', stale])
    expect(await removeStaleNamespaces()).toContain(stale)
    expect(namespaces()).not.toContain(stale)
  })
})

/**
 * A private network for tests and benchmarks that need a real one: each node in its own network
 * namespace at 10.10.10.<i>/24, a client namespace at 10.10.10.100, all joined by veth pairs to a
 * bridge that lives in a namespace of its own. Nothing is created in the root namespace, and the
 * addresses exist only inside the namespaces. Needs root and Debian's iproute2 and iptables (see
 * scripts/prepare.mjs); `netnsUnavailable()` says why not where it cannot be made.
 *
 * Links are shaped on the receiving side of each namespace (packets arriving on its eth0):
 * - loss: an iptables `statistic` rule drops that share of arriving packets (in the kernel);
 * - delay: this kernel has no sch_netem (`tc qdisc ... netem` answers "unknown"), so an iptables
 *   NFQUEUE rule hands each arriving packet to fixtures/link-delay.py, run inside the namespace,
 *   which lets it through `delayMs` later. It adds about 0.1 ms of its own per packet: measure the
 *   round trip (`probeRtt`) rather than assume it.
 * With every namespace shaped alike, `delayMs` is the delay each way and 2 x `delayMs` a round trip.
 * - a partition: `cut(i)` takes node i's port on the bridge down, which drops everything in both
 *   directions, silently for the far side (the node's end sees its carrier go); `heal(i)` brings
 *   it back.
 *
 * Names share the prefix `cp<pid>-<n>-`, so what a crashed run left behind is found and removed by
 * the next one (`removeStaleNamespaces`, run by `create`): namespaces whose process is gone.
 *
 * @example
 * const net = await NetnsNetwork.create({ nodes: 3, link: { delayMs: 1, lossPercent: 1 } })
 * try {
 *   const child = net.spawn(net.nodeNamespace(1), 'node', ['server.js'])
 *   await net.cut(1)
 *   await net.heal(1)
 * } finally {
 *   await net.destroy()
 * }
 */
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { once } from 'node:events'
import path from 'node:path'
import { promisify } from 'node:util'
import { FIXTURES } from './child.js'

const run = promisify(execFile)
const PREFIX = 'cp'
const SUBNET = '10.10.10'
const CLIENT = 100
const DELAYER = path.join(FIXTURES, 'link-delay.py')

export interface LinkShape {
  /** Added to every packet arriving on the link, in ms. @default 0 */
  delayMs?: number
  /** Share of arriving packets dropped, in percent. @default 0 */
  lossPercent?: number
}

/** The node number or 'client'. */
export type Endpoint = number | 'client'

/**
 * Why namespaces cannot be made here (not root, no `ip`), or null when they can. Synchronous, for
 * a `describe.skip` chosen when a test file loads.
 */
export function netnsUnavailable(): string | null {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`
  if (process.getuid?.() !== 0) return 'network namespaces need root (ip netns add)'
  const probe = `${PREFIX}${process.pid}-probe`
  try {
    execFileSync('ip', ['netns', 'add', probe], { stdio: 'pipe' })
    execFileSync('ip', ['netns', 'del', probe], { stdio: 'pipe' })
    return null
  } catch (error) {
    const reason = (error as { stderr?: Buffer }).stderr?.toString().trim() || (error as Error).message
    return `ip netns add failed (${reason}): install iproute2 (node scripts/prepare.mjs test)`
  }
}

/**
 * Removes the namespaces of earlier runs whose process is gone (names `cp<pid>-...`), and the
 * processes still running inside them: everything there was started by this harness.
 */
export async function removeStaleNamespaces(): Promise<string[]> {
  const removed: string[] = []
  for (const name of await listNamespaces()) {
    const owner = /^cp(\d+)-/.exec(name)?.[1]
    if (owner === undefined || isAlive(Number(owner))) continue
    await removeNamespace(name)
    removed.push(name)
  }
  return removed
}

let networks = 0

export class NetnsNetwork {
  /** Every namespace name of this network starts with it. */
  readonly prefix: string
  readonly nodes: number
  readonly #bridge: string
  readonly #delayers = new Map<string, ChildProcess>()
  readonly #children = new Set<ChildProcess>()
  #queue = 0
  #destroyed = false

  private constructor(nodes: number) {
    this.nodes = nodes
    this.prefix = `${PREFIX}${process.pid}-${++networks}-`
    this.#bridge = `${this.prefix}br`
  }

  /** Builds the network: nodes 1..`nodes` and the client, each link shaped as `link` (the client's too). */
  static async create(options: { nodes: number; link?: LinkShape }): Promise<NetnsNetwork> {
    if (!Number.isInteger(options.nodes) || options.nodes < 1 || options.nodes > 99) {
      throw new RangeError(`nodes: expected an integer from 1 to 99, got ${options.nodes}`)
    }
    await removeStaleNamespaces()
    const network = new NetnsNetwork(options.nodes)
    try {
      await network.#build()
      if (options.link) for (const endpoint of network.endpoints) await network.shape(endpoint, options.link)
    } catch (error) {
      await network.destroy()
      throw error
    }
    return network
  }

  /** Every endpoint: the nodes 1..n and 'client'. */
  get endpoints(): Endpoint[] {
    return [...Array.from({ length: this.nodes }, (_, i) => i + 1), 'client']
  }

  namespace(endpoint: Endpoint): string {
    return `${this.prefix}${endpoint === 'client' ? 'client' : `n${endpoint}`}`
  }

  /** 10.10.10.<i> for node i, 10.10.10.100 for the client: addresses that exist only in the namespaces. */
  address(endpoint: Endpoint): string {
    return `${SUBNET}.${endpoint === 'client' ? CLIENT : endpoint}`
  }

  /** The bridge's port for an endpoint (in the bridge's namespace). */
  #port(endpoint: Endpoint): string {
    return endpoint === 'client' ? 'pc' : `p${endpoint}`
  }

  async #build(): Promise<void> {
    await run('ip', ['netns', 'add', this.#bridge])
    await ip(this.#bridge, 'link', 'set', 'lo', 'up')
    await ip(this.#bridge, 'link', 'add', 'br0', 'type', 'bridge')
    await ip(this.#bridge, 'link', 'set', 'br0', 'up')
    for (const endpoint of this.endpoints) {
      const ns = this.namespace(endpoint)
      await run('ip', ['netns', 'add', ns])
      await ip(ns, 'link', 'set', 'lo', 'up')
      await ip(ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', this.#port(endpoint), 'netns', this.#bridge)
      await ip(this.#bridge, 'link', 'set', this.#port(endpoint), 'master', 'br0', 'up')
      await ip(ns, 'addr', 'add', `${this.address(endpoint)}/24`, 'dev', 'eth0')
      await ip(ns, 'link', 'set', 'eth0', 'up')
    }
  }

  /**
   * Shapes what arrives on an endpoint's link (replacing an earlier shape). Each shaped namespace
   * runs its own delayer; the rules go in before the old delayer stops, so no packet waits on a
   * queue nobody reads for longer than that switch.
   */
  async shape(endpoint: Endpoint, shape: LinkShape): Promise<void> {
    const ns = this.namespace(endpoint)
    const delayMs = shape.delayMs ?? 0
    const lossPercent = shape.lossPercent ?? 0
    if (!(delayMs >= 0 && delayMs <= 10_000)) throw new RangeError(`delayMs: expected 0 to 10000, got ${delayMs}`)
    if (!(lossPercent >= 0 && lossPercent <= 100)) throw new RangeError(`lossPercent: expected 0 to 100, got ${lossPercent}`)
    const old = this.#delayers.get(ns)
    this.#delayers.delete(ns)
    const queue = ++this.#queue
    if (delayMs > 0) this.#delayers.set(ns, await this.#startDelayer(ns, queue, delayMs))
    await iptables(ns, '-F', 'INPUT')
    if (lossPercent > 0) {
      const probability = String(lossPercent / 100)
      await iptables(ns, '-A', 'INPUT', '-i', 'eth0', '-m', 'statistic', '--mode', 'random', '--probability', probability, '-j', 'DROP')
    }
    if (delayMs > 0) await iptables(ns, '-A', 'INPUT', '-i', 'eth0', '-j', 'NFQUEUE', '--queue-num', String(queue))
    if (old) await stop(old)
  }

  async #startDelayer(ns: string, queue: number, delayMs: number): Promise<ChildProcess> {
    const child = spawn('ip', ['netns', 'exec', ns, 'python3', DELAYER, String(queue), String(delayMs)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    const ready = new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('ready')) resolve()
      })
      child.once('error', reject)
      child.once('exit', (code, signal) => reject(new Error(`link-delay.py in ${ns} exited (${code ?? signal}) before it was ready`)))
    })
    try {
      await ready
    } catch (error) {
      await stop(child)
      throw error
    }
    return child
  }

  /** A partition: node i's port on the bridge goes down; nothing passes either way until `heal(i)`. */
  async cut(endpoint: Endpoint): Promise<void> {
    await ip(this.#bridge, 'link', 'set', this.#port(endpoint), 'down')
  }

  async heal(endpoint: Endpoint): Promise<void> {
    await ip(this.#bridge, 'link', 'set', this.#port(endpoint), 'up')
  }

  /**
   * `spawn` inside an endpoint's namespace (through `ip netns exec`, which execs the command in
   * place, so the pid and an IPC channel are the command's own). Killed by `destroy` if still running.
   */
  spawn(endpoint: Endpoint, command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.namespace(endpoint), command, ...args], options)
    this.track(child)
    return child
  }

  /** `fork` options that run a Node script inside an endpoint's namespace, IPC included. */
  forkOptions(endpoint: Endpoint, nodeArgs: readonly string[] = ['--import', 'tsx']): { execPath: string; execArgv: string[] } {
    return { execPath: 'ip', execArgv: ['netns', 'exec', this.namespace(endpoint), process.execPath, ...nodeArgs] }
  }

  /** Kills a process started elsewhere in one of these namespaces at `destroy`, if still running. */
  track(child: ChildProcess): void {
    this.#children.add(child)
    child.once('exit', () => this.#children.delete(child))
  }

  /** Removes everything: the processes started here, the delayers, then every namespace. Idempotent. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return
    this.#destroyed = true
    await Promise.all([...this.#children].map(stop))
    await Promise.all([...this.#delayers.values()].map(stop))
    this.#delayers.clear()
    const mine = (await listNamespaces()).filter((name) => name.startsWith(this.prefix))
    for (const name of mine) await removeNamespace(name)
  }
}

/**
 * The round trip of a TCP exchange (1 byte each way) from one endpoint to another, in ms: the median
 * of `count`, the link's real delay with the delayer's own cost in it.
 */
export async function probeRtt(network: NetnsNetwork, from: Endpoint, to: Endpoint, count = 50): Promise<number> {
  const port = 7999
  const server = network.spawn(
    to,
    process.execPath,
    [
      '-e',
      `require('node:net').createServer((s) => s.on('data', (d) => s.write(d))).listen(${port}, '${network.address(to)}', () => console.log('ready'))`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  try {
    await new Promise<void>((resolve) => server.stdout!.on('data', () => resolve()))
    const client = network.spawn(
      from,
      process.execPath,
      [
        '-e',
        `const s = require('node:net').connect(${port}, '${network.address(to)}', async () => {
        s.setNoDelay(true); const t = []
        for (let i = 0; i < ${count}; i++) { const a = process.hrtime.bigint(); s.write('x'); await new Promise((r) => s.once('data', r)); t.push(Number(process.hrtime.bigint() - a) / 1e6) }
        t.sort((a, b) => a - b); console.log(t[Math.floor(t.length / 2)]); s.destroy() })`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    )
    let out = ''
    client.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()))
    const [code] = (await once(client, 'exit')) as [number | null]
    if (code !== 0) throw new Error(`RTT probe from ${String(from)} to ${String(to)} exited with ${code}`)
    return Number(out.trim())
  } finally {
    await stop(server)
  }
}

async function ip(ns: string, ...args: string[]): Promise<void> {
  await run('ip', ['-n', ns, ...args])
}

async function iptables(ns: string, ...args: string[]): Promise<void> {
  try {
    await run('ip', ['netns', 'exec', ns, 'iptables', '-w', ...args])
  } catch (error) {
    const reason = (error as { stderr?: string }).stderr?.trim() || (error as Error).message
    throw new Error(`iptables ${args.join(' ')} in ${ns} failed (${reason}): install iptables (node scripts/prepare.mjs test)`, {
      cause: error,
    })
  }
}

async function listNamespaces(): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list'])
  return stdout
    .split('\n')
    .map((line) => line.split(' ')[0]!.trim())
    .filter((name) => name.startsWith(PREFIX) && /^cp\d+-/.test(name))
}

/** Kills what still runs in a namespace of ours, then deletes it (its veths go with it). */
async function removeNamespace(name: string): Promise<void> {
  const { stdout } = await run('ip', ['netns', 'pids', name]).catch(() => ({ stdout: '' }))
  for (const pid of stdout
    .split('\n')
    .map(Number)
    .filter((pid) => pid > 0)) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // Gone already.
    }
  }
  await run('ip', ['netns', 'del', name]).catch(() => undefined)
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGKILL')
  await exited
}

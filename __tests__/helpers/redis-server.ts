import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { freePort } from './child.js'
import { WatchedProcess } from './process-lines.js'

/**
 * A real redis-server of the test's own, on a free loopback port, keeping nothing on disk; never the
 * Redis some other program runs on this machine. `kill()` and `start()` again on the same port are
 * a Redis outage and its end.
 */
export class RedisServer {
  readonly host = '127.0.0.1'
  readonly port: number
  #process: WatchedProcess | undefined

  private constructor(port: number) {
    this.port = port
  }

  static async start(): Promise<RedisServer> {
    const server = new RedisServer(await freePort())
    await server.start()
    return server
  }

  get url(): string {
    return `redis://${this.host}:${this.port}`
  }

  /** Starts (again) on the same port; resolves once it accepts connections. */
  async start(): Promise<void> {
    const args = [
      '--port',
      String(this.port),
      '--bind',
      this.host,
      '--save',
      '',
      '--appendonly',
      'no',
      '--protected-mode',
      'no',
      '--loglevel',
      'notice',
    ]
    this.#process = new WatchedProcess('redis-server', args, { stdio: 'pipe' })
    await this.#process.waitFor(/Ready to accept connections/, 10_000)
  }

  /** SIGKILL: the outage a crash is. Everything it held is gone (it keeps nothing on disk). */
  async kill(): Promise<void> {
    await this.#process?.kill('SIGKILL')
    this.#process = undefined
  }

  async stop(): Promise<void> {
    await this.#process?.kill('SIGTERM')
    this.#process = undefined
  }
}

/**
 * A Redis Cluster of the test's own: three masters on free loopback ports, slots spread over them
 * with redis-cli, nothing on disk but the cluster's own node files in a temporary folder.
 */
export class RedisClusterServers {
  readonly nodes: Array<{ host: string; port: number }>
  readonly #processes: WatchedProcess[]
  readonly #folder: string

  private constructor(nodes: Array<{ host: string; port: number }>, processes: WatchedProcess[], folder: string) {
    this.nodes = nodes
    this.#processes = processes
    this.#folder = folder
  }

  static async start(count = 3): Promise<RedisClusterServers> {
    const folder = await mkdtemp(path.join(tmpdir(), 'connect-peer-redis-cluster-'))
    const nodes: Array<{ host: string; port: number }> = []
    const processes: WatchedProcess[] = []
    for (let i = 0; i < count; i++) {
      const port = await freePort()
      const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--cluster-enabled', 'yes']
      const server = new WatchedProcess('redis-server', [...args, '--cluster-config-file', `nodes-${port}.conf`], { cwd: folder })
      await server.waitFor(/Ready to accept connections/, 10_000)
      nodes.push({ host: '127.0.0.1', port })
      processes.push(server)
    }
    const cluster = new RedisClusterServers(nodes, processes, folder)
    const create = new WatchedProcess(
      'redis-cli',
      ['--cluster', 'create', ...nodes.map(({ host, port }) => `${host}:${port}`), '--cluster-replicas', '0', '--cluster-yes'],
      {},
    )
    await create.waitFor(/All 16384 slots covered/, 20_000)
    await create.exited
    // Every master must see the cluster as up before clients use it.
    for (const server of processes) await server.waitFor(/Cluster state changed: ok/, 20_000)
    return cluster
  }

  async stop(): Promise<void> {
    await Promise.all(this.#processes.map((server) => server.kill('SIGTERM')))
    await rm(this.#folder, { recursive: true, force: true })
  }
}

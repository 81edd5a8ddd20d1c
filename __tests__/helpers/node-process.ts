import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import path from 'node:path'
import type { PeerStoreOptions } from '../../lib/index.js'
import { FIXTURES, ROOT } from './child.js'
import { EventLog } from './event-log.js'
import { FaultProxy } from './fault-proxy.js'
import { FAST } from './sessions.js'

const FIXTURE = path.join(FIXTURES, 'cluster-node.main.ts')

/** Options of every node process unless its spec says otherwise: FAST, quick connect attempts, quick touch batches. */
const NODE_DEFAULTS: PeerStoreOptions = { ...FAST, connectTimeout: 500, touchFlushInterval: 20 }

/** What a node process is started with: fixtures/cluster-node.main.ts reads it from NODE_CONFIG (JSON). */
export interface NodeConfig {
  /** Peers as `{ host, port, nodeId }`; may point at a fault proxy instead of the node itself. */
  peers: { host: string; port: number; nodeId: string }[]
  options: PeerStoreOptions
  /** Sessions to write right after construction, before the node is connected: `${prefix}-${i}`. */
  preload?: { prefix: string; count: number; bytes?: number }
  /** Cap of the reconnect backoff, in ms. */
  retryCapMs?: number
  /** On the first peer:up, read this id at once and report whether the node was still syncing. */
  probeOnUp?: string
  /** Right at start, before any peer is connected, read this id and report whether it was found. */
  probeAtStart?: string
  /** A Redis Cluster for the Redis tier: the node makes an ioredis Cluster client of these. */
  redisCluster?: { host: string; port: number }[]
  /** The `principal` option as the name of a session key (functions cannot travel as JSON): `(s) => s[principalKey]`. */
  principalKey?: string
  /** Forward `session:created`, `session:destroyed` and `session:expired` as events (with the node's id). */
  sessionEvents?: boolean
}

export interface NodeSpec extends Pick<
  NodeConfig,
  'peers' | 'preload' | 'probeOnUp' | 'probeAtStart' | 'redisCluster' | 'principalKey' | 'sessionEvents'
> {
  nodeId: string
  host: string
  port: number
  options?: PeerStoreOptions
  /**
   * Run this compiled copy of the library (its `dist/` directory) instead of lib/: an older
   * release, for the rolling-upgrade test (see helpers/previous-protocol.ts). Its dependencies
   * resolve from this repository's node_modules.
   */
  dist?: string
}

export interface NodeEvent {
  event: string
  [key: string]: unknown
}

const running = new Set<NodeProcess>()

/** Kills every node a test left running; call from afterEach. */
export async function killAll(): Promise<void> {
  await Promise.all([...running].map((node) => node.kill()))
}

/**
 * A PeerStore node in its own process (fixtures/cluster-node.main.ts), on its own loopback address,
 * driven over IPC. Only the test commands travel over IPC; replication goes over real TCP between
 * the processes.
 */
export class NodeProcess {
  readonly spec: NodeSpec
  readonly #child: ChildProcess
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>()
  readonly #events = new EventLog<NodeEvent>()
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  #nextId = 1

  private constructor(spec: NodeSpec) {
    this.spec = spec
    const { nodeId, host, port, peers, options, preload, probeOnUp, probeAtStart, redisCluster, principalKey, sessionEvents, dist } = spec
    // Reconnect backoff capped at 500 ms (functions cannot travel to the child as JSON).
    const config: NodeConfig = {
      peers,
      options: { ...NODE_DEFAULTS, ...options, nodeId, listen: `${host}:${port}` },
      preload,
      probeOnUp,
      probeAtStart,
      redisCluster,
      principalKey,
      sessionEvents,
      retryCapMs: 500,
    }
    this.#child = fork(FIXTURE, [], {
      cwd: ROOT,
      execArgv: ['--import', 'tsx'],
      env: {
        ...process.env,
        NODE_CONFIG: JSON.stringify(config, (_key, value) => (value === undefined ? undefined : value)),
        ...(dist && { CONNECT_PEER_DIST: dist, NODE_PATH: path.join(ROOT, 'node_modules') }),
      },
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    running.add(this)
    this.exited = once(this.#child, 'exit').then(([code, signal]) => {
      running.delete(this)
      for (const { reject } of this.#pending.values()) reject(new Error(`${nodeId} exited (${signal ?? code})`))
      this.#pending.clear()
      return { code: code as number | null, signal: signal as NodeJS.Signals | null }
    })
    this.#child.on('message', (message: NodeEvent & { id?: number; result?: unknown; error?: { message: string; code?: string } }) => {
      if (message.id !== undefined) {
        const pending = this.#pending.get(message.id)
        this.#pending.delete(message.id)
        if (message.error) pending?.reject(Object.assign(new Error(message.error.message), { code: message.error.code }))
        else pending?.resolve(message.result)
        return
      }
      this.#events.push(message)
    })
  }

  /** Starts a node and resolves once its replication port is open. */
  static async start(spec: NodeSpec): Promise<NodeProcess> {
    const node = new NodeProcess(spec)
    const ready = await node.waitFor((event) => event.event === 'ready' || event.event === 'failed', 30_000)
    if (ready.event === 'failed') throw new Error(`${spec.nodeId} failed to start: ${String(ready.message)}`)
    return node
  }

  /** Every event the node has reported so far (replies to calls excepted). */
  get events(): readonly NodeEvent[] {
    return this.#events.entries
  }

  get nodeId(): string {
    return this.spec.nodeId
  }

  get pid(): number {
    return this.#child.pid!
  }

  call<T = unknown>(cmd: string, ...args: unknown[]): Promise<T> {
    const id = this.#nextId++
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject })
      this.#child.send({ id, cmd, args })
    })
  }

  /**
   * Resolves with the first event (already received, or yet to come) that matches; rejects after
   * `timeoutMs` with the events seen so far, so a failure says what did happen.
   */
  waitFor(match: (event: NodeEvent) => boolean, timeoutMs = 15_000, since = 0): Promise<NodeEvent> {
    return this.#events.waitFor(match, timeoutMs, since, () => {
      const recent = this.events.slice(-15).map((event) => JSON.stringify(event).slice(0, 160))
      return `${this.nodeId}: no matching event within ${timeoutMs} ms; last events:\n${recent.join('\n')}`
    })
  }

  /** Waits for a membership state of `peer`, as seen by this node. */
  waitForPeer(peer: string, state: string, since = 0, timeoutMs = 15_000): Promise<NodeEvent> {
    return this.waitFor(
      (event) =>
        event.event === 'peer:state' &&
        (event.member as { nodeId: string }).nodeId === peer &&
        (event.member as { state: string }).state === state,
      timeoutMs,
      since,
    )
  }

  /** Waits for this node to finish a synchronisation with `peer`. */
  waitForSync(peer: string, since = 0, timeoutMs = 30_000): Promise<NodeEvent> {
    return this.waitFor((event) => event.event === 'sync' && event.peer === peer, timeoutMs, since)
  }

  /** Waits until a change to `sid` from a peer has been applied here. */
  waitForReplicated(sid: string, change: string, since = 0, timeoutMs = 15_000): Promise<NodeEvent> {
    return this.waitFor((event) => event.event === 'session:replicated' && event.sid === sid && event.change === change, timeoutMs, since)
  }

  /** The number of events so far: pass it as `since` to wait only for later ones. */
  get mark(): number {
    return this.events.length
  }

  /** Closes the store gracefully and waits for the process to exit. */
  async stop(): Promise<void> {
    if (!running.has(this)) return
    await this.call('close').catch(() => undefined)
    await this.exited
  }

  /** Kills the process (SIGKILL by default: no goodbye, no flush) and waits for it to be gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!running.has(this)) return
    this.#child.kill(signal)
    await this.exited
  }
}

/**
 * Two nodes that reach each other only through fault proxies, so a test can cut them apart (a
 * partition) and let them meet again. Each node's port + 1000 is the proxy in front of it.
 */
export async function partitionablePair(a: Omit<NodeSpec, 'peers'>, b: Omit<NodeSpec, 'peers'>) {
  const toA = await FaultProxy.start({ host: a.host, port: a.port + 1000 }, { host: a.host, port: a.port })
  const toB = await FaultProxy.start({ host: b.host, port: b.port + 1000 }, { host: b.host, port: b.port })
  const [was1, was2] = await Promise.all([
    NodeProcess.start({ ...a, peers: [{ host: b.host, port: b.port + 1000, nodeId: b.nodeId }] }),
    NodeProcess.start({ ...b, peers: [{ host: a.host, port: a.port + 1000, nodeId: a.nodeId }] }),
  ])
  await Promise.all([was1.waitForSync(b.nodeId), was2.waitForSync(a.nodeId)])
  return {
    was1,
    was2,
    /** Cuts every connection between the two and waits until each has declared the other dead. */
    async partition(): Promise<void> {
      toA.cut()
      toB.cut()
      await Promise.all([was1.waitForPeer(b.nodeId, 'dead', was1.mark), was2.waitForPeer(a.nodeId, 'dead', was2.mark)])
    },
    /** Lets them meet again and waits until each has synchronised with the other. */
    async heal(): Promise<void> {
      const marks = [was1.mark, was2.mark]
      toA.restore()
      toB.restore()
      await Promise.all([was1.waitForSync(b.nodeId, marks[0]), was2.waitForSync(a.nodeId, marks[1])])
    },
    async close(): Promise<void> {
      await Promise.all([was1.kill(), was2.kill()])
      await Promise.all([toA.close(), toB.close()])
    },
  }
}

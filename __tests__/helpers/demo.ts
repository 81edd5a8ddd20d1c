import { readFileSync } from 'node:fs'
import { connect } from 'node:net'
import path from 'node:path'
import { ROOT } from './child.js'
import { EXAMPLE } from './demo-nodes.js'
import { WatchedProcess } from './process-lines.js'

/**
 * Where a test's demo listens: addresses of 127.0.7.x or 127.0.19.x only (never the real demo's
 * 127.0.0.1:3000 and 127.0.0.11/.12), a few per test file so that files can run side by side.
 */
export interface DemoAddresses {
  /** The balancer's address (DEMO_HOST), and the nodes' on the fallback. */
  readonly host: string
  /** The nodes' addresses (DEMO_HOSTS). */
  readonly hosts: readonly [string, string]
  readonly balancer: number
  readonly http: number
  readonly replication: number
}

export function demoEnv(at: DemoAddresses, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DEMO_HOST: at.host,
    DEMO_HOSTS: at.hosts.join(','),
    DEMO_PORT: String(at.balancer),
    DEMO_HTTP_PORT: String(at.http),
    DEMO_REPLICATION_PORT: String(at.replication),
    ...extra,
  }
}

/** The demo's own process (what `npm run demo` runs after its prepare step), not yet waited on. */
export function spawnDemo(at: DemoAddresses, extra: NodeJS.ProcessEnv = {}, entry = path.join(EXAMPLE, 'demo.ts')): WatchedProcess {
  return new WatchedProcess(process.execPath, ['--import', 'tsx', entry], { cwd: ROOT, env: demoEnv(at, extra) })
}

/** Resolves once the demo says where to open it and both nodes are up and see each other. */
export async function demoReady(demo: WatchedProcess, at: DemoAddresses): Promise<WatchedProcess> {
  await demo.waitFor(new RegExp(`\\[demo\\] open http://${at.host.replace(/\./g, '\\.')}:${at.balancer}/`), 60_000)
  await Promise.all([demo.waitFor(/\[was1\] peer was2 is up/), demo.waitFor(/\[was2\] peer was1 is up/)])
  await Promise.all([demo.waitFor(/\[was1\] web on/), demo.waitFor(/\[was2\] web on/)])
  return demo
}

export async function startDemo(at: DemoAddresses, extra: NodeJS.ProcessEnv = {}): Promise<WatchedProcess> {
  return demoReady(spawnDemo(at, extra), at)
}

/** The key that kills or restarts a node in the demo. */
export const keyOf = (nodeId: string) => (nodeId === 'was1' ? '1' : '2')

/** The pids of the nodes the demo started, from its "starting was1 (pid 123)" lines. */
export function nodePids(demo: WatchedProcess): number[] {
  return demo.lines.flatMap((line) => {
    const match = /^\[demo\] starting was[12] \(pid (\d+)\)/.exec(line)
    return match ? [Number(match[1])] : []
  })
}

/** Whether a process runs (a zombie, exited but not yet reaped by whoever adopted it, does not). */
export function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

/** Whether nothing accepts connections at host:port. */
export function refused(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(false)
    })
    socket.once('error', () => resolve(true))
  })
}

/** Every address a demo listens on: the balancer, and both nodes' web and replication ports. */
export function demoListeners(at: DemoAddresses): [string, number][] {
  return [
    [at.host, at.balancer],
    ...at.hosts.flatMap((host): [string, number][] => [
      [host, at.http],
      [host, at.replication],
    ]),
  ]
}

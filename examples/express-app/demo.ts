/**
 * `npm run demo`: two nodes of the example app as separate processes, on 127.0.0.11 and 127.0.0.12
 * (replication port 4055 each, as in the seed's Tomcat setup), behind a sticky load balancer on
 * http://127.0.0.1:3000. Keys: 1 / 2 kill or restart a node, q (or Ctrl-C) stops everything.
 * Without a terminal (stdin not a TTY), the same commands are read as lines.
 *
 * Where 127.0.0.11/.12 do not exist (macOS), both nodes run on 127.0.0.1 with ports of their own.
 * Every port is checked before anything starts; the environment variables that move them are in
 * demo-plan.ts. The nodes never outlive the demo: they are stopped on every way out of it, and
 * notice through their IPC channel if it is killed outright.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import readline from 'node:readline'
import { startBalancer, type Balancer } from './balancer.js'
import { DemoSetupError, planDemo, type DemoNodePlan } from './demo-plan.js'

const SECRET = process.env.CLUSTER_SECRET ?? 'demo secret: replace me with openssl rand -base64 32'
/** How long a node may take to stop on SIGTERM before it is killed. */
const STOP_TIMEOUT_MS = 5000

interface DemoNode extends DemoNodePlan {
  /** The other node's replication address, as PEERS wants it. */
  readonly peer: string
  child?: ChildProcess
}

let nodes: DemoNode[] = []
let balancer: Balancer | undefined
/** Set once both nodes answered a health check: from then on a node that stops is news, not a failure. */
let ready = false
let stopping: Promise<void> | undefined

// Every way out stops the nodes first. SIGKILL cannot be caught: server.ts watches the IPC channel.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void shutdown(0))
process.on('uncaughtException', (error) => fatal(error))
process.on('unhandledRejection', (error) => fatal(error))
// Last resort, if something calls process.exit() before shutdown() has run: no orphans.
process.on('exit', () => nodes.forEach((node) => node.child?.kill('SIGKILL')))

function startNode(node: DemoNode, note = ''): void {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'server.ts')], {
    env: {
      ...process.env,
      NODE_ID: node.nodeId,
      LISTEN: `${node.host}:${node.replicationPort}`,
      PEERS: node.peer,
      CLUSTER_SECRET: SECRET,
      HOST: node.host,
      PORT: String(node.httpPort),
    },
    // The IPC channel ties the node to the demo: if the demo dies, even by SIGKILL, the node stops too.
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  node.child = child
  say(`starting ${node.nodeId} (pid ${child.pid})${note}`)
  child.once('exit', (code, signal) => {
    if (node.child === child) node.child = undefined
    if (stopping) return
    if (!ready) {
      say(`${node.nodeId} could not start (${signal ?? `exit ${code}`}): see its message above`)
      void shutdown(1)
    } else {
      say(`${node.nodeId} stopped (${signal ?? `exit ${code}`}). Press ${node.key} to start it again.`)
    }
  })
}

function toggle(node: DemoNode): void {
  if (node.child) {
    say(`killing ${node.nodeId} (SIGKILL: no goodbye, no flush, like a crash)`)
    node.child.kill('SIGKILL')
  } else {
    startNode(node, ': it will receive every session from its peer')
  }
}

/** Stops the nodes (SIGTERM, then SIGKILL if one hangs) and the balancer, then exits. Idempotent. */
function shutdown(code: number): Promise<void> {
  stopping ??= (async () => {
    say('stopping...')
    await Promise.all(nodes.map(stopNode))
    await balancer?.close()
    say('stopped.')
    process.exit(code)
  })()
  return stopping
}

function stopNode(node: DemoNode): Promise<void> {
  const child = node.child
  if (!child) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill('SIGTERM')
  })
}

function fatal(error: unknown): void {
  console.error('[demo] unexpected error:', error)
  void shutdown(1)
}

function say(message: string): void {
  console.log(`[demo] ${message}`)
}

async function main(): Promise<void> {
  const plan = await planDemo()
  if (plan.fallback) say(plan.fallback)
  const [first, second] = plan.nodes
  nodes = [
    { ...first, peer: `${second.nodeId}@${second.host}:${second.replicationPort}` },
    { ...second, peer: `${first.nodeId}@${first.host}:${first.replicationPort}` },
  ]
  const front = `http://${plan.balancer.host}:${plan.balancer.port}/`
  // The balancer first: it is the port a user is most likely to have taken, and it owns no child.
  balancer = await startBalancer({
    ...plan.balancer,
    backends: nodes.map((node) => ({ name: node.nodeId, host: node.host, port: node.httpPort })),
    intervalMs: 500,
    onChange: (name, isUp) => {
      if (ready) say(`balancer: ${name} is ${isUp ? 'up' : 'down'}`)
    },
  }).catch((error: NodeJS.ErrnoException) => {
    // Free a moment ago (planDemo checked), taken since.
    if (error.code === 'EADDRINUSE') throw new DemoSetupError(`${front} was taken just now: stop what uses it or set DEMO_PORT`)
    throw error
  })
  for (const node of nodes) startNode(node)
  await balancer.allHealthy()
  if (stopping) return
  ready = true
  const where = nodes.map((node) => `${node.nodeId} on http://${node.host}:${node.httpPort}`).join(' and ')
  say(`open ${front} (the load balancer; the nodes are ${where})`)
  say('press +1 a few times, then kill the node that served you and reload: the counter carries on.')
  say(`also: ${front}sessions (log in, your sessions, log out everywhere), ${front}cluster (the status page), ${front}metrics`)
  say('keys: 1 = kill/restart was1, 2 = kill/restart was2, q or Ctrl-C = stop everything')
  readCommands()
}

function readCommands(): void {
  const command = (input: string) => {
    const node = nodes.find((each) => each.key === input)
    if (node) toggle(node)
    else if (input === 'q') void shutdown(0)
  }
  if (process.stdin.isTTY) {
    readline.emitKeypressEvents(process.stdin)
    process.stdin.setRawMode(true)
    process.stdin.on('keypress', (text: string, key: { ctrl?: boolean; name?: string }) => {
      // Raw mode turns Ctrl-C into a key, not a SIGINT.
      if (key.ctrl && key.name === 'c') void shutdown(0)
      else command(text)
    })
  } else {
    readline.createInterface({ input: process.stdin }).on('line', (line) => command(line.trim()))
  }
}

main().catch((error: unknown) => {
  if (!(error instanceof DemoSetupError)) return fatal(error)
  // Nothing was started: one line saying what to do, no stack trace.
  console.error(`[demo] ${error.message}`)
  process.exit(1)
})

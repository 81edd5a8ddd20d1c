/**
 * `npm run demo`: two nodes of the example app as separate processes, on 127.0.0.11 and 127.0.0.12
 * (replication port 4055 each, as in the seed's Tomcat setup), behind a sticky load balancer on
 * http://127.0.0.1:3000. Keys: 1 / 2 kill or restart a node, q (or Ctrl-C) stops everything.
 * Without a terminal (stdin not a TTY), the same commands are read as lines.
 *
 * DEMO_PORT, DEMO_HTTP_PORT and DEMO_REPLICATION_PORT move the ports (the tests use them).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import readline from 'node:readline'
import { startBalancer, type Balancer } from './balancer.js'

const BALANCER_PORT = Number(process.env.DEMO_PORT ?? 3000)
const HTTP_PORT = Number(process.env.DEMO_HTTP_PORT ?? 3001)
const REPLICATION_PORT = Number(process.env.DEMO_REPLICATION_PORT ?? 4055)
const SECRET = process.env.CLUSTER_SECRET ?? 'demo secret: replace me with openssl rand -base64 32'

interface DemoNode {
  readonly key: '1' | '2'
  readonly nodeId: string
  readonly host: string
  readonly peer: string
  child?: ChildProcess
}

const nodes: DemoNode[] = [
  { key: '1', nodeId: 'was1', host: '127.0.0.11', peer: `was2@127.0.0.12:${REPLICATION_PORT}` },
  { key: '2', nodeId: 'was2', host: '127.0.0.12', peer: `was1@127.0.0.11:${REPLICATION_PORT}` },
]

function startNode(node: DemoNode): void {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'server.ts')], {
    env: {
      ...process.env,
      NODE_ID: node.nodeId,
      LISTEN: `${node.host}:${REPLICATION_PORT}`,
      PEERS: node.peer,
      CLUSTER_SECRET: SECRET,
      HOST: node.host,
      PORT: String(HTTP_PORT),
    },
    // The IPC channel ties the node to the demo: if the demo dies, the node stops too.
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  node.child = child
  child.once('exit', (code, signal) => {
    if (node.child === child) node.child = undefined
    if (!stopping) say(`${node.nodeId} stopped (${signal ?? `exit ${code}`}). Press ${node.key} to start it again.`)
  })
}

function toggle(node: DemoNode): void {
  if (node.child) {
    say(`killing ${node.nodeId} (SIGKILL: no goodbye, no flush, like a crash)`)
    node.child.kill('SIGKILL')
  } else {
    say(`starting ${node.nodeId}: it will receive every session from its peer`)
    startNode(node)
  }
}

let stopping = false
async function stop(): Promise<void> {
  if (stopping) return
  stopping = true
  say('stopping...')
  await Promise.all(
    nodes.map(
      (node) =>
        new Promise<void>((resolve) => {
          if (!node.child) return resolve()
          node.child.once('exit', () => resolve())
          node.child.kill('SIGTERM')
        }),
    ),
  )
  await balancer.close()
  say('stopped.')
  process.exit(0)
}

function say(message: string): void {
  console.log(`[demo] ${message}`)
}

let balancer: Balancer
/** Set once both nodes answered a health check: from then on the balancer's view is news. */
let ready = false

async function main(): Promise<void> {
  nodes.forEach(startNode)
  balancer = await startBalancer({
    host: '127.0.0.1',
    port: BALANCER_PORT,
    backends: nodes.map((node) => ({ name: node.nodeId, host: node.host, port: HTTP_PORT })),
    intervalMs: 500,
    onChange: (name, isUp) => {
      if (ready) say(`balancer: ${name} is ${isUp ? 'up' : 'down'}`)
    },
  })
  await balancer.allHealthy()
  ready = true
  const where = nodes.map((node) => `${node.nodeId} on http://${node.host}:${HTTP_PORT}`).join(' and ')
  say(`open http://127.0.0.1:${BALANCER_PORT}/ (the load balancer; the nodes are ${where})`)
  say('press +1 a few times, then kill the node that served you and reload: the counter carries on.')
  say('keys: 1 = kill/restart was1, 2 = kill/restart was2, q or Ctrl-C = stop everything')

  process.once('SIGINT', () => void stop())
  process.once('SIGTERM', () => void stop())
  const command = (input: string) => {
    const node = nodes.find((each) => each.key === input)
    if (node) toggle(node)
    else if (input === 'q') void stop()
  }
  if (process.stdin.isTTY) {
    readline.emitKeypressEvents(process.stdin)
    process.stdin.setRawMode(true)
    process.stdin.on('keypress', (text: string, key: { ctrl?: boolean; name?: string }) => {
      if (key.ctrl && key.name === 'c') void stop()
      else command(text)
    })
  } else {
    readline.createInterface({ input: process.stdin }).on('line', (line) => command(line.trim()))
  }
}

void main()

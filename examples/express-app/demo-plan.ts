import { createServer } from 'node:net'

/**
 * Where the demo's processes will listen, decided and checked before any of them starts: a taken
 * port is a one-line message naming the port and the variable that moves it, not a stack trace
 * from a child that half started.
 *
 *   DEMO_PORT              the load balancer's port (default 3000)
 *   DEMO_HTTP_PORT         the nodes' web port (default 3001)
 *   DEMO_REPLICATION_PORT  the nodes' replication port (default 4055)
 *   DEMO_HOST              the load balancer's address, and the nodes' when DEMO_HOSTS cannot be
 *                          bound (default 127.0.0.1)
 *   DEMO_HOSTS             the two nodes' addresses (default 127.0.0.11,127.0.0.12)
 *   DEMO_FALLBACK=1        test seam: act as if DEMO_HOSTS could not be bound (as on macOS)
 */
export interface DemoNodePlan {
  readonly key: '1' | '2'
  readonly nodeId: string
  readonly host: string
  readonly httpPort: number
  readonly replicationPort: number
}

export interface DemoPlan {
  readonly balancer: { readonly host: string; readonly port: number }
  readonly nodes: readonly [DemoNodePlan, DemoNodePlan]
  /** Set when the nodes share DEMO_HOST because DEMO_HOSTS could not be bound: what to tell the user. */
  readonly fallback?: string
}

/** A problem the user fixes by changing something: printed as one line, no stack trace. */
export class DemoSetupError extends Error {
  override readonly name = 'DemoSetupError'
}

export async function planDemo(env: NodeJS.ProcessEnv = process.env): Promise<DemoPlan> {
  const balancerPort = port(env, 'DEMO_PORT', 3000)
  const httpPort = port(env, 'DEMO_HTTP_PORT', 3001)
  const replicationPort = port(env, 'DEMO_REPLICATION_PORT', 4055)
  const balancerHost = env.DEMO_HOST || '127.0.0.1'
  const hosts = (env.DEMO_HOSTS || '127.0.0.11,127.0.0.12').split(',').map((host) => host.trim())
  if (hosts.length !== 2 || hosts.some((host) => !host)) {
    throw new DemoSetupError(`DEMO_HOSTS must name two addresses, e.g. 127.0.0.11,127.0.0.12; got ${JSON.stringify(env.DEMO_HOSTS)}`)
  }
  const [host1, host2] = hosts as [string, string]

  const bindable = !env.DEMO_FALLBACK && (await canBind(host1)) && (await canBind(host2))
  const plan: DemoPlan = bindable
    ? {
        balancer: { host: balancerHost, port: balancerPort },
        nodes: [
          { key: '1', nodeId: 'was1', host: host1, httpPort, replicationPort },
          { key: '2', nodeId: 'was2', host: host2, httpPort, replicationPort },
        ],
      }
    : {
        // One address for everything: each node gets ports of its own.
        balancer: { host: balancerHost, port: balancerPort },
        nodes: [
          { key: '1', nodeId: 'was1', host: balancerHost, httpPort, replicationPort },
          { key: '2', nodeId: 'was2', host: balancerHost, httpPort: httpPort + 1, replicationPort: replicationPort + 1 },
        ],
        fallback:
          `${host1} and ${host2} cannot be used here (macOS has only 127.0.0.1 by default): both nodes run on ${balancerHost}, ` +
          `was1 on ports ${httpPort} and ${replicationPort}, was2 on ${httpPort + 1} and ${replicationPort + 1}`,
      }
  await checkPorts(plan)
  return plan
}

function port(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const text = env[name]
  if (text === undefined || text === '') return fallback
  const value = Number(text)
  if (!Number.isInteger(value) || value < 1 || value > 65534) {
    throw new DemoSetupError(`${name} must be a port number (1-65534); got ${JSON.stringify(text)}`)
  }
  return value
}

/** Every address the demo will listen on, with what to say if it is taken. */
function listeners(plan: DemoPlan): { host: string; port: number; what: string; variable: string }[] {
  return [
    { ...plan.balancer, what: 'the load balancer', variable: 'DEMO_PORT' },
    ...plan.nodes.flatMap((node) => [
      { host: node.host, port: node.httpPort, what: `${node.nodeId}'s web server`, variable: 'DEMO_HTTP_PORT' },
      { host: node.host, port: node.replicationPort, what: `${node.nodeId}'s replication`, variable: 'DEMO_REPLICATION_PORT' },
    ]),
  ]
}

async function checkPorts(plan: DemoPlan): Promise<void> {
  const seen = new Map<string, string>()
  for (const { host, port, what, variable } of listeners(plan)) {
    const address = `${host}:${port}`
    const clash = seen.get(address)
    if (clash) throw new DemoSetupError(`${address} would be both ${clash} and ${what}: set ${variable} to another port`)
    seen.set(address, what)
    const problem = await listenProblem(host, port)
    if (problem === 'EADDRINUSE') {
      throw new DemoSetupError(`${address} (${what}) is in use (another demo?): stop it or run ${variable}=${another(port)} npm run demo`)
    }
    if (problem)
      throw new DemoSetupError(`${address} (${what}) cannot be opened (${problem}): run ${variable}=${another(port)} npm run demo`)
  }
}

/** A port to suggest instead. */
const another = (port: number) => (port + 100 <= 65534 ? port + 100 : port - 100)

/** Whether this machine has the address (macOS has 127.0.0.1 only, unless aliases were added). */
async function canBind(host: string): Promise<boolean> {
  return (await listenProblem(host, 0)) === undefined
}

/** Opens and closes a listener: undefined if that worked, else the error code. */
function listenProblem(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message))
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(undefined)))
  })
}

import type { PeerStoreOptions } from '../../lib/index.js'
import { NetnsClient } from './netns-client.js'
import { NetnsNetwork, type LinkShape } from './netns.js'
import { settles } from './settle.js'
import { WebNode } from './web-node.js'

/**
 * Web nodes 1 to `count` (Express 5), each in its own namespace of `network`, replicating on `port`
 * with every other one and serving HTTP on `httpPort`; resolves once every node sees every other
 * alive (until then, the nodes would not agree on who holds what).
 */
export async function startMesh(
  network: NetnsNetwork,
  count: number,
  { port, httpPort, options }: { port: number; httpPort: number; options: PeerStoreOptions },
): Promise<WebNode[]> {
  const all = Array.from({ length: count }, (_, i) => i + 1)
  const nodes = await Promise.all(
    all.map((i) =>
      WebNode.start(
        {
          framework: 'express5',
          nodeId: `node${i}`,
          listen: `${network.address(i)}:${port}`,
          peers: all.filter((j) => j !== i).map((j) => ({ host: network.address(j), port, nodeId: `node${j}` })),
          http: { host: network.address(i), port: httpPort },
          options,
        },
        { network, endpoint: i },
      ),
    ),
  )
  let views: { state: string }[][] = []
  await settles(
    async () => {
      views = await Promise.all(nodes.map((node) => node.call<{ state: string }[]>('members')))
      return views.every((members) => members.length === count - 1 && members.every((member) => member.state === 'alive'))
    },
    20_000,
    () => `the nodes do not all see each other alive: ${JSON.stringify(views.map((members) => members.map((member) => member.state)))}`,
    100,
  )
  return nodes
}

/** The nodes (1-based) whose store holds `sid`, from each node's own table (nothing fetched). */
export async function holdersOf(nodes: readonly WebNode[], sid: string): Promise<number[]> {
  const ids = await Promise.all(nodes.map((node) => node.call<string[]>('ids')))
  return ids.flatMap((held, i) => (held.includes(sid) ? [i + 1] : []))
}

/** A mesh of a test file (see `meshForTests`), there once its `beforeAll` ran. */
export interface TestMesh {
  readonly network: NetnsNetwork
  /** The HTTP client, in a namespace of its own. */
  readonly client: NetnsClient
  /** Node `i` (1-based) at `nodes[i - 1]`. */
  readonly nodes: readonly WebNode[]
  /** The URL of `route` on node `node`. */
  url(node: number, route: string): string
}

/**
 * For a test file (inside its `describe`): a namespaced network of `count` nodes with `link`, a full
 * mesh of web nodes on it (`startMesh`) and a client, made before the tests and taken down after.
 */
export function meshForTests({
  count,
  link,
  port,
  httpPort,
  options,
}: {
  count: number
  link: LinkShape
  port: number
  httpPort: number
  options: PeerStoreOptions
}): TestMesh {
  let network: NetnsNetwork | undefined
  let client: NetnsClient | undefined
  const nodes: WebNode[] = []
  beforeAll(async () => {
    network = await NetnsNetwork.create({ nodes: count, link })
    nodes.push(...(await startMesh(network, count, { port, httpPort, options })))
    client = await NetnsClient.start(network)
  }, 45_000)
  afterAll(async () => {
    await Promise.all(nodes.map((node) => node.kill()))
    await client?.close()
    await network?.destroy()
  })
  return {
    get network() {
      return network!
    },
    get client() {
      return client!
    },
    nodes,
    url: (node, route) => `http://${network!.address(node)}:${httpPort}${route}`,
  }
}

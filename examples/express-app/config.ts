/**
 * The example app's configuration, entirely from the environment (as in docker-compose.yml and the
 * demo launcher). Bad or missing values stop the process with a message that says what to set.
 *
 *   NODE_ID         this node's id, e.g. was1 (required)
 *   LISTEN          replication address, e.g. 127.0.0.11:4055 or 0.0.0.0:4055 (required)
 *   PEERS           the other nodes: was2@127.0.0.12:4055[,was3@host:port...] (may be empty)
 *   CLUSTER_SECRET  shared by every node; required unless everything is on loopback
 *   SESSION_SECRET  signs the session cookie (default: derived from CLUSTER_SECRET, else a dev value)
 *   HOST, PORT      where the web server listens (default 0.0.0.0:3000)
 */
export interface Config {
  nodeId: string
  listen: string
  peers: { nodeId: string; host: string; port: number }[]
  clusterSecret: string | undefined
  sessionSecret: string
  host: string
  port: number
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError'
}

export function readConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const nodeId = required(env, 'NODE_ID', 'was1')
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(nodeId))
    throw new ConfigError(`NODE_ID must be 1-64 letters, digits, "-" or "_"; got ${JSON.stringify(nodeId)}`)
  const listen = required(env, 'LISTEN', '127.0.0.11:4055')
  const peers = (env.PEERS ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry) => {
      const match = /^([A-Za-z0-9_-]{1,64})@([^:\s]+):(\d{1,5})$/.exec(entry)
      if (!match) throw new ConfigError(`PEERS entries look like was2@10.0.0.2:4055; got ${JSON.stringify(entry)}`)
      return { nodeId: match[1]!, host: match[2]!, port: Number(match[3]) }
    })
  const port = Number(env.PORT ?? 3000)
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new ConfigError(`PORT must be a port number; got ${JSON.stringify(env.PORT)}`)
  const clusterSecret = env.CLUSTER_SECRET || undefined
  return {
    nodeId,
    listen,
    peers,
    clusterSecret,
    sessionSecret: env.SESSION_SECRET || (clusterSecret ? `session:${clusterSecret}` : 'connect-peer demo only, set SESSION_SECRET'),
    host: env.HOST || '0.0.0.0',
    port,
  }
}

function required(env: NodeJS.ProcessEnv, name: string, example: string): string {
  const value = env[name]?.trim()
  if (!value) throw new ConfigError(`${name} is required (for example ${name}=${example})`)
  return value
}

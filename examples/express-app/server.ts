/**
 * Entry point of one demo node: `node --import tsx examples/express-app/server.ts`, configured
 * from the environment (see config.ts). Used by `npm run demo`, docker-compose.yml and the tests.
 */
import type { Server } from 'node:http'
import { PeerStore } from 'connect-peer'
import { createApp } from './app.js'
import { ConfigError, readConfig } from './config.js'
import { plural } from './plural.js'
import { ProgressPrinter } from './transfer-progress.js'

/** Set once the node runs: how to stop it cleanly. */
let stop: ((why: string) => Promise<void>) | undefined

// Started by the demo launcher (an IPC channel): stop with it, even if it is SIGKILLed, and even
// while still starting (hence before anything else).
if (process.send) {
  process.once('disconnect', () => (stop ? void stop('launcher gone') : process.exit(0)))
  if (!process.connected) process.exit(0)
}

async function main(): Promise<void> {
  const config = readConfig()
  const store = new PeerStore(config.peers, {
    nodeId: config.nodeId,
    listen: config.listen,
    ...(config.clusterSecret ? { secret: config.clusterSecret } : {}),
    // The logged-in name: what store.sessionsOf and store.destroyAllOf look sessions up by.
    principal: (session) => session.user,
    heartbeatInterval: 500,
    suspectTimeout: 1500,
    deadTimeout: 4000,
  })
  store.on('peer:up', (member) => log(`peer ${member.nodeId} is up`))
  store.on('peer:down', (member) => log(`peer ${member.nodeId} is down`))
  // A transfer shows a bar on a terminal (a line per tenth in a log), ended by the summary.
  const progress = new ProgressPrinter({
    write: (text) => process.stdout.write(text),
    tty: process.stdout.isTTY === true,
    prefix: `[${config.nodeId}] `,
  })
  store.on('sync:progress', (event) => progress.update(event))
  store.on('sync', ({ peer, sessions, durationMs }) => {
    progress.done(peer)
    log(`received ${plural(sessions, 'session')} from ${peer} in ${durationMs} ms`)
  })
  store.on('peer:error', (error, remote) => log(`refused ${remote}: ${error.message}`))
  await store.ready()

  const server: Server = createApp(store, config).listen(config.port, config.host, () => {
    log(`web on http://${config.host}:${config.port}, replication on ${config.listen}`)
  })

  let stopped: Promise<void> | undefined
  stop = (why: string) =>
    (stopped ??= (async () => {
      log(`${why}: shutting down`)
      server.close()
      server.closeAllConnections()
      await store.close()
      process.exit(0)
    })())
  process.once('SIGTERM', () => void stop?.('SIGTERM'))
  process.once('SIGINT', () => void stop?.('SIGINT'))

  function log(message: string): void {
    console.log(`[${config.nodeId}] ${message}`)
  }
}

main().catch((error: unknown) => {
  console.error(
    error instanceof ConfigError || (error as { code?: string }).code?.startsWith('EPEER_') ? `error: ${(error as Error).message}` : error,
  )
  process.exit(1)
})

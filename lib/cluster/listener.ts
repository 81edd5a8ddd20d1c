import type { Server } from 'node:net'
import { ListenError } from '../base/errors.js'
import { formatAddress, type ListenAddress } from './address.js'

/**
 * Opens the replication port with a server from `createServer` (plain TCP or TLS). With `autoBind`,
 * a port that is taken moves on to the next one, up to `autoBind` more (Tomcat's NioReceiver
 * autoBind). Resolves with the server and the port it got.
 */
export async function listen(
  address: ListenAddress,
  nodeId: string,
  createServer: () => Server,
): Promise<{ server: Server; port: number }> {
  let lastError: unknown
  let tried = 0
  for (let offset = 0; offset <= address.autoBind; offset++) {
    const port = address.port === 0 ? 0 : address.port + offset
    if (port > 65535) break
    tried += 1
    const server = createServer()
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen({ host: address.host, port, exclusive: true }, () => {
          server.off('error', reject)
          resolve()
        })
      })
      return { server, port: (server.address() as { port: number }).port }
    } catch (error) {
      lastError = error
      server.close()
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') break
    }
  }
  throw new ListenError(formatAddress(address), tried, { cause: lastError, nodeId })
}

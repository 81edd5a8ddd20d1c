import { connect as connectTcp, createServer as createTcpServer, type Server, type Socket } from 'node:net'
import { connect as connectTls, createServer as createTlsServer } from 'node:tls'
import type { TlsOptions } from '../options.js'

/**
 * Plain TCP or mutual TLS, chosen once: the rest of the cluster sees `net.Socket`s either way. With
 * TLS, both sides present a certificate from `ca`; host names are not checked (peers are often
 * addressed by IP), the node id in the certificate is, after the handshake.
 */
export interface Sockets {
  createServer(onSocket: (socket: Socket) => void, onRejected: (error: Error) => void): Server
  dial(host: string, port: number): { socket: Socket; connected: 'connect' | 'secureConnect' }
}

export function socketsFor(tls: TlsOptions | undefined, localAddress: string | undefined, handshakeTimeoutMs: number): Sockets {
  if (!tls) {
    return {
      createServer: (onSocket) => createTcpServer({ noDelay: true }, onSocket),
      dial: (host, port) => ({ socket: connectTcp({ host, port, localAddress }), connected: 'connect' }),
    }
  }
  const material = { ca: tls.ca, cert: tls.cert, key: tls.key, passphrase: tls.passphrase, minVersion: 'TLSv1.2' as const }
  return {
    createServer(onSocket, onRejected) {
      const server = createTlsServer({ ...material, requestCert: true, rejectUnauthorized: true, handshakeTimeout: handshakeTimeoutMs }, onSocket)
      server.on('tlsClientError', (error) => onRejected(error))
      return server
    },
    dial: (host, port) => {
      // TLS over a TCP socket of our own, so it can be dialed from the listen address.
      const tcp = connectTcp({ host, port, localAddress })
      const socket = connectTls({ ...material, socket: tcp, rejectUnauthorized: true, checkServerIdentity: () => undefined })
      // The TLS socket reports the TCP socket's errors itself; this only keeps them from being unhandled.
      tcp.on('error', () => undefined)
      return { socket, connected: 'secureConnect' }
    },
  }
}

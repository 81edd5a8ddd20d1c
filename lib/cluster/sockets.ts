import { connect as connectTcp, createServer as createTcpServer, type Server, type Socket } from 'node:net'
import { connect as connectTls, createServer as createTlsServer } from 'node:tls'
import type { TlsOptions } from './cluster-options.js'

/** What the replication port does with each incoming connection. */
export interface ServerHandlers {
  /**
   * First, for the raw TCP socket, before a byte of TLS: a function that frees its handshake slot,
   * or undefined to close it at once. The slot is also freed when the socket closes.
   */
  readonly admit: (socket: Socket) => (() => void) | undefined
  /** The connection (TLS: after the TLS handshake) is ready for the peer handshake. */
  readonly accepted: (socket: Socket, release: () => void) => void
  /** A TLS handshake failed (a certificate from another CA, none at all, a protocol error). */
  readonly rejected: (error: Error) => void
}

/**
 * Plain TCP or mutual TLS, chosen once: the rest of the cluster sees `net.Socket`s either way. With
 * TLS, both sides present a certificate from `ca`; host names are not checked (peers are often
 * addressed by IP), the node id in the certificate is, after the handshake.
 */
export interface Sockets {
  createServer(handlers: ServerHandlers): Server
  dial(host: string, port: number): { socket: Socket; connected: 'connect' | 'secureConnect' }
}

export function socketsFor(tls: TlsOptions | undefined, localAddress: string | undefined, handshakeTimeoutMs: number): Sockets {
  if (!tls) {
    return {
      createServer: ({ admit, accepted }) =>
        createTcpServer({ noDelay: true }, (socket) => {
          const release = admitted(socket, admit)
          if (release) accepted(socket, release)
        }),
      dial: (host, port) => ({ socket: connectTcp({ host, port, localAddress }), connected: 'connect' }),
    }
  }
  const material = { ca: tls.ca, cert: tls.cert, key: tls.key, passphrase: tls.passphrase, minVersion: 'TLSv1.2' as const }
  return {
    createServer({ admit, accepted, rejected }) {
      // The TLS server never listens: the TCP server hands it the connections it admitted, so a
      // stranger's TLS handshake holds a slot like any other handshake.
      const tlsServer = createTlsServer({ ...material, requestCert: true, rejectUnauthorized: true, handshakeTimeout: handshakeTimeoutMs })
      const releases = new Map<string, () => void>()
      tlsServer.on('secureConnection', (socket: Socket) => {
        const key = endpoint(socket)
        const release = releases.get(key)
        releases.delete(key)
        if (release) accepted(socket, release)
        else socket.destroy()
      })
      tlsServer.on('tlsClientError', (error) => rejected(error))
      return createTcpServer({ noDelay: true }, (raw) => {
        const release = admitted(raw, admit)
        if (!release) return
        const key = endpoint(raw)
        releases.set(key, release)
        raw.once('close', () => {
          if (releases.get(key) === release) releases.delete(key)
        })
        tlsServer.emit('connection', raw)
      })
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

function admitted(socket: Socket, admit: ServerHandlers['admit']): (() => void) | undefined {
  const release = admit(socket)
  if (!release) {
    socket.destroy()
    return undefined
  }
  socket.once('close', release)
  return release
}

/** A TLS socket reports its TCP socket's addresses: the pair names the connection while it is open. */
function endpoint(socket: Socket): string {
  return `${socket.remoteAddress}|${socket.remotePort}`
}

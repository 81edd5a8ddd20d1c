import { isIP } from 'node:net'
import { networkInterfaces } from 'node:os'
import { InvalidOptionError } from '../base/errors.js'
import { checkKnownNames } from '../base/option-spec.js'
import { parseNodeId } from '../table/node-id.js'

/** A configured peer: where to dial it, and its node id when the configuration names it. */
export interface PeerAddress {
  readonly host: string
  readonly port: number
  /** Unknown until the first handshake when the peer was given as a `'host:port'` string. */
  readonly nodeId: string | undefined
}

/** Where this node listens for its peers. */
export interface ListenAddress {
  readonly host: string
  readonly port: number
  /** How many following ports to try when `port` is taken (Tomcat's `autoBind`). */
  readonly autoBind: number
}

/** A peer as the user may write it: `'10.0.0.2:4055'`, `'was2@10.0.0.2:4055'` (naming its node id), `'[::1]:4055'` or `{ host, port, nodeId }`. */
export type PeerSpec = string | { host: string; port: number; nodeId?: string }

/** A listen address as the user may write it: `'10.0.0.1:4055'` or `{ host, port, autoBind }`. */
export type ListenSpec = string | { host?: string; port: number; autoBind?: number }

/** A peer as text: `'host:port'`, or `'nodeId@host:port'` naming the node too. */
const NAMED_PEER = /^([^@\s]+)@(.+)$/

export function parsePeer(option: string, value: unknown): PeerAddress {
  if (typeof value === 'string') {
    const named = NAMED_PEER.exec(value.trim())
    const { host, port } = splitHostPort(option, named ? (named[2] ?? '') : value, 1)
    return { host, port, nodeId: named ? parseNodeId(`${option} (the node id before @)`, named[1]) : undefined }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidOptionError(option, "'host:port', 'nodeId@host:port' or { host, port, nodeId }", value)
  }
  checkKnownNames(value, ['host', 'port', 'nodeId'], option)
  const spec = value as Record<string, unknown>
  return {
    host: parseHost(`${option}.host`, spec.host),
    port: parsePort(`${option}.port`, spec.port, 1),
    nodeId: spec.nodeId === undefined ? undefined : parseNodeId(`${option}.nodeId`, spec.nodeId),
  }
}

export function parseListen(value: unknown): ListenAddress {
  if (typeof value === 'string') return { ...splitHostPort('listen', value, 0), autoBind: 0 }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidOptionError('listen', "'host:port' or { host, port, autoBind }", value)
  }
  checkKnownNames(value, ['host', 'port', 'autoBind'], 'listen')
  const spec = value as Record<string, unknown>
  const autoBind = spec.autoBind ?? 0
  if (typeof autoBind !== 'number' || !Number.isInteger(autoBind) || autoBind < 0 || autoBind > 100) {
    throw new InvalidOptionError('listen.autoBind', 'an integer from 0 to 100', autoBind)
  }
  return {
    host: spec.host === undefined ? '0.0.0.0' : parseHost('listen.host', spec.host),
    port: parsePort('listen.port', spec.port, 0),
    autoBind,
  }
}

export function formatAddress(address: { host: string; port: number }): string {
  return isIP(address.host) === 6 ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`
}

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1 and `localhost`. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
}

/**
 * Whether `address` is this node's own listen address (`port` the port actually bound): the same
 * host, or, for a node listening on every address (`0.0.0.0`, `::`), one of this machine's.
 */
export function isOwnAddress(address: { host: string; port: number }, listenHost: string, port: number): boolean {
  if (address.port !== port) return false
  const host = canonicalHost(address.host)
  if (host === canonicalHost(listenHost)) return true
  if (listenHost !== '0.0.0.0' && listenHost !== '::') return false
  return Object.values(networkInterfaces()).some((list) => list?.some((each) => canonicalHost(each.address) === host))
}

/**
 * An IP address as a connection reports it, written the way it is compared with configured ones:
 * an IPv4-mapped IPv6 address (`::ffff:10.0.0.2`, from a dual-stack listener) as plain IPv4, an
 * IPv6 address in its canonical short form. Anything else (a host name) is returned as it is.
 */
export function canonicalHost(address: string): string {
  const mapped = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i.exec(address)
  if (mapped) return mapped[1]!
  if (isIP(address) === 6) return new URL(`http://[${address}]`).hostname.slice(1, -1)
  return address
}

function splitHostPort(option: string, text: string, minPort: number): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(text.trim())
  if (!match) throw new InvalidOptionError(option, "'host:port' (IPv6 as '[::1]:4055'), or 'nodeId@host:port' for a peer", text)
  return { host: parseHost(option, match[1] ?? match[2]), port: parsePort(option, Number(match[3]), minPort) }
}

function parseHost(option: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 253 || /\s/.test(value)) {
    throw new InvalidOptionError(option, 'a host name or IP address', value)
  }
  return value
}

/** Port 0 (any free port) makes sense for `listen` only. */
function parsePort(option: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > 65535) {
    throw new InvalidOptionError(option, `a port number from ${min} to 65535`, value)
  }
  return value
}

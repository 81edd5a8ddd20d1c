import { ConnectionClosedError, HandshakeRefusals, HandshakeRefusedError, ProtocolError, type HandshakeRefusal } from '../errors.js'
import type { Connection, ConnectionHandlers } from './connection.js'
import { PROTOCOL_VERSION } from './frame.js'
import { MessageType, type Hello, type Message, type Welcome } from './messages.js'

/** Who this node is, as it introduces itself to peers. */
export interface LocalIdentity {
  readonly cluster: string
  readonly nodeId: string
  readonly incarnation: string
}

/** A refusal the accepting side decided on, sent to the dialer before closing. */
export interface Refusal {
  readonly reason: HandshakeRefusal
  readonly detail: string
}

/**
 * The dialing side: sends HELLO, expects WELCOME. `expectedNodeId` is the configured peer's id,
 * when the configuration names one. On success the connection is handed to `next` before any
 * further frame is read, so nothing the peer sends right after WELCOME is missed. A refusal tells
 * `refusedBy` the refusing node's id.
 */
export function dialHandshake(
  connection: Connection,
  local: LocalIdentity,
  expectedNodeId: string | undefined,
  timeoutMs: number,
  next: (welcome: Welcome) => ConnectionHandlers,
  refusedBy: (nodeId: string) => void,
): Promise<Welcome> {
  return run(connection, timeoutMs, (message, settle) => {
    if (message.type === MessageType.REFUSE) {
      refusedBy(message.nodeId)
      throw new HandshakeRefusedError(message.reason, `the peer says: ${message.detail}`)
    }
    if (message.type !== MessageType.WELCOME) throw new ProtocolError(`expected WELCOME, received message 0x${message.type.toString(16)}`)
    if (message.cluster !== local.cluster) {
      throw new HandshakeRefusedError(HandshakeRefusals.CLUSTER, `peer is in cluster "${message.cluster}", this node in "${local.cluster}"`)
    }
    if (message.nodeId === local.nodeId) {
      throw new HandshakeRefusedError(HandshakeRefusals.SAME_NODE, `peer at ${connection.remoteAddress} has this node's own id "${local.nodeId}"`)
    }
    if (expectedNodeId !== undefined && message.nodeId !== expectedNodeId) {
      throw new HandshakeRefusedError(HandshakeRefusals.WRONG_NODE, `expected node "${expectedNodeId}" at ${connection.remoteAddress}, found "${message.nodeId}"`)
    }
    settle(message, next(message))
  }, () => connection.send({ type: MessageType.HELLO, protocol: PROTOCOL_VERSION, ...local }))
}

/**
 * The accepting side: expects HELLO, checks version, cluster and node id, asks `decide` about the
 * rest (unknown or duplicate node), then answers WELCOME or REFUSE.
 */
export function acceptHandshake(
  connection: Connection,
  local: LocalIdentity,
  timeoutMs: number,
  decide: (hello: Hello) => Refusal | undefined,
  next: (hello: Hello) => ConnectionHandlers,
): Promise<Hello> {
  return run(connection, timeoutMs, (message, settle) => {
    if (message.type !== MessageType.HELLO) throw new ProtocolError(`expected HELLO, received message 0x${message.type.toString(16)}`)
    const refusal =
      message.protocol !== PROTOCOL_VERSION
        ? { reason: HandshakeRefusals.VERSION, detail: `protocol ${message.protocol} is not supported; this node speaks ${PROTOCOL_VERSION}` }
        : message.cluster !== local.cluster
          ? { reason: HandshakeRefusals.CLUSTER, detail: `this node is in cluster "${local.cluster}", not "${message.cluster}"` }
          : message.nodeId === local.nodeId
            ? { reason: HandshakeRefusals.SAME_NODE, detail: `"${message.nodeId}" is this node's own id` }
            : decide(message)
    if (refusal) {
      connection.send({ type: MessageType.REFUSE, nodeId: local.nodeId, ...refusal })
      void connection.close(1000)
      throw new HandshakeRefusedError(refusal.reason, `refused ${message.nodeId} from ${connection.remoteAddress}: ${refusal.detail}`)
    }
    connection.send({ type: MessageType.WELCOME, ...local })
    settle(message, next(message))
  })
}

function run<T extends Message>(
  connection: Connection,
  timeoutMs: number,
  onMessage: (message: Message, settle: (result: T, handlers: ConnectionHandlers) => void) => void,
  start?: () => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let done = false
    const timer = setTimeout(() => {
      fail(new HandshakeRefusedError(HandshakeRefusals.TIMEOUT, `no handshake from ${connection.remoteAddress} within ${timeoutMs} ms`))
      connection.destroy()
    }, timeoutMs)
    const fail = (error: Error) => {
      if (done) return
      done = true
      clearTimeout(timer)
      reject(error)
    }
    connection.setHandlers({
      message(message) {
        if (done) return
        try {
          onMessage(message, (result, handlers) => {
            done = true
            clearTimeout(timer)
            connection.setHandlers(handlers)
            resolve(result)
          })
        } catch (error) {
          fail(error as Error)
          // A refusal this side sent is already closing gracefully, so the peer can read it.
          if (!connection.closing) connection.destroy()
        }
      },
      closed(error) {
        fail(error ?? new ConnectionClosedError(connection.label))
      },
    })
    start?.()
  })
}

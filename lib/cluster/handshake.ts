import { randomBytes } from 'node:crypto'
import { packr } from '../codec/msgpack.js'
import { ConnectionClosedError, HandshakeRefusals, HandshakeRefusedError, ProtocolError, type HandshakeRefusal } from '../base/errors.js'
import { proof, recordKeys, sameBytes, type SecretKey } from '../security/keys.js'
import { RecordOpener, RecordSealer } from '../security/record.js'
import type { Connection, ConnectionHandlers } from './connection.js'
import { PROTOCOL_VERSION, PROTOCOL_VERSIONS } from '../protocol/frame.js'
import { MessageType, NONCE_BYTES, type Hello, type Message, type Welcome } from '../protocol/messages.js'
import { certifiedNodeIds, describeCertificate, type TlsIdentity } from '../security/tls-identity.js'
import { printable } from '../base/untrusted.js'

/** Cluster names are up to 128 characters; in a message, this much of someone else's is enough. */
const NAME_LENGTH = 64

/** Who this node is, as it introduces itself to peers. */
export interface LocalIdentity {
  readonly cluster: string
  readonly nodeId: string
  readonly incarnation: string
  /** The largest frame this node accepts: the peer keeps every frame it sends within it. */
  readonly maxFrameBytes: number
}

/** How this node proves itself and checks its peers. */
export interface HandshakeSecurity {
  /** Secrets accepted from peers; the first is the one this node proves with. Empty: no secret. */
  readonly keys: readonly SecretKey[]
  /** Encrypt and authenticate every frame after the handshake (a secret without TLS). */
  readonly encrypt: boolean
  /** Over mutual TLS: how the peer's certificate must name the node id it claims. */
  readonly tls: TlsIdentity | undefined
}

/** A refusal the accepting side decided on, sent to the dialer before closing. */
export interface Refusal {
  readonly reason: HandshakeRefusal
  readonly detail: string
}

/** What the dialing side of a handshake needs. */
export interface DialParameters {
  readonly local: LocalIdentity
  readonly security: HandshakeSecurity
  /** The peer's id when the configuration names it (or an authenticated handshake taught it). */
  readonly expectedNodeId: string | undefined
  readonly timeoutMs: number
  /**
   * The protocol version this HELLO proposes (one of `PROTOCOL_VERSIONS`): the acceptor takes it
   * or refuses with `version`, and the dialer then tries the next lower one it speaks (see `PeerLink`).
   */
  readonly protocol: number
  /**
   * The WELCOME passed every check this node can make (cluster, expected id, the proof of the
   * secret, the certificate's names): its node id is the peer's. Called before AUTH is sent, so a
   * peer that goes on to refuse this node has still been identified. Nothing else teaches an id:
   * a REFUSE is not authenticated, and anyone on the peer's address could have sent it.
   */
  readonly verified: (welcome: Welcome) => void
  /** On READY the connection is handed to these handlers before any further frame is read. */
  readonly next: (welcome: Welcome) => ConnectionHandlers
}

/**
 * The dialing side: HELLO, then WELCOME (checked: cluster, node id, the acceptor's proof of the
 * secret or its certificate), then AUTH (this side's proof), then READY. The HELLO proposes one
 * protocol version; a WELCOME accepts it (the proofs cover it), a REFUSE `version` does not.
 */
export function dialHandshake(connection: Connection, parameters: DialParameters): Promise<Welcome> {
  const { local, security, expectedNodeId, timeoutMs, verified, next, protocol } = parameters
  const key = security.keys[0]
  const hello: Hello = {
    type: MessageType.HELLO,
    protocol,
    ...local,
    nonce: randomBytes(NONCE_BYTES),
    keyId: key?.id ?? null,
  }
  let welcome: Welcome | undefined
  return run(
    connection,
    { timeoutMs },
    (message, settle) => {
      if (message.type === MessageType.REFUSE) {
        throw new HandshakeRefusedError(message.reason, `the peer says: ${printable(message.detail)}`)
      }
      if (!welcome) {
        if (message.type !== MessageType.WELCOME)
          throw new ProtocolError(`expected WELCOME, received message 0x${message.type.toString(16)}`)
        checkWelcome(message, connection, local, expectedNodeId)
        const uncertified = certificateMismatch(connection, security.tls, message.nodeId)
        if (uncertified)
          throw new HandshakeRefusedError(HandshakeRefusals.AUTH, `the certificate of ${connection.remoteAddress} ${uncertified}`)
        const transcript = transcriptOf(hello, message)
        if (key) {
          if (!message.proof || !sameBytes(message.proof, proof(key, 'acceptor', transcript))) {
            throw new HandshakeRefusedError(
              HandshakeRefusals.AUTH,
              `${message.nodeId} at ${connection.remoteAddress} did not prove the cluster secret`,
            )
          }
        } else if (message.proof) {
          throw new HandshakeRefusedError(
            HandshakeRefusals.AUTH,
            `${message.nodeId} uses a cluster secret and this node has none: set \`secret\``,
          )
        }
        welcome = message
        verified(message)
        connection.send({ type: MessageType.AUTH, proof: key ? proof(key, 'dialer', transcript) : null })
        return
      }
      if (message.type !== MessageType.READY) throw new ProtocolError(`expected READY, received message 0x${message.type.toString(16)}`)
      if (key && security.encrypt) {
        const keys = recordKeys(key, hello.nonce, welcome.nonce)
        connection.secure(new RecordSealer(keys.dialerToAcceptor), new RecordOpener(keys.acceptorToDialer))
      }
      const accepted = welcome
      settle(accepted, protocol, () => next(accepted))
    },
    () => connection.send(hello),
  )
}

/** What the accepting side of a handshake needs. */
export interface AcceptParameters {
  readonly local: LocalIdentity
  readonly security: HandshakeSecurity
  readonly timeoutMs: number
  /**
   * The HELLO must have arrived within this (much shorter than `timeoutMs`): a real peer sends it
   * as soon as it is connected, an idle stranger gives its slot back quickly.
   */
  readonly helloTimeoutMs: number
  /** After the dialer proved itself: a refusal (unknown or duplicate node), or undefined to accept. */
  readonly decide: (hello: Hello) => Refusal | undefined
  /** On READY the connection is handed to these handlers before any further frame is read. */
  readonly next: (hello: Hello) => ConnectionHandlers
}

/**
 * The accepting side: HELLO (checked: version (one this node speaks, which is then the
 * connection's), cluster, which secret), WELCOME with this side's
 * proof, AUTH (the dialer's proof, checked), then `decide` on the rest (unknown or duplicate node):
 * READY or REFUSE. Nothing about this node's peers is revealed before the dialer has proved the secret.
 */
export function acceptHandshake(connection: Connection, parameters: AcceptParameters): Promise<Hello> {
  const { local, security, timeoutMs, helloTimeoutMs, decide, next } = parameters
  let hello: Hello | undefined
  let welcome: Welcome | undefined
  let key: SecretKey | undefined
  const refuse = (refusal: Refusal, nodeId: string, proposed?: number): never => {
    connection.send({ type: MessageType.REFUSE, nodeId: local.nodeId, ...refusal })
    void connection.close(1000)
    const versions = proposed === undefined ? undefined : { proposed: [proposed], spoken: PROTOCOL_VERSIONS }
    throw new HandshakeRefusedError(refusal.reason, `refused ${nodeId} from ${connection.remoteAddress}: ${refusal.detail}`, versions)
  }
  return run(connection, { timeoutMs, first: { timeoutMs: helloTimeoutMs, name: 'HELLO' } }, (message, settle) => {
    if (!hello) {
      if (message.type !== MessageType.HELLO) throw new ProtocolError(`expected HELLO, received message 0x${message.type.toString(16)}`)
      const refusal = checkHello(message, local)
      if (refusal) refuse(refusal, message.nodeId, refusal.reason === HandshakeRefusals.VERSION ? message.protocol : undefined)
      const uncertified = certificateMismatch(connection, security.tls, message.nodeId)
      if (uncertified) refuse({ reason: HandshakeRefusals.AUTH, detail: `the client certificate ${uncertified}` }, message.nodeId)
      key = message.keyId ? security.keys.find((candidate) => sameBytes(candidate.id, message.keyId!)) : undefined
      if (message.keyId && !key) {
        refuse(
          {
            reason: HandshakeRefusals.AUTH,
            detail: security.keys.length ? 'no cluster secret in common (check `secret` on both nodes)' : 'this node has no cluster secret',
          },
          message.nodeId,
        )
      }
      if (!message.keyId && security.keys.length > 0) {
        refuse({ reason: HandshakeRefusals.AUTH, detail: 'this node requires the cluster secret: set `secret`' }, message.nodeId)
      }
      hello = message
      welcome = { type: MessageType.WELCOME, ...local, nonce: randomBytes(NONCE_BYTES), proof: null }
      if (key) welcome = { ...welcome, proof: proof(key, 'acceptor', transcriptOf(message, welcome)) }
      connection.send(welcome)
      return
    }
    if (message.type !== MessageType.AUTH) throw new ProtocolError(`expected AUTH, received message 0x${message.type.toString(16)}`)
    if (key && (!message.proof || !sameBytes(message.proof, proof(key, 'dialer', transcriptOf(hello, welcome!))))) {
      refuse({ reason: HandshakeRefusals.AUTH, detail: 'the proof of the cluster secret is wrong' }, hello.nodeId)
    }
    const refusal = decide(hello)
    if (refusal) refuse(refusal, hello.nodeId)
    connection.send({ type: MessageType.READY })
    if (key && security.encrypt) {
      const keys = recordKeys(key, hello.nonce, welcome!.nonce)
      connection.secure(new RecordSealer(keys.acceptorToDialer), new RecordOpener(keys.dialerToAcceptor))
    }
    const dialer = hello
    settle(dialer, dialer.protocol, () => next(dialer))
  })
}

function checkHello(hello: Hello, local: LocalIdentity): Refusal | undefined {
  if (!PROTOCOL_VERSIONS.includes(hello.protocol)) return versionRefusal(hello.protocol)
  if (hello.cluster !== local.cluster)
    return {
      reason: HandshakeRefusals.CLUSTER,
      detail: `this node is in cluster "${local.cluster}", not "${printable(hello.cluster, NAME_LENGTH)}"`,
    }
  if (hello.nodeId === local.nodeId) return { reason: HandshakeRefusals.SAME_NODE, detail: `"${hello.nodeId}" is this node's own id` }
  return undefined
}

function checkWelcome(welcome: Welcome, connection: Connection, local: LocalIdentity, expectedNodeId: string | undefined): void {
  if (welcome.cluster !== local.cluster) {
    throw new HandshakeRefusedError(
      HandshakeRefusals.CLUSTER,
      `peer is in cluster "${printable(welcome.cluster, NAME_LENGTH)}", this node in "${local.cluster}"`,
    )
  }
  if (welcome.nodeId === local.nodeId) {
    throw new HandshakeRefusedError(
      HandshakeRefusals.SAME_NODE,
      `peer at ${connection.remoteAddress} has this node's own id "${local.nodeId}"`,
    )
  }
  if (expectedNodeId !== undefined && welcome.nodeId !== expectedNodeId) {
    throw new HandshakeRefusedError(
      HandshakeRefusals.WRONG_NODE,
      `expected node "${expectedNodeId}" at ${connection.remoteAddress}, found "${welcome.nodeId}"`,
    )
  }
}

/** Over TLS, why the peer's certificate does not name `nodeId` (undefined when it does, or without TLS). */
function certificateMismatch(connection: Connection, identity: TlsIdentity | undefined, nodeId: string): string | undefined {
  if (!identity) return undefined
  const certificate = connection.peerCertificate()
  if (certificate && certifiedNodeIds(certificate, identity).includes(nodeId)) return undefined
  return `has ${describeCertificate(certificate, identity)} naming "${nodeId}"${typeof identity === 'object' ? ` as ${identity.uriPrefix}${nodeId}` : ''}`
}

/** The refusal of a HELLO proposing a version this node does not speak: says both sides' versions. */
export function versionRefusal(proposed: number): Refusal {
  const ours = [...PROTOCOL_VERSIONS].sort((a, b) => a - b)
  // One ahead: a newer node's first proposal, which it follows with ours (a rolling upgrade).
  const detail =
    proposed === PROTOCOL_VERSION + 1
      ? `protocol ${proposed} is newer than this node's: propose ${PROTOCOL_VERSION}`
      : `protocol ${proposed} is not supported; this node speaks protocols ${ours.join(' and ')} ` +
        '(nodes of a cluster must be at most one version apart: upgrade one version at a time)'
  return { reason: HandshakeRefusals.VERSION, detail }
}

/** Everything both sides said, in a fixed encoding: what the proofs sign. */
function transcriptOf(hello: Hello, welcome: Welcome): Buffer {
  return Buffer.from(
    packr.pack([
      hello.protocol,
      hello.cluster,
      hello.nodeId,
      hello.incarnation,
      hello.maxFrameBytes,
      hello.nonce,
      welcome.nodeId,
      welcome.incarnation,
      welcome.maxFrameBytes,
      welcome.nonce,
    ]),
  )
}

interface Deadlines {
  /** For the whole handshake. */
  readonly timeoutMs: number
  /** For the first message, if sooner; `name` says which message it is, for the error. */
  readonly first?: { readonly timeoutMs: number; readonly name: string }
}

function run<T extends Hello | Welcome>(
  connection: Connection,
  deadlines: Deadlines,
  // `handlers` is called once the connection has its version and frame cap: it may send at once.
  onMessage: (message: Message, settle: (result: T, protocol: number, handlers: () => ConnectionHandlers) => void) => void,
  start?: () => void,
): Promise<T> {
  const { timeoutMs, first } = deadlines
  return new Promise<T>((resolve, reject) => {
    let done = false
    let heard = false
    const expire = (what: string, ms: number) => {
      fail(new HandshakeRefusedError(HandshakeRefusals.TIMEOUT, `no ${what} from ${connection.remoteAddress} within ${ms} ms`))
      connection.destroy()
    }
    const timer = setTimeout(() => expire('handshake', timeoutMs), timeoutMs)
    // Checked after this turn's I/O: a node that was busy reads what already arrived before judging.
    const firstTimer =
      first && first.timeoutMs < timeoutMs
        ? setTimeout(() => setImmediate(() => !heard && !done && expire(first.name, first.timeoutMs)), first.timeoutMs)
        : undefined
    const fail = (error: Error) => {
      if (done) return
      done = true
      clearTimeout(timer)
      clearTimeout(firstTimer)
      reject(error)
    }
    connection.setHandlers({
      message(message) {
        if (done) return
        heard = true
        clearTimeout(firstTimer)
        try {
          onMessage(message, (result, protocol, handlers) => {
            done = true
            clearTimeout(timer)
            connection.established(result.maxFrameBytes, protocol)
            connection.setHandlers(handlers())
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

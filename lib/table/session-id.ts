import { randomBytes } from 'node:crypto'

/** Random bytes in a generated session id: 144 bits, above the 128 OWASP asks for. */
const ID_BYTES = 18

/**
 * A session id routed to a node, Tomcat's `<id>.<jvmRoute>`: 144 random bits in base64url (which
 * has no `.`), a dot, and the node id. The random part alone is the secret. Without a node id (a
 * single store that never named itself), the random part alone.
 */
export function createSessionId(nodeId: string | undefined): string {
  const random = randomBytes(ID_BYTES).toString('base64url')
  return nodeId === undefined ? random : `${random}.${nodeId}`
}

/** The node a session id is routed to: the text after its last dot, or undefined without one. */
export function routeOf(sid: string): string | undefined {
  const dot = sid.lastIndexOf('.')
  return dot === -1 ? undefined : sid.slice(dot + 1)
}

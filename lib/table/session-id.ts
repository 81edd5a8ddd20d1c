import { randomBytes } from 'node:crypto'

/** Random bytes in a generated session id: 144 bits, above the 128 OWASP asks for. */
const ID_BYTES = 18

/**
 * A session id routed to a node, Tomcat's `<id>.<jvmRoute>`: 144 random bits in base64url (which
 * has no `.`), a dot, and the node id. The random part alone is the secret.
 */
export function createSessionId(nodeId: string): string {
  return `${randomBytes(ID_BYTES).toString('base64url')}.${nodeId}`
}

/** The node a session id is routed to: the text after its last dot, or undefined without one. */
export function routeOf(sid: string): string | undefined {
  const dot = sid.lastIndexOf('.')
  return dot === -1 ? undefined : sid.slice(dot + 1)
}

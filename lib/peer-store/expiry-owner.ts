import type { Member } from '../cluster/peer-link.js'
import { weight } from '../replication/placement.js'
import { routeOf } from '../table/session-id.js'

/** What a node does about a session that expired in its table. */
export type ExpiryDecision = 'emit' | 'skip' | 'wait'

/** What the owner of an expiry event needs to know of the cluster. */
export interface ExpiryOwnerContext {
  readonly nodeId: string
  /** The peers and their state; undefined where this node has no peers (alone, or a Redis tier). */
  members(): readonly Member[] | undefined
  /** With backups, the nodes that hold the session; undefined where every node holds every session. */
  holders(sid: string, origin: string): readonly string[] | undefined
}

/**
 * Decides which node reports a session's expiry, so that `session:expired` fires once in the
 * cluster although every node that holds the session sees it expire.
 *
 * The owner reports it: the node its id is routed to (`<random>.<nodeId>`), or for an id without a
 * route the node that last wrote it. While the owner is alive, nobody else does. Once it is dead or
 * gone, the survivors that hold the session pick one among themselves by rendezvous hashing over
 * the id (the same choice on every node that sees the same members). While the owner is only
 * suspected, the decision waits (`'wait'`): the store asks again when its state settles.
 */
export function decideExpiry(context: ExpiryOwnerContext, sid: string, origin: string): ExpiryDecision {
  const owner = routeOf(sid) ?? origin
  if (owner === context.nodeId) return 'emit'
  const members = context.members()
  // Alone, or sharing a Redis tier only: the owner reports it; nobody else can know whether it is up.
  if (members === undefined) return 'skip'
  const state = members.find((member) => member.nodeId === owner)?.state
  if (state === 'alive') return 'skip'
  if (state === 'suspect' || state === 'connecting') return 'wait'
  return survivorOf(context, sid, origin, members) === context.nodeId ? 'emit' : 'skip'
}

/** The live holder of `sid` with the highest rendezvous weight, this node included. */
function survivorOf(context: ExpiryOwnerContext, sid: string, origin: string, members: readonly Member[]): string {
  const alive = [context.nodeId]
  for (const member of members) if (member.state === 'alive' && member.nodeId !== null) alive.push(member.nodeId)
  const holders = context.holders(sid, origin)
  const candidates = holders === undefined ? alive : alive.filter((node) => holders.includes(node))
  let best = context.nodeId
  let bestWeight = -1
  for (const node of candidates.length > 0 ? candidates : alive) {
    const nodeWeight = weight(node, sid)
    if (nodeWeight > bestWeight || (nodeWeight === bestWeight && node < best)) {
      best = node
      bestWeight = nodeWeight
    }
  }
  return best
}

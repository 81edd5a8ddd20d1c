/**
 * Where a session lives in `{ backups: k }` mode (Tomcat's BackupManager, with a backup count as in
 * memcached-session-manager and Hazelcast): its owner, the node that last wrote it (the node it is
 * routed to), and `k` backups chosen by rendezvous (highest random weight) hashing of the session id
 * over the live members. A member joining or leaving changes the backups of only the sessions whose
 * top-ranked members it enters or leaves: nothing else moves.
 *
 * When the owner is not live, the top-ranked live member takes its place, so the holders are then the
 * top `k + 1` members; the surviving backups are always among them (removing one member moves every
 * other member up by at most one rank), so a restored set never starts from nothing.
 */
export class BackupPlacement {
  readonly #self: string
  readonly #backups: number
  /** The live members, this node included. */
  #live: readonly string[]

  constructor(self: string, backups: number) {
    this.#self = self
    this.#backups = backups
    this.#live = [self]
  }

  get backups(): number {
    return this.#backups
  }

  /** Sets the live peers (node ids); true when the set changed. */
  setLivePeers(peers: readonly string[]): boolean {
    const live = [this.#self, ...new Set(peers.filter((peer) => peer !== this.#self))].sort()
    if (live.length === this.#live.length && live.every((node, i) => node === this.#live[i])) return false
    this.#live = live
    return true
  }

  /** The holders of `sid` last written by `origin`: its owner first, then its backups, best first. */
  holders(sid: string, origin: string): string[] {
    const ranked = rank(sid, this.#live)
    const owner = this.#live.includes(origin) ? origin : ranked[0]!
    const holders = [owner]
    for (const node of ranked) {
      if (holders.length > this.#backups) break
      if (node !== owner) holders.push(node)
    }
    return holders
  }

  /** Whether this node is one of the holders of `sid` last written by `origin`. */
  holdsHere(sid: string, origin: string): boolean {
    return this.holders(sid, origin).includes(this.#self)
  }

  /**
   * The peers a change of `sid` made here goes to: its holders now that this node wrote it, and,
   * when someone else wrote it last, that writer's holders too (their copies would go stale until a
   * trim lets them go).
   */
  peersFor(sid: string, previousOrigin: string): string[] {
    const peers = new Set(this.holders(sid, this.#self))
    // '' is the origin of no version at all: a session created here.
    if (previousOrigin !== '' && previousOrigin !== this.#self) for (const node of this.holders(sid, previousOrigin)) peers.add(node)
    peers.delete(this.#self)
    return [...peers]
  }

  /**
   * The peers to ask for `sid` on a miss: the top `k + 1` of the others, among whom are the backups
   * of whichever node owns it (a backup ranks at most one place lower once this node is left out),
   * and all its holders if its owner is gone.
   */
  candidates(sid: string): string[] {
    return rank(
      sid,
      this.#live.filter((node) => node !== this.#self),
    ).slice(0, this.#backups + 1)
  }
}

/** `nodes` ordered by their weight for `sid`, highest first (ties, all but impossible, by id). */
function rank(sid: string, nodes: readonly string[]): string[] {
  return nodes
    .map((node) => ({ node, weight: weight(node, sid) }))
    .sort((a, b) => b.weight - a.weight || (a.node < b.node ? -1 : 1))
    .map(({ node }) => node)
}

/**
 * The weight of `node` for `sid`: FNV-1a over both (with a separator), finished by murmur3's mix so
 * that ids differing in their last characters still spread evenly. Fast, and the same on every node.
 */
export function weight(node: string, sid: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < node.length; i++) hash = Math.imul(hash ^ node.charCodeAt(i), 0x01000193)
  hash = Math.imul(hash ^ 0xff, 0x01000193)
  for (let i = 0; i < sid.length; i++) hash = Math.imul(hash ^ sid.charCodeAt(i), 0x01000193)
  hash ^= hash >>> 16
  hash = Math.imul(hash, 0x85ebca6b)
  hash ^= hash >>> 13
  hash = Math.imul(hash, 0xc2b2ae35)
  hash ^= hash >>> 16
  return hash >>> 0
}

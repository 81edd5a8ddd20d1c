import { debugFor } from '../base/debug.js'
import { DiscoveryError, InvalidArgumentError, InvalidOptionError } from '../base/errors.js'
import { canonicalHost, formatAddress, isOwnAddress, parsePeer, type PeerAddress } from '../cluster/address.js'
import type { ClusterConfig } from '../cluster/cluster-options.js'
import { PeerDiscovery } from '../cluster/discovery.js'
import type { Member } from '../cluster/peer-link.js'
import { noPeersError, type Replication } from '../replication/replication.js'

const debug = debugFor('membership')

/** What run-time membership reports to the store. */
export interface MembershipEvents {
  added(member: Member): void
  removed(member: Member): void
  discoveryFailed(error: DiscoveryError): void
}

/**
 * The peers of a running store: `addPeer` and `removePeer` checked and passed on to the
 * replication, and a `peers` function or DNS name asked every interval, the difference applied by
 * address. Discovery removes only the peers it added; one removed by hand comes back if the source
 * still lists it at its next round.
 */
export class Membership {
  readonly #replication: Replication | undefined
  readonly #cluster: ClusterConfig | undefined
  readonly #events: MembershipEvents
  readonly #discovery: PeerDiscovery | undefined
  /** The peers discovery added, by canonical address, with the name `removePeer` knows them by. */
  readonly #discovered = new Map<string, string>()

  constructor(replication: Replication | undefined, cluster: ClusterConfig | undefined, events: MembershipEvents) {
    this.#replication = replication
    this.#cluster = cluster
    this.#events = events
    const config = cluster?.discovery
    if (config) {
      this.#discovery = new PeerDiscovery(config, {
        found: (peers) => this.#apply(peers),
        failed: (error) => events.discoveryFailed(error),
      })
    }
  }

  /** The first round of discovery, if any (never rejects), then one every interval. */
  start(): Promise<void> {
    return this.#discovery?.start() ?? Promise.resolve()
  }

  stop(): void {
    this.#discovery?.stop()
  }

  /** Checks `spec` as `peers` takes it and adds it; throws at once, emits `peer:added`. */
  add(spec: unknown): Member {
    const replication = this.#peers('addPeer')
    let address: PeerAddress
    try {
      address = parsePeer('peer', spec)
    } catch (error) {
      throw error instanceof InvalidOptionError ? InvalidArgumentError.from(error) : error
    }
    return this.#add(replication, address)
  }

  /** Forgets the peer named by node id or address; resolves once the goodbye is sent (within `closeTimeout`). */
  remove(name: unknown): Promise<void> {
    const replication = this.#peers('removePeer')
    if (typeof name !== 'string') throw new InvalidArgumentError('peer to remove', 'a node id, or an address as members() shows it', name)
    const { member, goodbye } = replication.removePeer(name)
    for (const [key, known] of this.#discovered) if (known === member.address) this.#discovered.delete(key)
    this.#events.removed(member)
    return goodbye
  }

  #peers(method: string): Required<Pick<Replication, 'addPeer' | 'removePeer'>> {
    const replication = this.#replication
    if (!this.#cluster || !replication?.addPeer || !replication.removePeer) throw noPeersError(method)
    return replication as Required<Pick<Replication, 'addPeer' | 'removePeer'>>
  }

  #add(replication: Required<Pick<Replication, 'addPeer'>>, address: PeerAddress): Member {
    const member = replication.addPeer(address)
    this.#events.added(member)
    return member
  }

  /**
   * Adds what discovery lists that is new, removes what it added that is gone. `found` is never
   * empty: discovery reports a round that finds no peer as failed, so an empty answer removes nothing.
   */
  #apply(found: readonly PeerAddress[]): void {
    const replication = this.#replication
    const cluster = this.#cluster
    if (!replication?.addPeer || !replication.removePeer || !cluster) return
    const port = replication.port || cluster.listen.port
    const wanted = new Map<string, PeerAddress>()
    for (const address of found) if (!isOwnAddress(address, cluster.listen.host, port)) wanted.set(keyOf(address), address)
    for (const [key, name] of this.#discovered) {
      if (wanted.has(key)) continue
      this.#discovered.delete(key)
      debug('%s is no longer listed: removing it', name)
      if (!replication.members().some((member) => member.address === name)) continue
      void this.remove(name).catch(() => undefined)
    }
    const present = new Set(replication.members().map((member) => keyOfLabel(member.address)))
    for (const [key, address] of wanted) {
      if (this.#discovered.has(key) || present.has(key)) continue // a peer configured or added by hand stays theirs
      try {
        const member = this.#add(replication as Required<Pick<Replication, 'addPeer'>>, address)
        this.#discovered.set(key, member.address)
      } catch (error) {
        this.#events.discoveryFailed(
          new DiscoveryError(this.#discovery?.source ?? 'discovery', `${formatAddress(address)} not added: ${(error as Error).message}`, {
            cause: error,
          }),
        )
      }
    }
  }
}

function keyOf(address: { host: string; port: number }): string {
  return `${canonicalHost(address.host)}|${address.port}`
}

/** The key of a member's address as `formatAddress` wrote it (`host:port`, `[v6]:port`). */
function keyOfLabel(label: string): string {
  const match = /^\[?(.*?)\]?:(\d+)$/.exec(label)
  return match ? keyOf({ host: match[1]!, port: Number(match[2]) }) : label
}

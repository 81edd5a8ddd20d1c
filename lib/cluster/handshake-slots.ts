/** How many connections may be in their handshake at once. */
export interface SlotLimits {
  /** From hosts that are not configured peers', all together. */
  readonly shared: number
  /** From any one host, configured peers' included. */
  readonly perHost: number
}

/**
 * The slots of connections that have not finished their handshake. Strangers share `shared` slots
 * and each source host gets at most `perHost`, so one address cannot take them all; a configured
 * peer's host has its own `perHost` slots, so strangers filling the shared ones from many addresses
 * do not keep the real peers out.
 *
 * @example
 * ```ts
 * const slots = new HandshakeSlots({ shared: 32, perHost: 4 }, new Set(['10.0.0.2']))
 * const release = slots.take('10.0.0.9') // undefined: turn the connection away
 * release?.() // when its handshake is over, or it closed
 * ```
 */
export class HandshakeSlots {
  readonly #limits: SlotLimits
  readonly #peerHosts: ReadonlySet<string>
  readonly #byHost = new Map<string, number>()
  #shared = 0

  /** `peerHosts` (canonical addresses of the configured peers) may grow later: it is read on every `take`. */
  constructor(limits: SlotLimits, peerHosts: ReadonlySet<string>) {
    this.#limits = limits
    this.#peerHosts = peerHosts
  }

  /** Connections holding a slot now. */
  get pending(): number {
    let pending = 0
    for (const count of this.#byHost.values()) pending += count
    return pending
  }

  /** A slot for a connection from `host` (canonical), as a function that gives it back; undefined when full. */
  take(host: string): (() => void) | undefined {
    const count = this.#byHost.get(host) ?? 0
    if (count >= this.#limits.perHost) return undefined
    const shared = !this.#peerHosts.has(host)
    if (shared && this.#shared >= this.#limits.shared) return undefined
    this.#byHost.set(host, count + 1)
    if (shared) this.#shared += 1
    let released = false
    return () => {
      if (released) return
      released = true
      const left = (this.#byHost.get(host) ?? 1) - 1
      if (left > 0) this.#byHost.set(host, left)
      else this.#byHost.delete(host)
      if (shared) this.#shared -= 1
    }
  }
}

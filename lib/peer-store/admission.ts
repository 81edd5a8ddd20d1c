import { SessionLimitError } from '../base/errors.js'
import type { SessionIndex } from '../table/session-index.js'

export interface AdmissionOptions {
  readonly maxSessions: number | undefined
  readonly maxSessionsPerPrincipal: number | undefined
  readonly principalLimitPolicy: 'evict-oldest' | 'refuse'
}

/** What admitting a session asks of the store: to evict these first, and why. */
export interface Evictions {
  /** The principal's oldest sessions (`maxSessionsPerPrincipal`, 'evict-oldest'): final, like a logout. */
  readonly oldest: readonly string[]
  /** How many least recently used sessions to evict for `maxSessions`, one at a time (see `nextVictim`). */
  readonly forRoom: number
}

const NONE: Evictions = { oldest: [], forRoom: 0 }

/**
 * The session limits: `maxSessionsPerPrincipal` and `maxSessions`. Decides, before a write, whether
 * the session may be stored and what must be evicted first; refuses with `SessionLimitError` before
 * anything is evicted. Counts what it evicts and refuses, for `stats()`.
 */
export class Admission {
  readonly #options: AdmissionOptions
  readonly #index: SessionIndex
  evicted = 0
  refused = 0

  constructor(options: AdmissionOptions, index: SessionIndex) {
    this.#options = options
    this.#index = index
  }

  /**
   * For a write of `sid` with `principal` (null: anonymous); `isNew` when no live session is under
   * `sid` here, `liveCount` the live sessions now. Throws `SessionLimitError` when refused.
   */
  admit(sid: string, principal: string | null, isNew: boolean, liveCount: number): Evictions {
    const { maxSessions, maxSessionsPerPrincipal, principalLimitPolicy } = this.#options
    let oldest: string[] = []
    const gainsPrincipal = principal !== null && (isNew || this.#index.get(sid)?.principal !== principal)
    if (maxSessionsPerPrincipal !== undefined && gainsPrincipal) {
      const others = this.#index.sessionsOf(principal).filter((other) => other !== sid)
      const excess = others.length + 1 - maxSessionsPerPrincipal
      if (excess > 0) {
        if (principalLimitPolicy === 'refuse') this.#refuse('maxSessionsPerPrincipal', maxSessionsPerPrincipal)
        oldest = others.sort((a, b) => this.#index.get(a)!.createdAt - this.#index.get(b)!.createdAt).slice(0, excess)
      }
    }
    if (maxSessions === undefined || !isNew) return oldest.length === 0 ? NONE : { oldest, forRoom: 0 }
    const forRoom = Math.max(0, liveCount - oldest.length + 1 - maxSessions)
    if (forRoom > 0 && this.nextVictim(sid, principal) === undefined) this.#refuse('maxSessions', maxSessions)
    return { oldest, forRoom }
  }

  /**
   * The session to evict to make room for `sid`: the least recently used anonymous one, else (only
   * for a session with a principal) the least recently used one with a principal.
   */
  nextVictim(sid: string, principal: string | null): string | undefined {
    const victim = this.#index.leastRecentlyUsed(principal !== null)
    return victim === sid ? undefined : victim
  }

  #refuse(limit: 'maxSessions' | 'maxSessionsPerPrincipal', max: number): never {
    this.refused += 1
    throw new SessionLimitError(limit, max)
  }
}

import { SessionLimitError } from '../base/errors.js'
import type { SessionIndex } from '../table/session-index.js'

export interface AdmissionOptions {
  readonly maxSessions: number | undefined
  readonly maxSessionsPerPrincipal: number | undefined
  readonly principalLimitPolicy: 'evict-oldest' | 'refuse'
}

/**
 * The session limits: `maxSessionsPerPrincipal` and `maxSessions`. Decides, before a write, whether
 * the session may be stored and which of the principal's sessions go first; refuses with
 * `SessionLimitError` before anything is evicted, and counts the refusals for `stats()`. Which
 * session makes room for `maxSessions` is `nextVictim`'s answer, asked again after each eviction.
 */
export class Admission {
  readonly #options: AdmissionOptions
  readonly #index: SessionIndex
  #refused = 0

  constructor(options: AdmissionOptions, index: SessionIndex) {
    this.#options = options
    this.#index = index
  }

  /** Sessions refused with `SessionLimitError`. */
  get refused(): number {
    return this.#refused
  }

  /**
   * For a write of `sid` with `principal` (null: anonymous); `isNew` when no live session is under
   * `sid` here, `liveCount` the live sessions (asked after `isLive`, which reclaims an expired
   * session it finds), `isLive` whether another session still lives (it may have expired unswept). Returns the principal's oldest sessions to evict first
   * (`'evict-oldest'`); throws `SessionLimitError` when refused.
   */
  admit(sid: string, principal: string | null, isNew: boolean, liveCount: () => number, isLive: (sid: string) => boolean): string[] {
    const { maxSessions, maxSessionsPerPrincipal, principalLimitPolicy } = this.#options
    let oldest: string[] = []
    const gainsPrincipal = principal !== null && (isNew || this.#index.get(sid)?.principal !== principal)
    if (maxSessionsPerPrincipal !== undefined && gainsPrincipal) {
      const others = this.#index.sessionsOf(principal).filter((other) => other !== sid && isLive(other))
      const excess = others.length + 1 - maxSessionsPerPrincipal
      if (excess > 0) {
        if (principalLimitPolicy === 'refuse') this.#refuse('maxSessionsPerPrincipal', maxSessionsPerPrincipal)
        oldest = others.sort((a, b) => this.#index.get(a)!.createdAt - this.#index.get(b)!.createdAt).slice(0, excess)
      }
    }
    const full = maxSessions !== undefined && isNew && liveCount() - oldest.length >= maxSessions
    if (full && this.nextVictim(sid, principal) === undefined) this.#refuse('maxSessions', maxSessions)
    return oldest
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
    this.#refused += 1
    throw new SessionLimitError(limit, max)
  }
}

import type { SessionData } from 'express-session'
import type { Member } from '../cluster/peer-link.js'
import { decodeSession } from '../codec/session-codec.js'
import { routeOf } from '../table/session-id.js'
import type { Entry } from '../table/session-table.js'
import { decideExpiry, type ExpiryOwnerContext } from './expiry-owner.js'

/** Why a session was destroyed: by `destroy()`/`destroyAllOf()`, or to make room (a session limit). */
export type DestroyReason = 'destroyed' | 'evicted'

/** The session events a PeerStore emits, each once in the cluster, with the session's last data. */
export interface SessionEventMap {
  'session:created': [event: { sid: string; data: SessionData }]
  'session:destroyed': [event: { sid: string; data: SessionData; reason: DestroyReason }]
  'session:expired': [event: { sid: string; data: SessionData }]
}

export interface SessionEventsContext extends ExpiryOwnerContext {
  /** Whether anyone listens: the data is decoded only for a listener. */
  listening(event: keyof SessionEventMap): boolean
  emit<E extends keyof SessionEventMap>(event: E, ...args: SessionEventMap[E]): void
}

/** Expiries waiting for a suspected owner's fate, at most this many (the oldest are dropped). */
const MAX_WAITING = 10_000

interface Waiting {
  readonly blob: Buffer
  readonly cookieExpires: number | null
  readonly origin: string
}

/**
 * Turns local changes and expiries into `session:*` events, once per cluster: created and destroyed
 * where the call was made (one node), expired on the session's owner or, when it is dead, on one
 * survivor (see `expiry-owner.ts`). An expiry whose owner is only suspected waits here until the
 * owner is declared dead (then the survivors decide) or comes back (then it reported it).
 */
export class SessionEvents {
  readonly #context: SessionEventsContext
  readonly #waiting = new Map<string, Waiting>()

  constructor(context: SessionEventsContext) {
    this.#context = context
  }

  created(sid: string, entry: Readonly<Entry>): void {
    if (!this.#context.listening('session:created')) return
    this.#context.emit('session:created', { sid, data: decodeSession(entry.blob!, entry.cookieExpires) })
  }

  destroyed(sid: string, entry: Readonly<Entry>, reason: DestroyReason): void {
    if (!this.#context.listening('session:destroyed')) return
    this.#context.emit('session:destroyed', { sid, data: decodeSession(entry.blob!, entry.cookieExpires), reason })
  }

  /** A live session left this node's table because its expiry passed. */
  expired(sid: string, entry: Readonly<Entry>): void {
    if (!this.#context.listening('session:expired')) return
    const decision = decideExpiry(this.#context, sid, entry.origin)
    if (decision === 'emit') this.#emitExpired(sid, entry.blob!, entry.cookieExpires)
    if (decision !== 'wait') return
    if (this.#waiting.size >= MAX_WAITING) this.#waiting.delete(this.#waiting.keys().next().value!)
    this.#waiting.set(sid, { blob: entry.blob!, cookieExpires: entry.cookieExpires, origin: entry.origin })
  }

  /** A write or touch on this node found the session's end passed: this node reports it, being the one that acts. */
  expiredHere(sid: string, entry: Readonly<Entry>): void {
    if (this.#context.listening('session:expired')) this.#emitExpired(sid, entry.blob!, entry.cookieExpires)
  }

  /** A peer's state changed: expiries waiting on it are decided again, or dropped. */
  memberChanged(member: Member): void {
    if (this.#waiting.size === 0 || member.state === 'suspect' || member.state === 'connecting') return
    for (const [sid, waiting] of this.#waiting) {
      if ((routeOf(sid) ?? waiting.origin) !== member.nodeId) continue
      this.#waiting.delete(sid)
      if (decideExpiry(this.#context, sid, waiting.origin) === 'emit') this.#emitExpired(sid, waiting.blob, waiting.cookieExpires)
    }
  }

  #emitExpired(sid: string, blob: Buffer, cookieExpires: number | null): void {
    this.#context.emit('session:expired', { sid, data: decodeSession(blob, cookieExpires) })
  }
}

/**
 * Sends a ping every `intervalMs` and watches for signs of life from the peer (any frame counts).
 * Silence longer than `suspectAfterMs` reports `suspect` once; silence longer than `deadAfterMs`
 * reports `dead` once. Hearing from the peer again after `suspect` reports `recovered`.
 * One missed beat is never enough: the thresholds span several intervals.
 */
export interface HeartbeatEvents {
  ping(seq: number): void
  suspect(silentForMs: number): void
  recovered(): void
  dead(silentForMs: number): void
}

export interface HeartbeatTiming {
  readonly intervalMs: number
  readonly suspectAfterMs: number
  readonly deadAfterMs: number
}

export class Heartbeat {
  readonly #timing: HeartbeatTiming
  readonly #events: HeartbeatEvents
  readonly #now: () => number
  #timer: NodeJS.Timeout | undefined
  #lastHeardAt = 0
  #seq = 0
  #suspected = false

  constructor(timing: HeartbeatTiming, events: HeartbeatEvents, now: () => number = Date.now) {
    this.#timing = timing
    this.#events = events
    this.#now = now
  }

  /** (Re)starts the beat; a running beat is cancelled first, so calling it twice leaks nothing. */
  start(): void {
    this.stop()
    this.#lastHeardAt = this.#now()
    this.#suspected = false
    this.#timer = setInterval(() => this.#beat(), this.#timing.intervalMs)
    this.#timer.unref()
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
  }

  get running(): boolean {
    return this.#timer !== undefined
  }

  /** Call on every frame received from the peer. */
  heard(): void {
    this.#lastHeardAt = this.#now()
    if (this.#suspected) {
      this.#suspected = false
      this.#events.recovered()
    }
  }

  #beat(): void {
    const silentFor = this.#now() - this.#lastHeardAt
    if (silentFor >= this.#timing.deadAfterMs) {
      this.stop()
      this.#events.dead(silentFor)
      return
    }
    if (silentFor >= this.#timing.suspectAfterMs && !this.#suspected) {
      this.#suspected = true
      this.#events.suspect(silentFor)
    }
    this.#events.ping(++this.#seq)
  }
}

/**
 * 6. Touch traffic: what a rolling-touch workload (every request moves an unchanged session's expiry,
 * as express-session does with `resave: false`) sends to a peer, with and without `touchAfter`.
 *
 * Two PeerStores in this process; heartbeats slowed down so only touches count. `rate` touches per
 * second spread over `sessions` sessions, for `seconds`; frames and expiry changes counted on the
 * sending side, and changes applied counted on the receiving side.
 */
import { PeerStore } from '../lib/index.js'
import { round } from './lib/stats.js'

export interface TouchRow {
  touchAfterSeconds: number
  touchesPerSecond: number
  sessions: number
  framesPerSecond: number
  expiryChangesPerSecond: number
  bytesPerSecond: number
}

const quiet = { heartbeatInterval: 60_000, suspectTimeout: 180_000, deadTimeout: 600_000, secret: 'bench cluster secret 0123456789' }

export async function runTouch(
  options: { rate: number; sessions: number; seconds: number },
  log: (line: string) => void,
): Promise<TouchRow[]> {
  const rows: TouchRow[] = []
  for (const touchAfter of [0, 60]) {
    const a = new PeerStore([{ host: '127.0.0.142', port: 4730, nodeId: 'b' }], {
      nodeId: 'a',
      listen: '127.0.0.141:4730',
      touchAfter,
      ...quiet,
    })
    const b = new PeerStore([{ host: '127.0.0.141', port: 4730, nodeId: 'a' }], { nodeId: 'b', listen: '127.0.0.142:4730', ...quiet })
    try {
      await Promise.all([new Promise((resolve) => a.once('sync', resolve)), new Promise((resolve) => b.once('sync', resolve))])
      const maxAge = 30 * 60 * 1000
      const session = (expires: number) => ({
        cookie: { originalMaxAge: maxAge, expires: new Date(expires), httpOnly: true, path: '/' },
        user: 'u',
      })
      for (let i = 0; i < options.sessions; i++) await a.set(`s${i}`, session(Date.now() + maxAge))
      // The creates must be out (and in) before counting, or they would count as touch traffic.
      while (b.stats().sessions < options.sessions) await new Promise((resolve) => setTimeout(resolve, 10))
      let applied = 0
      b.on('session:replicated', (event) => {
        if (event.change === 'expiry') applied += 1
      })
      const framesBefore = a.stats().framesOut
      const bytesBefore = a.stats().bytesOut
      const start = Date.now()
      let touched = 0
      while (Date.now() - start < options.seconds * 1000) {
        const due = Math.floor(((Date.now() - start) / 1000) * options.rate)
        for (; touched < due; touched++) await a.touch(`s${touched % options.sessions}`, session(Date.now() + maxAge))
        await new Promise((resolve) => setTimeout(resolve, 1))
      }
      // Let the last batch go out and arrive.
      await new Promise((resolve) => setTimeout(resolve, 300))
      const elapsed = (Date.now() - start) / 1000
      const row: TouchRow = {
        touchAfterSeconds: touchAfter,
        touchesPerSecond: round(touched / options.seconds, 0),
        sessions: options.sessions,
        framesPerSecond: round((a.stats().framesOut - framesBefore) / elapsed, 1),
        expiryChangesPerSecond: round(applied / elapsed, 1),
        bytesPerSecond: round((a.stats().bytesOut - bytesBefore) / elapsed, 0),
      }
      rows.push(row)
      log(
        `touch: touchAfter ${touchAfter}s, ${row.touchesPerSecond} touches/s over ${row.sessions} sessions: ` +
          `${row.framesPerSecond} frames/s, ${row.expiryChangesPerSecond} expiry changes/s, ${row.bytesPerSecond} B/s`,
      )
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  }
  return rows
}

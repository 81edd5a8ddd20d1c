/**
 * 3. Bytes on the wire for one changed key in a 4 KB session, against the whole session.
 *
 * Two PeerStores in this process, encrypted with a secret as in production; heartbeats slowed
 * down so they do not count. Each change is its own write (one encrypted record), so the figure
 * includes every byte of framing and encryption a lone change costs.
 */
import { PeerStore } from '../lib/index.js'
import { round } from './lib/stats.js'

export interface WireRow {
  sessionBytes: number
  fullChangeBytes: number
  oneKeyChangeBytes: number
  ratio: number
}

const quiet = { heartbeatInterval: 60_000, suspectTimeout: 180_000, deadTimeout: 600_000, secret: 'bench cluster secret 0123456789' }

/** A ~4 KB session of ten fields, like a real one: user, cart, flags, a CSRF token, preferences... */
export function fourKilobyteSession(n: number): Record<string, unknown> {
  return {
    cookie: { originalMaxAge: 3_600_000, expires: new Date(Date.now() + 3_600_000), httpOnly: true, path: '/' },
    user: { id: 42, name: 'Ada Lovelace', email: 'ada@example.com', roles: ['admin', 'editor', 'reader'] },
    cart: Array.from({ length: 12 }, (_, i) => ({
      sku: `SKU-${1000 + i}`,
      qty: (i % 3) + 1,
      price: 9.99 + i,
      title: `Product number ${i}`,
    })),
    preferences: { theme: 'dark', language: 'en-GB', timezone: 'Europe/London', newsletter: true, density: 'compact' },
    history: Array.from({ length: 20 }, (_, i) => `/products/category-${i}/item-${i * 7}`),
    csrf: 'c'.repeat(64),
    flash: null,
    notes: 'n'.repeat(2450),
    visits: n,
    lastSeen: new Date(1_700_000_000_000),
  }
}

export async function runWire(log: (line: string) => void): Promise<WireRow> {
  const a = new PeerStore([{ host: '127.0.0.132', port: 4720, nodeId: 'b' }], { nodeId: 'a', listen: '127.0.0.131:4720', ...quiet })
  const b = new PeerStore([{ host: '127.0.0.131', port: 4720, nodeId: 'a' }], { nodeId: 'b', listen: '127.0.0.132:4720', ...quiet })
  try {
    await Promise.all([new Promise((resolve) => a.once('sync', resolve)), new Promise((resolve) => b.once('sync', resolve))])
    const turn = () => new Promise((resolve) => setImmediate(resolve))
    const arrived = () => new Promise((resolve) => b.once('session:replicated', resolve))
    const sessions = 50
    // Whole sessions: each created fresh, so everything travels.
    let before = a.stats().bytesOut
    for (let i = 0; i < sessions; i++) {
      const done = arrived()
      await a.set(`full-${i}`, fourKilobyteSession(0) as never)
      await turn()
      await done
    }
    const fullChangeBytes = (a.stats().bytesOut - before) / sessions
    // One key changed in each.
    before = a.stats().bytesOut
    for (let i = 0; i < sessions; i++) {
      const done = arrived()
      await a.set(`full-${i}`, fourKilobyteSession(1) as never)
      await turn()
      await done
    }
    const oneKeyChangeBytes = (a.stats().bytesOut - before) / sessions
    const sessionBytes = (await import('../lib/codec/session-codec.js')).encodeSession(fourKilobyteSession(0), {
      maxSessionBytes: 1 << 20,
      maxDepth: 32,
      maxContainerLength: 1 << 20,
    }).blob.length
    const row = {
      sessionBytes,
      fullChangeBytes: round(fullChangeBytes, 0),
      oneKeyChangeBytes: round(oneKeyChangeBytes, 0),
      ratio: round(oneKeyChangeBytes / fullChangeBytes, 4),
    }
    log(
      `wire: session ${row.sessionBytes} B; whole session on the wire ${row.fullChangeBytes} B; one changed key ${row.oneKeyChangeBytes} B (${round(row.ratio * 100, 2)}%)`,
    )
    return row
  } finally {
    await Promise.all([a.close(), b.close()])
  }
}

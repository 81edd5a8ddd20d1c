/**
 * Benchmark child of bench/session-features.ts: one store (chosen by FEATURES_VARIANT, loaded from
 * the library under FEATURES_ROOT, which may be an older revision's), timed on `get`, `set` of one
 * changed key, and `touch`, over 1,000 sessions of about 1 KB.
 */
import { createRequire } from 'node:module'
import path from 'node:path'
import { MemoryStore, type SessionData, type Store } from 'express-session'
import type * as Library from '../../lib/index.js'
import { serveParent } from '../lib/process.js'
import { median } from '../lib/stats.js'

export type Variant = 'memory-store' | 'plain' | 'features'

export interface FeatureRow {
  label: string
  getUs: number
  setUs: number
  touchUs: number
}

const CALLS = 100_000
const SESSIONS = 1000
const variant = process.env.FEATURES_VARIANT as Variant
const root = process.env.FEATURES_ROOT!

interface Bench {
  label: string
  store: Store
  close(): Promise<void>
}

function open(): Bench {
  if (variant === 'memory-store') return { label: 'MemoryStore', store: new MemoryStore(), close: () => Promise.resolve() }
  // The library as TypeScript source, from this checkout or an extracted older revision.
  const { PeerStore } = createRequire(path.join(root, 'lib', 'index.ts'))(path.join(root, 'lib', 'index.ts')) as typeof Library
  const features =
    variant === 'features'
      ? {
          principal: (session: SessionData) => (session as { user?: { id?: number } }).user?.id,
          maxSessions: 100_000,
          maxSessionsPerPrincipal: 10,
          absoluteTimeout: 8 * 3600,
        }
      : {}
  const store = new PeerStore(features)
  if (variant === 'features')
    for (const event of ['session:created', 'session:destroyed', 'session:expired'] as const) store.on(event, () => undefined)
  return { label: variant === 'features' ? 'PeerStore + features' : 'PeerStore', store, close: () => store.close() }
}

/** About 1 KB once encoded: a user, a cart, a history, a token. */
function sessionData(i: number): SessionData {
  return {
    cookie: { originalMaxAge: 3_600_000, expires: new Date(Date.now() + 3_600_000), httpOnly: true, path: '/' },
    user: { id: i, name: `user ${i}`, roles: ['reader', 'writer'] },
    cart: { items: [{ sku: 'A-1', qty: 2 }], total: 6 },
    history: Array.from({ length: 60 }, (_, j) => `/page/${j}`),
    csrf: 'x'.repeat(32),
  } as unknown as SessionData
}

const call = (work: (done: (error?: Error) => void) => void) =>
  new Promise<void>((resolve, reject) => work((error) => (error ? reject(error) : resolve())))

async function time(work: (i: number) => Promise<unknown>, rounds: number): Promise<number> {
  const samples: number[] = []
  for (let round = 0; round < rounds; round++) {
    const start = process.hrtime.bigint()
    for (let i = 0; i < CALLS; i++) await work(i)
    samples.push(Number(process.hrtime.bigint() - start) / CALLS / 1000)
  }
  return Math.round(median(samples) * 100) / 100
}

async function measure(rounds: number): Promise<FeatureRow> {
  const bench = open()
  const { label, store } = bench
  const sids = Array.from({ length: SESSIONS }, (_, i) => `session-${i}`)
  for (let i = 0; i < SESSIONS; i++) await call((done) => store.set(sids[i]!, sessionData(i), done))
  const get = (i: number) => call((done) => store.get(sids[i % SESSIONS]!, (error: Error | undefined) => done(error)))
  // A request's session: read, one key changed, saved (merge on save has its base).
  const set = async (i: number) => {
    const sid = sids[i % SESSIONS]!
    const session = await new Promise<SessionData>((resolve, reject) =>
      store.get(sid, (error, found) => (error ? reject(error as Error) : resolve(found!))),
    )
    ;(session as unknown as { cart: { total: number } }).cart.total = i
    await call((done) => store.set(sid, session, done))
  }
  // Every store here implements touch (MemoryStore and PeerStore alike).
  const touch = (i: number) => call((done) => store.touch!(sids[i % SESSIONS]!, sessionData(i % SESSIONS), done))
  ;(globalThis as { gc?: () => void }).gc?.()
  const getUs = await time(get, rounds)
  const setUs = Math.round(((await time(set, rounds)) - getUs) * 100) / 100
  const touchUs = await time(touch, rounds)
  await bench.close()
  return { label, getUs, setUs, touchUs }
}

serveParent({ measure: (rounds: number) => measure(rounds) })
process.send?.({ event: 'ready' })

import { encodeSession } from '../../../lib/codec/session-codec.js'
import { SessionTable } from '../../../lib/table/session-table.js'
import { NO_VERSION, type Version } from '../../../lib/table/version.js'

const limits = { maxSessionBytes: 1 << 16, maxDepth: 16, maxContainerLength: 1 << 16 }
const NOW = 1_000_000
const LATER = NOW + 3_600_000
const encoded = (data: Record<string, unknown>) => encodeSession(data, limits)
const table = () =>
  new SessionTable({ nodeId: 'was1', tombstoneTtlMs: 60_000, expiryResolutionMs: 1000, maxRebinds: 10, touchAfterMs: 0 }, NOW)
/** A whole session as a peer sends it. */
const live = (version: Version, blob: Buffer, expiresAt = LATER, cookieExpires: number | null = null) => ({
  version,
  blob,
  movedTo: null,
  expiresAt,
  cookieExpires,
  rebinds: 0,
})
const replace = (blob: Buffer) => () => blob

test('a delta on top of the version it was made from is applied', () => {
  const t = table()
  expect(
    t.applyDelta(
      { sid: 's', base: NO_VERSION, version: { counter: 1, origin: 'was2' }, expiresAt: LATER, cookieExpires: null },
      NOW,
      replace(encoded({ n: 1 }).blob),
    ),
  ).toBe('applied')
  expect(
    t.applyDelta(
      { sid: 's', base: { counter: 1, origin: 'was2' }, version: { counter: 2, origin: 'was2' }, expiresAt: LATER, cookieExpires: null },
      NOW,
      replace(encoded({ n: 2 }).blob),
    ),
  ).toBe('applied')
  expect(t.peek('s')).toMatchObject({ counter: 2, origin: 'was2' })
})

test('the same delta delivered twice is applied once', () => {
  const t = table()
  let applications = 0
  const apply = () => {
    applications += 1
    return encoded({ n: 1 }).blob
  }
  expect(
    t.applyDelta(
      { sid: 's', base: NO_VERSION, version: { counter: 1, origin: 'was2' }, expiresAt: LATER, cookieExpires: null },
      NOW,
      apply,
    ),
  ).toBe('applied')
  expect(
    t.applyDelta(
      { sid: 's', base: NO_VERSION, version: { counter: 1, origin: 'was2' }, expiresAt: LATER, cookieExpires: null },
      NOW,
      apply,
    ),
  ).toBe('stale')
  expect(applications).toBe(1)
})

test('a delta made on a version this node lacks asks for the whole session', () => {
  const t = table()
  expect(
    t.applyDelta(
      { sid: 's', base: { counter: 4, origin: 'was2' }, version: { counter: 5, origin: 'was2' }, expiresAt: LATER, cookieExpires: null },
      NOW,
      replace(encoded({}).blob),
    ),
  ).toBe('needs-full')
  t.applySnapshot('s', live({ counter: 5, origin: 'was2' }, encoded({ n: 5 }).blob, LATER), NOW)
  // An older delta that arrives late is stale, not a reason to fetch.
  expect(
    t.applyDelta(
      { sid: 's', base: { counter: 3, origin: 'was2' }, version: { counter: 4, origin: 'was2' }, expiresAt: LATER, cookieExpires: null },
      NOW,
      replace(encoded({}).blob),
    ),
  ).toBe('stale')
})

test('a snapshot replaces only an older version', () => {
  const t = table()
  t.applySnapshot('s', live({ counter: 3, origin: 'was1' }, encoded({ n: 3 }).blob, LATER), NOW)
  expect(t.applySnapshot('s', live({ counter: 2, origin: 'was9' }, encoded({ n: 2 }).blob, LATER), NOW)).toBe('stale')
  expect(t.applySnapshot('s', live({ counter: 3, origin: 'was0' }, encoded({ n: 3 }).blob, LATER), NOW)).toBe('stale')
  expect(t.applySnapshot('s', live({ counter: 3, origin: 'was2' }, encoded({ n: 4 }).blob, LATER), NOW)).toBe('applied')
  expect(t.peek('s')).toMatchObject({ counter: 3, origin: 'was2' })
})

test('a tombstone wins over any live version, and nothing brings the session back while it lasts', () => {
  const t = table()
  t.applySnapshot('s', live({ counter: 9, origin: 'was2' }, encoded({ n: 9 }).blob, LATER), NOW)
  expect(t.applyDestroy({ sid: 's', version: { counter: 2, origin: 'was1' }, keepUntil: NOW + 60_000 }, NOW)).toBe('applied')
  expect(t.applySnapshot('s', live({ counter: 99, origin: 'was2' }, encoded({ n: 99 }).blob, LATER), NOW)).toBe('stale')
  expect(
    t.applyDelta(
      { sid: 's', base: { counter: 9, origin: 'was2' }, version: { counter: 10, origin: 'was2' }, expiresAt: LATER, cookieExpires: null },
      NOW,
      replace(encoded({}).blob),
    ),
  ).toBe('stale')
  expect(t.upsert('s', encoded({ n: 100 }), LATER, NOW)).toBeUndefined()
  expect(t.get('s', NOW)).toBeUndefined()
})

test('an expiry change applies only to the version it was made for, and only moves expiry later', () => {
  const t = table()
  t.applySnapshot('s', live({ counter: 2, origin: 'was2' }, encoded({}).blob, LATER), NOW)
  expect(t.applyExpiry({ sid: 's', version: { counter: 1, origin: 'was2' }, expiresAt: LATER + 10, cookieExpires: null }, NOW)).toBe(
    'stale',
  )
  expect(t.applyExpiry({ sid: 's', version: { counter: 2, origin: 'was2' }, expiresAt: LATER - 10, cookieExpires: null }, NOW)).toBe(
    'stale',
  )
  expect(t.applyExpiry({ sid: 's', version: { counter: 2, origin: 'was2' }, expiresAt: LATER + 10, cookieExpires: LATER + 10 }, NOW)).toBe(
    'applied',
  )
  expect(t.peek('s')).toMatchObject({ expiresAt: LATER + 10, cookieExpires: LATER + 10 })
})

test('an expired snapshot is not stored', () => {
  const t = table()
  expect(t.applySnapshot('s', live({ counter: 1, origin: 'was2' }, encoded({}).blob, NOW - 1), NOW)).toBe('stale')
  expect(t.peek('s')).toBeUndefined()
})

test('local writes report changes with the base version they were made on', () => {
  const t = table()
  const created = t.upsert('s', encoded({ n: 1 }), LATER, NOW)
  expect(created).toMatchObject({ kind: 'upsert', base: NO_VERSION, previous: null })
  const updated = t.upsert('s', encoded({ n: 2 }), LATER, NOW)
  expect(updated).toMatchObject({ kind: 'upsert', base: { counter: 1, origin: 'was1' }, entry: { counter: 2 } })
  expect(t.upsert('s', encoded({ n: 2 }), LATER, NOW)).toBeUndefined()
  expect(t.upsert('s', encoded({ n: 2 }), LATER + 5, NOW)).toMatchObject({ kind: 'expiry' })
  expect(t.destroy('s', NOW)).toMatchObject({ kind: 'destroy', entry: { blob: null, counter: 3 } })
})

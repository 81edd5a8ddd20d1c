import { encodeSession } from '../../../lib/codec/session-codec.js'
import { SessionTable, type Entry, type EntryState, type LocalChange } from '../../../lib/table/session-table.js'

/**
 * Moves (rebinds) against destroys and writes made concurrently on another node. Two tables stand
 * for two nodes; each change is delivered to the other table the way the replicator applies it, in
 * both orders of arrival, and then the same is checked with anti-entropy alone (digests and fetches
 * after a partition), with no live message at all.
 */
const limits = { maxSessionBytes: 1 << 16, maxDepth: 16, maxContainerLength: 1 << 16 }
const NOW = 1_000_000
const LATER = NOW + 3_600_000
const blob = (data: Record<string, unknown>) => encodeSession(data, limits).blob

function node(nodeId: string, maxRebinds = 10): SessionTable {
  return new SessionTable({ nodeId, tombstoneTtlMs: 60_000, expiryResolutionMs: 1000, maxRebinds, touchAfterMs: 0 }, NOW)
}

function stateOf(entry: Readonly<Entry>): EntryState {
  return {
    version: { counter: entry.counter, origin: entry.origin },
    blob: entry.blob,
    movedTo: entry.movedTo,
    expiresAt: entry.expiresAt,
    cookieExpires: entry.cookieExpires,
    rebinds: entry.rebinds,
  }
}

/** Fetches `sid` whole from `source` into `target`, as a FETCH and its reply do. */
function fetch(source: SessionTable, target: SessionTable, sid: string): void {
  const entry = source.peek(sid)
  if (!entry) return
  if (target.applySnapshot(sid, stateOf(entry), NOW) === 'needs-target') fetch(source, target, entry.movedTo!)
}

/** Applies a local change of `source` on `target`, as the replicator does with its message. */
function deliver(change: LocalChange, source: SessionTable, target: SessionTable): void {
  const { entry } = change
  const version = { counter: entry.counter, origin: entry.origin }
  switch (change.kind) {
    case 'upsert':
      if (target.applyDelta({ ...entry, sid: change.sid, base: change.base, version }, NOW, () => entry.blob!) === 'needs-full')
        fetch(source, target, change.sid)
      return
    case 'destroy':
      target.applyDestroy({ sid: change.sid, version, keepUntil: entry.expiresAt }, NOW)
      return
    case 'rename': {
      const move = {
        from: change.sid,
        to: change.to,
        base: change.base,
        version,
        keepUntil: change.tombstone.expiresAt,
        rebinds: entry.rebinds,
      }
      if (target.applyRename(move, NOW) === 'needs-target') fetch(source, target, change.to)
      return
    }
    case 'expiry':
      target.applyExpiry({ ...entry, sid: change.sid, version }, NOW)
  }
}

/** One digest from `source` to `target`: tombstones applied, newer sessions fetched. */
function digest(source: SessionTable, target: SessionTable): void {
  for (const [sid, entry] of [...source.entries()]) {
    if (entry.blob === null) {
      if (target.applySnapshot(sid, stateOf(entry), NOW) === 'needs-target') fetch(source, target, entry.movedTo!)
      continue
    }
    const local = target.peek(sid)
    const newer =
      !local ||
      (local.blob === null && local.movedTo === null
        ? false
        : entry.counter > local.counter || (entry.counter === local.counter && entry.origin > local.origin))
    if (newer) fetch(source, target, sid)
  }
}

/** What a node holds: live ids with their data, and every tombstone. */
function view(table: SessionTable): { live: Record<string, unknown>; dead: string[] } {
  const live: Record<string, unknown> = {}
  const dead: string[] = []
  for (const [sid, entry] of table.entries()) {
    if (entry.blob) live[sid] = entry.blob.toString('hex')
    else dead.push(sid)
  }
  return { live, dead: dead.sort() }
}

/** Two nodes that both hold session `s` at the same version. */
function pair(id1 = 'was1', id2 = 'was2') {
  const a = node(id1)
  const b = node(id2)
  const created = a.upsert('s', { blob: blob({ user: 'ada' }), cookieExpires: null }, LATER, NOW)!
  deliver(created, a, b)
  return { a, b }
}

type Delivery = 'a-first' | 'b-first' | 'anti-entropy'

/** Brings two nodes together after concurrent changes `fromA` and `fromB`. */
function meet(a: SessionTable, b: SessionTable, fromA: LocalChange, fromB: LocalChange, how: Delivery): void {
  if (how === 'a-first') {
    deliver(fromA, a, b)
    deliver(fromB, b, a)
  } else if (how === 'b-first') {
    deliver(fromB, b, a)
    deliver(fromA, a, b)
  } else {
    digest(a, b)
    digest(b, a)
  }
  // Anti-entropy after any of them changes nothing more: the nodes have converged.
  const before = [view(a), view(b)]
  digest(a, b)
  digest(b, a)
  expect([view(a), view(b)]).toEqual(before)
}

const deliveries: Delivery[] = ['a-first', 'b-first', 'anti-entropy']

describe.each(deliveries)('delivered %s', (how) => {
  test('a destroy of the old id kills the session under its new id (a logout beats a stolen-cookie takeover)', () => {
    const { a, b } = pair()
    const logout = a.destroy('s', NOW)!
    const takeover = b.rename('s', 'stolen', NOW)!
    meet(a, b, logout, takeover, how)
    expect(a.get('stolen', NOW)).toBeUndefined()
    expect(b.get('stolen', NOW)).toBeUndefined()
    expect(view(a).live).toEqual({})
    expect(view(b)).toEqual(view(a))
  })

  test('a concurrent write with the higher version beats a move: the write survives, the new id dies', () => {
    const { a, b } = pair('was1', 'was2')
    const move = a.rename('s', 'moved', NOW)!
    const write = b.upsert('s', { blob: blob({ user: 'ada', cart: 3 }), cookieExpires: null }, LATER, NOW)!
    meet(a, b, move, write, how)
    for (const table of [a, b]) {
      expect(table.get('s', NOW)?.blob).toEqual(blob({ user: 'ada', cart: 3 }))
      expect(table.get('moved', NOW)).toBeUndefined()
    }
    expect(view(b)).toEqual(view(a))
  })

  test('a move with the higher version beats a concurrent write, the same way on both nodes', () => {
    const { a, b } = pair('was3', 'was2')
    const move = a.rename('s', 'moved', NOW)!
    const write = b.upsert('s', { blob: blob({ user: 'ada', cart: 3 }), cookieExpires: null }, LATER, NOW)!
    meet(a, b, move, write, how)
    for (const table of [a, b]) {
      expect(table.get('s', NOW)).toBeUndefined()
      expect(table.get('moved', NOW)?.blob).toEqual(blob({ user: 'ada' }))
    }
    expect(view(b)).toEqual(view(a))
  })

  test('two concurrent moves of one session end with one live id, the same on both nodes', () => {
    const { a, b } = pair()
    const moveA = a.rename('s', 'on-a', NOW)!
    const moveB = b.rename('s', 'on-b', NOW)!
    meet(a, b, moveA, moveB, how)
    expect(Object.keys(view(a).live)).toEqual(['on-b'])
    expect(view(b)).toEqual(view(a))
  })
})

test('a destroy of the first id reaches the end of a chain of moves', () => {
  const a = node('was1')
  const b = node('was2')
  deliver(a.upsert('s', { blob: blob({ n: 1 }), cookieExpires: null }, LATER, NOW)!, a, b)
  const logout = a.destroy('s', NOW)!
  // Meanwhile on b, the session moves twice.
  const first = b.rename('s', 't', NOW)!
  const second = b.rename('t', 'u', NOW)!
  deliver(first, b, a)
  deliver(second, b, a)
  deliver(logout, a, b)
  for (const table of [a, b]) expect(view(table).live).toEqual({})
})

test('a session moves at most maxRebinds times, so one session leaves at most that many tombstones', () => {
  const a = node('was1', 3)
  a.upsert('s0', { blob: blob({ n: 1 }), cookieExpires: null }, LATER, NOW)
  for (let i = 0; i < 3; i++) expect(a.rename(`s${i}`, `s${i + 1}`, NOW)).toMatchObject({ kind: 'rename' })
  expect(a.rename('s3', 's4', NOW)).toBeUndefined()
  expect(a.get('s3', NOW)).toBeDefined()
  expect(a.tombstoneCount).toBe(3)
})

test('the rebind count travels with the session, so the limit holds across nodes', () => {
  const a = node('was1', 2)
  const b = node('was2', 2)
  deliver(a.upsert('s0', { blob: blob({ n: 1 }), cookieExpires: null }, LATER, NOW)!, a, b)
  deliver(a.rename('s0', 's1', NOW)!, a, b)
  deliver(b.rename('s1', 's2', NOW)!, b, a)
  expect(a.peek('s2')).toMatchObject({ rebinds: 2 })
  expect(a.rename('s2', 's3', NOW)).toBeUndefined()
  expect(b.rename('s2', 's3', NOW)).toBeUndefined()
})

test('a clear starts a new epoch and keeps it', () => {
  const a = node('was1')
  a.upsert('s', { blob: blob({ n: 1 }), cookieExpires: null }, LATER, NOW)
  a.clear({ counter: 1, origin: 'was1' })
  expect(a.epoch).toEqual({ counter: 1, origin: 'was1' })
  expect(a.liveCount).toBe(0)
  a.clear()
  expect(a.epoch).toEqual({ counter: 1, origin: 'was1' })
})

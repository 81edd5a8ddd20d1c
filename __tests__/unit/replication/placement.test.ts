import { randomBytes } from 'node:crypto'
import { InvalidOptionError } from '../../../lib/base/errors.js'
import { resolveOptions } from '../../../lib/peer-store/options.js'
import { BackupPlacement } from '../../../lib/replication/placement.js'

const NODES = ['was1', 'was2', 'was3', 'was4', 'was5', 'was6']
const SIDS = Array.from({ length: 5000 }, () => randomBytes(18).toString('base64url'))

/** A placement as `self` sees it with `live` members (itself included or not: it always counts). */
function placement(self: string, live: readonly string[], backups = 1): BackupPlacement {
  const placed = new BackupPlacement(self, backups)
  placed.setLivePeers(live)
  return placed
}

describe('rendezvous placement of an owner and k backups', () => {
  test.each([1, 2, 3])('k = %d: the owner first, then k distinct backups, the same on every node', (k) => {
    const views = NODES.map((self) => placement(self, NODES, k))
    for (const sid of SIDS.slice(0, 500)) {
      const holders = views[0]!.holders(sid, 'was4')
      expect(holders[0]).toBe('was4')
      expect(new Set(holders).size).toBe(k + 1)
      for (const view of views) expect(view.holders(sid, 'was4')).toEqual(holders)
    }
  })

  test('backups spread evenly over the members (each within 15% of its share)', () => {
    const view = placement('was1', NODES)
    const share = new Map<string, number>()
    for (const sid of SIDS) for (const node of view.holders(sid, 'was1').slice(1)) share.set(node, (share.get(node) ?? 0) + 1)
    const expected = SIDS.length / (NODES.length - 1)
    for (const node of NODES.slice(1)) expect(Math.abs(share.get(node)! / expected - 1)).toBeLessThan(0.15)
  })

  test('a member joining moves only the sessions it becomes a holder of', () => {
    const before = placement('was1', NODES.slice(0, 5))
    const after = placement('was1', NODES)
    let moved = 0
    for (const sid of SIDS) {
      const old = before.holders(sid, 'was1')
      const now = after.holders(sid, 'was1')
      if (old.join() === now.join()) continue
      moved += 1
      expect(now).toContain('was6')
      // One holder made room: every other copy stays where it was.
      expect(now.filter((node) => old.includes(node))).toHaveLength(old.length - 1)
    }
    // About 1/5 of the backups move to the sixth node (k = 1, four candidates before, five after).
    expect(moved / SIDS.length).toBeGreaterThan(0.12)
    expect(moved / SIDS.length).toBeLessThan(0.28)
  })

  test('the owner gone: the holders are the top k + 1 live members, the surviving backups among them', () => {
    for (const k of [1, 2]) {
      const all = placement('was2', NODES, k)
      const withoutOwner = placement(
        'was2',
        NODES.filter((node) => node !== 'was1'),
        k,
      )
      for (const sid of SIDS.slice(0, 1000)) {
        const backups = all.holders(sid, 'was1').slice(1)
        const restored = withoutOwner.holders(sid, 'was1')
        expect(restored).toHaveLength(k + 1)
        expect(restored).not.toContain('was1')
        for (const backup of backups) expect(restored).toContain(backup)
      }
    }
  })

  test('the candidates a node asks on a miss include every backup but itself, whoever the owner', () => {
    for (const k of [1, 2]) {
      for (const self of NODES) {
        const view = placement(self, NODES, k)
        for (const sid of SIDS.slice(0, 300)) {
          const candidates = view.candidates(sid)
          expect(candidates).toHaveLength(k + 1)
          for (const owner of NODES) {
            if (owner === self) continue
            for (const backup of view.holders(sid, owner).slice(1)) if (backup !== self) expect(candidates).toContain(backup)
          }
        }
      }
    }
  })

  test('a change goes to the new holders, and to the previous writer and its holders', () => {
    const view = placement('was1', NODES)
    for (const sid of SIDS.slice(0, 300)) {
      expect(view.peersFor(sid, '')).toEqual(view.holders(sid, 'was1').slice(1))
      expect(view.peersFor(sid, 'was1')).toEqual(view.holders(sid, 'was1').slice(1))
      const moved = view.peersFor(sid, 'was3')
      expect(moved).not.toContain('was1')
      for (const node of [...view.holders(sid, 'was3'), ...view.holders(sid, 'was1')]) if (node !== 'was1') expect(moved).toContain(node)
    }
  })

  test('setLivePeers reports whether the set changed, whatever the order', () => {
    const view = placement('was1', ['was2', 'was3'])
    expect(view.setLivePeers(['was3', 'was2'])).toBe(false)
    expect(view.setLivePeers(['was3', 'was2', 'was1'])).toBe(false)
    expect(view.setLivePeers(['was3'])).toBe(true)
  })
})

describe('the replication option', () => {
  const base = { nodeId: 'was1', listen: '127.0.3.250:4055' }
  const resolve = (replication: unknown) => resolveOptions(['127.0.3.251:4055'], { ...base, replication } as never).replication.replication

  test("'all' by default; {} is one backup", () => {
    expect(resolveOptions(['127.0.3.251:4055'], base).replication.replication).toBe('all')
    expect(resolve({})).toEqual({ backups: 1 })
    expect(resolve({ backups: 3 })).toEqual({ backups: 3 })
  })

  test.each([
    ['backups', 'replication', /'all' or \{ backups: k \}/],
    [{ backups: 0 }, 'replication.backups', /from 1 to 8/],
    [{ backups: 1.5 }, 'replication.backups', /from 1 to 8/],
    [{ backup: 1 }, 'replication.backup', /did you mean `backups`/],
    [[], 'replication', /'all' or/],
  ])('%p is refused, naming %s', (value, option, message) => {
    let error: unknown
    try {
      resolve(value)
    } catch (caught) {
      error = caught
    }
    expect(error).toBeInstanceOf(InvalidOptionError)
    expect((error as InvalidOptionError).option).toBe(option)
    expect((error as InvalidOptionError).message).toMatch(message)
  })
})

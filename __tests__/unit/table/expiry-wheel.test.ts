import { ExpiryWheel } from '../../../lib/table/expiry-wheel.js'

function swept(wheel: ExpiryWheel, now: number): string[] {
  const ids: string[] = []
  wheel.sweep(now, (id) => ids.push(id))
  return ids.sort()
}

test('a sweep visits only the ids whose bucket came due', () => {
  const wheel = new ExpiryWheel(1000, 0)
  wheel.add('a', 1500)
  wheel.add('b', 2000)
  wheel.add('c', 2001)
  wheel.add('d', 60_000)
  expect(swept(wheel, 1999)).toEqual([])
  expect(swept(wheel, 2000)).toEqual(['a', 'b'])
  expect(swept(wheel, 2000)).toEqual([])
  expect(swept(wheel, 3000)).toEqual(['c'])
  expect(wheel.size).toBe(1)
})

test('a sweep of a million ids visits only the due ones', () => {
  const wheel = new ExpiryWheel(1000, 0)
  for (let i = 0; i < 1_000_000; i++) wheel.add(`s${i}`, 10_000 + (i % 1000) * 1000)
  let visited = 0
  wheel.sweep(10_000, () => (visited += 1))
  expect(visited).toBe(1000)
})

test('moving an id takes it out of its old bucket', () => {
  const wheel = new ExpiryWheel(1000, 0)
  wheel.add('a', 1000)
  wheel.move('a', 1000, 5000)
  expect(swept(wheel, 4000)).toEqual([])
  expect(swept(wheel, 5000)).toEqual(['a'])
})

test('removed ids are never visited', () => {
  const wheel = new ExpiryWheel(1000, 0)
  wheel.add('a', 1000)
  wheel.remove('a', 1000)
  expect(swept(wheel, 10_000)).toEqual([])
  expect(wheel.size).toBe(0)
})

test('an id added with an expiry in an already swept bucket is visited by the next sweep', () => {
  const wheel = new ExpiryWheel(1000, 0)
  wheel.sweep(5000, () => {})
  wheel.add('late', 4500)
  expect(swept(wheel, 6000)).toEqual(['late'])
})

test('a long pause or clock jump sweeps by bucket, not by elapsed step', () => {
  const wheel = new ExpiryWheel(1, 0)
  wheel.add('a', 10)
  wheel.add('b', 1e12)
  expect(swept(wheel, 1e11)).toEqual(['a'])
  expect(swept(wheel, 2e12)).toEqual(['b'])
})

import { exponentialBackoff } from '../../../lib/index.js'

test('doubles from the base up to the cap, jittered between half the step and the step', () => {
  const low = exponentialBackoff(100, 5000, () => 0)
  const high = exponentialBackoff(100, 5000, () => 1)
  expect([1, 2, 3, 4, 5, 6, 7, 10, 100].map(low)).toEqual([50, 100, 200, 400, 800, 1600, 2500, 2500, 2500])
  expect([1, 2, 3, 4, 5, 6, 7, 10, 100].map(high)).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000])
})

test('never gives up, and jitter spreads peers that retry at the same attempt', () => {
  const policy = exponentialBackoff()
  const delays = Array.from({ length: 200 }, () => policy(8))
  expect(delays.every((delay) => delay !== null && delay >= 2500 && delay <= 5000)).toBe(true)
  expect(new Set(delays).size).toBeGreaterThan(50)
  expect(policy(1_000_000)).not.toBeNull()
})

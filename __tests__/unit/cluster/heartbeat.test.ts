import { Heartbeat } from '../../../lib/cluster/heartbeat.js'

const timing = { intervalMs: 100, suspectAfterMs: 300, deadAfterMs: 1000 }

function harness() {
  const log: string[] = []
  const heartbeat = new Heartbeat(timing, {
    ping: (seq) => log.push(`ping ${seq}`),
    suspect: () => log.push('suspect'),
    recovered: () => log.push('recovered'),
    dead: () => log.push('dead'),
  })
  return { heartbeat, log }
}

beforeEach(() => jest.useFakeTimers())
afterEach(() => jest.useRealTimers())

test('pings every interval while the peer answers, and reports nothing else', async () => {
  const { heartbeat, log } = harness()
  heartbeat.start()
  for (let i = 0; i < 10; i++) {
    await jest.advanceTimersByTimeAsync(100)
    heartbeat.heard()
  }
  expect(log).toEqual(Array.from({ length: 10 }, (_, i) => `ping ${i + 1}`))
  heartbeat.stop()
})

test('one or two missed beats are not enough to suspect', async () => {
  const { heartbeat, log } = harness()
  heartbeat.start()
  await jest.advanceTimersByTimeAsync(200)
  heartbeat.heard()
  await jest.advanceTimersByTimeAsync(200)
  expect(log).not.toContain('suspect')
  heartbeat.stop()
})

test('silence: suspect once after suspectAfter, dead once after deadAfter, then the beat stops', async () => {
  const { heartbeat, log } = harness()
  heartbeat.start()
  await jest.advanceTimersByTimeAsync(300)
  expect(log.filter((line) => line === 'suspect')).toHaveLength(1)
  await jest.advanceTimersByTimeAsync(600)
  expect(log).not.toContain('dead')
  await jest.advanceTimersByTimeAsync(100)
  expect(log.filter((line) => line === 'dead')).toHaveLength(1)
  expect(heartbeat.running).toBe(false)
  const length = log.length
  await jest.advanceTimersByTimeAsync(5000)
  expect(log).toHaveLength(length)
})

test('hearing from a suspect peer reports it recovered, once', async () => {
  const { heartbeat, log } = harness()
  heartbeat.start()
  await jest.advanceTimersByTimeAsync(400)
  heartbeat.heard()
  heartbeat.heard()
  expect(log.filter((line) => line === 'recovered')).toHaveLength(1)
  await jest.advanceTimersByTimeAsync(900)
  expect(log).not.toContain('dead')
  heartbeat.stop()
})

test('start() twice leaves one beat running, and stop() leaves none', async () => {
  const { heartbeat, log } = harness()
  heartbeat.start()
  heartbeat.start()
  await jest.advanceTimersByTimeAsync(100)
  expect(log).toEqual(['ping 1'])
  heartbeat.stop()
  expect(jest.getTimerCount()).toBe(0)
})

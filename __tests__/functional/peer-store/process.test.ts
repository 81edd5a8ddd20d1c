import { runScript } from '../../helpers/child.js'

test.each([
  ['a store without peers', '0'],
  ['two connected nodes', '1'],
])('%s: after close() nothing the store created is alive and the process exits by itself', async (_, cluster) => {
  const result = await runScript('lifecycle.main.ts', { CLUSTER: cluster })
  expect(result.stderr).toBe('')
  expect(result.signal).toBeNull()
  expect(result.code).toBe(0)
  const report = JSON.parse(result.stdout) as { alive: string[]; resources: string[] }
  expect(report.alive).toEqual([])
  // stdout and stderr are pipes or ttys of the process itself, not the store's.
  expect(report.resources.filter((type) => type !== 'TTYWrap' && type !== 'PipeWrap')).toEqual([])
})

test('a callback that throws surfaces as an uncaught exception and is not called again', async () => {
  const result = await runScript('throwing-callback.main.ts')
  expect(result.code).toBe(0)
  expect(JSON.parse(result.stdout)).toEqual({ calls: 1, message: 'thrown by the application callback' })
})

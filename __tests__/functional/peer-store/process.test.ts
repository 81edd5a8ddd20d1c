import { once } from 'node:events'
import { createServer } from 'node:net'
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

test('a second instance of a node (its replication port taken) dies loudly, asking whether one is running', async () => {
  const firstInstance = createServer().listen(4055, '127.0.4.60')
  await once(firstInstance, 'listening')
  try {
    const result = await runScript('second-instance.main.ts', { LISTEN: '127.0.4.60:4055', PEER: '127.0.4.61:4055' })
    expect(result.code).toBe(1)
    expect(result.stderr).toContain('ListenError')
    const message = /Cannot listen on 127\.0\.4\.60:4055[^\n]*/.exec(result.stderr)?.[0] ?? ''
    expect(message).toContain('Is another instance of node "was1" already running?')
    // The likelier cause comes first; autoBind is for a port something else needs.
    expect(message.indexOf('another instance')).toBeLessThan(message.indexOf('autoBind'))
  } finally {
    firstInstance.close()
  }
})

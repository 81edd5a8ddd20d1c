import path from 'node:path'
import { ROOT } from '../../helpers/child.js'
import { WatchedProcess } from '../../helpers/process-lines.js'

const SERVER = path.join(ROOT, 'examples', 'express-app', 'server.ts')

async function run(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const base = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' }
  const node = new WatchedProcess(process.execPath, ['--import', 'tsx', SERVER], { cwd: ROOT, env: { ...base, ...env } })
  const { code } = await node.exited
  return { code, output: node.lines.join('\n') }
}

test.each([
  ['NODE_ID missing', {}, /NODE_ID is required \(for example NODE_ID=was1\)/],
  ['a bad NODE_ID', { NODE_ID: 'was 1' }, /NODE_ID must be/],
  ['LISTEN missing', { NODE_ID: 'was1' }, /LISTEN is required/],
  [
    'a malformed peer',
    { NODE_ID: 'was1', LISTEN: '127.0.0.11:4290', PEERS: 'node2' },
    /PEERS entries look like was2@10\.0\.0\.2:4055; got "node2"/,
  ],
  ['a bad port', { NODE_ID: 'was1', LISTEN: '127.0.0.11:4290', PORT: 'eighty' }, /PORT must be a port number/],
  [
    'no secret on a network address',
    { NODE_ID: 'was1', LISTEN: '0.0.0.0:4290', PEERS: 'was2@10.9.9.9:4055' },
    /error: Invalid option `secret`.*openssl rand -base64 32/,
  ],
])(
  'the example app refuses %s with a clear message and exit code 1',
  async (_, env, message) => {
    const { code, output } = await run(env)
    expect(code).toBe(1)
    expect(output).toMatch(message)
    expect(output).not.toMatch(/^\s+at /m) // a message, not a stack trace
  },
  30_000,
)

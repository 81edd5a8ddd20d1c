import { execFile, spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { freePort, lineMatching, ROOT } from '../../helpers/child.js'
import { packInto } from '../../helpers/packed-package.js'

const run = promisify(execFile)

/**
 * Installs the packed tarball into a scratch folder, as a user would, and uses it from CommonJS,
 * ESM and TypeScript. `npm test` builds dist/ before Jest runs.
 */
let folder: string

beforeAll(async () => {
  folder = await mkdtemp(path.join(tmpdir(), 'connect-peer-package-'))
  const { tarball, files } = await packInto(folder)
  // Only the build and the docs ship: no sources, tests or examples.
  expect(files.filter((file) => !/^(dist\/|README\.md$|LICENSE$|package\.json$)/.test(file))).toEqual([])
  await writeFile(path.join(folder, 'package.json'), JSON.stringify({ name: 'scratch', private: true }))
  // What an Express + TypeScript project has: express-session with its types, and Node's types.
  const dependencies = [
    tarball,
    ...['express@5', 'express-session@1', 'koa@3', 'koa-session@7', 'fastify@5', 'prom-client@15'],
    ...['@types/express@5', '@types/express-session@1', '@types/node@20', '@types/koa@3'],
  ]
  await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...dependencies], { cwd: folder })
}, 120_000)

afterAll(async () => {
  if (folder) await rm(folder, { recursive: true, force: true })
})

async function node(file: string, source: string): Promise<string> {
  await writeFile(path.join(folder, file), source)
  const { stdout } = await run(process.execPath, [file], { cwd: folder })
  return stdout.trim()
}

test('require() works from CommonJS', async () => {
  const out = await node(
    'use.cjs',
    `const { PeerStore, ErrorCodes } = require('connect-peer')
     const store = new PeerStore()
     store.set('a', { cookie: {}, n: 1 }).then(() => store.get('a')).then(async (s) => {
       console.log(JSON.stringify({ n: s.n, code: ErrorCodes.NOT_REPLICABLE })); await store.close() })`,
  )
  expect(JSON.parse(out)).toEqual({ n: 1, code: 'EPEER_NOT_REPLICABLE' })
})

test('import works from ESM, with named exports', async () => {
  const out = await node(
    'use.mjs',
    `import { PeerStore } from 'connect-peer'
     import session from 'express-session'
     const store = new PeerStore()
     console.log(store instanceof session.Store, typeof PeerStore)
     await store.close()`,
  )
  expect(out).toBe('true function')
})

test('the Koa and Fastify entry points load, from CommonJS and ESM; every entry point names its middleware peerSession', async () => {
  const cjs = await node(
    'entries.cjs',
    `const express = require('connect-peer'); const koa = require('connect-peer/koa'); const fastify = require('connect-peer/fastify')
     console.log(typeof express.peerSession, typeof koa.peerSession, typeof koa.koaStore, typeof fastify.peerSession)`,
  )
  expect(cjs).toBe('function function function function')
  const esm = await node(
    'entries.mjs',
    `import { peerSession as onKoa, peerKoaSession } from 'connect-peer/koa'; import { peerSession as onFastify, connectPeerFastify } from 'connect-peer/fastify'
     // The earlier names stay, deprecated.
     console.log(typeof onKoa, typeof peerKoaSession, onFastify === connectPeerFastify)`,
  )
  expect(esm).toBe('function function true')
})

test('connect-peer/metrics loads prom-client; no other entry does, so it stays optional', async () => {
  const out = await node(
    'metrics.cjs',
    `const loaded = () => Object.keys(require.cache).some((file) => file.includes('prom-client'))
     const { PeerStore, statusPage } = require('connect-peer'); require('connect-peer/koa'); require('connect-peer/fastify')
     const before = loaded()
     const { collectMetrics } = require('connect-peer/metrics')
     const { Registry } = require('prom-client')
     const store = new PeerStore(); const register = new Registry()
     const metrics = collectMetrics(store, { register })
     register.getSingleMetricAsString('connect_peer_sessions').then(async (text) => {
       console.log(JSON.stringify({ before, after: loaded(), statusPage: typeof statusPage, text: text.split('\\n').pop() }))
       metrics.stop(); await store.close() })`,
  )
  expect(JSON.parse(out)).toEqual({ before: false, after: true, statusPage: 'function', text: 'connect_peer_sessions 0' })
  const esm = await node(
    'metrics.mjs',
    `import { collectMetrics } from 'connect-peer/metrics'
     import { statusPage as onKoa } from 'connect-peer/koa'
     import { statusPage as onFastify } from 'connect-peer/fastify'
     console.log(typeof collectMetrics, typeof onKoa, typeof onFastify)`,
  )
  expect(esm).toBe('function function function')
})

test('internal modules are not importable', async () => {
  const out = await node(
    'deep.cjs',
    `try { require('connect-peer/dist/peer-store/peer-store.js'); console.log('importable') } catch (e) { console.log(e.code) }`,
  )
  expect(out).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED')
})

test('the types resolve for a TypeScript user', async () => {
  await writeFile(
    path.join(folder, 'use.ts'),
    `import express from 'express'
     import Koa from 'koa'
     import Fastify from 'fastify'
     import { PeerStore, peerSession, type PeerStoreOptions, NotReplicableError, type Member } from 'connect-peer'
     import { peerSession as koaSession } from 'connect-peer/koa'
     import { peerSession as fastifySession, statusPage as fastifyStatus } from 'connect-peer/fastify'
     import { statusPage, type ClusterStatus } from 'connect-peer'
     import { statusPage as koaStatus } from 'connect-peer/koa'
     import { collectMetrics, type MetricsCollection } from 'connect-peer/metrics'
     import { Registry } from 'prom-client'
     const options: PeerStoreOptions = { ttl: 60, touchAfter: 10, nodeId: 'was1', listen: '127.0.0.1:0' }
     const store: PeerStore = new PeerStore([{ host: '127.0.0.2', port: 4055, nodeId: 'was2' }], options)
     const found: Promise<import('express-session').SessionData | null> = store.get('a')
     store.on('peer:up', (member: Member) => member.nodeId)
     const app = express()
     app.use(peerSession({ store, secret: 's', resave: false, saveUninitialized: false }))
     app.get('/', (req, res) => { res.send(req.previousSessionID ?? req.sessionID) })
     const koa = new Koa()
     koa.use(koaSession(koa, { store, maxAge: 1000 }))
     const fastify = Fastify()
     void fastify.register(fastifySession, { store })
     app.use(statusPage(store, { authorize: (req) => req.socket.remoteAddress === '127.0.0.1' }))
     koa.use(koaStatus(store, { authorize: (ctx) => ctx.ip === '127.0.0.1', path: '/status' }))
     void fastify.register(fastifyStatus, { store, authorize: async (request) => request.ip === '127.0.0.1' })
     const metrics: MetricsCollection = collectMetrics(store, { register: new Registry(), prefix: 'app_' })
     const shown = (status: ClusterStatus) => status.members.map((member) => member.state)
     void [metrics, shown]
     export { found, NotReplicableError }`,
  )
  await writeFile(
    path.join(folder, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        module: 'nodenext',
        moduleResolution: 'nodenext',
        noEmit: true,
        skipLibCheck: false,
        types: ['node'],
      },
      files: ['use.ts'],
    }),
  )
  const compiled = await run(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], {
    cwd: folder,
  }).catch((error: Error & { stdout?: string }) => ({ stdout: error.stdout ?? error.message }))
  // Our declarations and the user's file must be clean; other packages' own typings are not ours to judge.
  const ours = compiled.stdout.split('\n').filter((line) => /^(use\.ts|node_modules\/connect-peer\/)/.test(line))
  expect(ours).toEqual([])
}, 60_000)

test("the README's quick start runs as written: counts views and shuts down on SIGTERM", async () => {
  const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8')
  const quickStart = /<!-- check: run quick-start -->\s*```ts\n([\s\S]*?)```/.exec(readme)?.[1]
  expect(quickStart).toContain("from 'connect-peer'")
  await writeFile(path.join(folder, 'quickstart.ts'), quickStart!)
  const port = await freePort()
  const tsx = path.join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs')
  const child = spawn(process.execPath, [tsx, 'quickstart.ts'], {
    cwd: folder,
    env: { ...process.env, PORT: String(port), SESSION_SECRET: 'quick start secret' },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  try {
    await lineMatching(child.stdout, /listening on/)
    let cookie = ''
    const bodies: string[] = []
    for (let i = 0; i < 2; i++) {
      const response = await fetch(`http://127.0.0.1:${port}/`, { headers: cookie ? { cookie } : {} })
      const session = response.headers.getSetCookie().find((line) => line.startsWith('connect.sid='))
      cookie = session?.split(';')[0] ?? cookie
      bodies.push(await response.text())
    }
    expect(bodies).toEqual(['views: 1', 'views: 2'])
    child.kill('SIGTERM')
    const [code] = (await once(child, 'exit')) as [number | null]
    expect(code).toBe(0)
  } finally {
    child.kill('SIGKILL')
  }
}, 60_000)

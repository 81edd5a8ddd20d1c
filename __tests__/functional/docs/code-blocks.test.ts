import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { once } from 'node:events'
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { ROOT } from '../../helpers/child.js'
import {
  checkBlocks,
  checkLinks,
  commandsOf,
  documentationFiles,
  extractBlocks,
  tableNames,
  type CodeBlock,
  type Problem,
  type ReferenceCheck,
} from '../../helpers/doc-blocks.js'
import { packedProject, type PackedProject } from '../../helpers/packed-package.js'

/**
 * Every code block of README.md and docs/*.md is checked: TypeScript type-checks against the packed
 * package (one tsc run), shell commands exist and name real npm scripts, HAProxy configuration
 * passes `haproxy -c`, JSON and YAML parse, XML is well formed. The Quick start and "Two servers"
 * examples run as written, on loopback: addresses and ports are substituted (10.10.10.1 and
 * 10.10.10.2 become 127.0.8.1 and 127.0.8.2, ports 4055 and 3000 become free ports, HOST is the
 * node's loopback address) and nothing else.
 */
const files = documentationFiles()
const texts = new Map(files.map((file) => [file, readFileSync(path.join(ROOT, file), 'utf8')]))
const blocks = files.flatMap((file) => extractBlocks(texts.get(file)!, file))

let project: PackedProject

beforeAll(async () => {
  project = await packedProject()
}, 180_000)

/** Every process a test started: killed after each test, even one that timed out. */
const children = new Set<ChildProcessWithoutNullStreams>()

afterEach(() => {
  for (const child of children) child.kill('SIGKILL')
  children.clear()
})

afterAll(async () => {
  await project?.remove()
})

const format = (problem: Problem) => `${problem.where}: ${problem.message}`

test('every code block in README.md and docs/ checks out against the packed package', async () => {
  expect(blocks.length).toBeGreaterThan(10)
  const problems = await checkBlocks(blocks, project.folder, referenceChecks(texts.get('docs/api.md')!))
  expect(problems.map(format)).toEqual([])
}, 120_000)

test('a broken block of every kind is reported, at its line; a sound fragment is not', async () => {
  const broken = [
    '```ts', // 1: a type error on line 3
    "import { PeerStore } from 'connect-peer'",
    "const store = new PeerStore({ ttl: 'one day' })",
    'void store.close()',
    '```',
    '<!-- check: fragment -->', // 6
    '```ts', // 7: uses the declared store: fine
    'await store.ready()',
    '```',
    '<!-- check: fragment -->',
    '```ts', // 11: an error on line 13
    'const n: number = await store.length()',
    'const s: string = n',
    '```',
    '```text', // 15: unknown, unmarked
    'some output',
    '```',
    '```', // 18: no language, unmarked
    'npm start',
    '```',
    '```sh', // 21: a script package.json does not have, on line 22
    'npm run no-such-script',
    'no-such-command --flag # and a command nobody has, on line 23',
    '```',
    '```json', // 25
    '{ "a": 1, }',
    '```',
    '```haproxy', // 28
    'backend app',
    '    balance sideways',
    '```',
    '```xml', // 32
    '<a><b></a>',
    '```',
    '```yaml', // 35
    'a: [1, 2',
    '```',
    '```nginx', // 38
    'upstream a { server x',
    '```',
    '<!-- check: output -->',
    '```', // 42: output, not checked
    'views: 1',
    '```',
  ].join('\n')
  const folder = path.join(project.folder, 'broken')
  await mkdir(folder)
  const problems = await checkBlocks(extractBlocks(broken, 'broken.md'), folder)
  const lines = [...new Set(problems.map((problem) => problem.where))].sort()
  expect(lines).toEqual(
    [
      'broken.md:3',
      'broken.md:13',
      'broken.md:15',
      'broken.md:18',
      'broken.md:22',
      'broken.md:23',
      'broken.md:25',
      'broken.md:28',
      'broken.md:32',
      'broken.md:35',
      'broken.md:38',
    ].sort(),
  )
  expect(problems.find((problem) => problem.where === 'broken.md:22')?.message).toMatch(/no-such-script/)
  expect(problems.find((problem) => problem.where === 'broken.md:28')?.message).toMatch(/haproxy -c failed/)
  // An unknown marker is refused outright rather than read as no marker.
  expect(() => extractBlocks('<!-- check: skip -->\n```ts\nx\n```', 'x.md')).toThrow(/unknown marker/)
}, 60_000)

test('a shell line splits into its commands, leaving out assignments and comments', () => {
  expect(commandsOf('A=1 B="x y" npx tsx server.ts   # on 10.10.10.1')).toEqual([['npx', 'tsx', 'server.ts']])
  expect(commandsOf('SESSION_SECRET="$(openssl rand -base64 32)" npx tsx s.ts && curl -s x | jq .')).toEqual([
    ['openssl', 'rand', '-base64', '32'],
    ['npx', 'tsx', 's.ts'],
    ['curl', '-s', 'x'],
    ['jq', '.'],
  ])
})

test('links between README.md and docs/ lead to files and headings that exist', () => {
  const problems = files.flatMap((file) => checkLinks(texts.get(file)!, file))
  expect(problems.map(format)).toEqual([])
})

test('the README stays a front door: at most 400 lines and 24 KB, with no unexplained "seed"', () => {
  const readme = texts.get('README.md')!
  expect(readme.split('\n').length).toBeLessThanOrEqual(400)
  expect(Buffer.byteLength(readme)).toBeLessThanOrEqual(24 * 1024)
  for (const file of files) expect(`${file}: ${texts.get(file)!.match(/the seed's?\b.*/i)?.[0] ?? 'none'}`).toBe(`${file}: none`)
})

test('the Quick start runs: counts views for the curl lines the README shows, refuses a missing secret, stops on SIGTERM', async () => {
  const { code } = runBlock('quick-start')
  const commands = runBlock('quick-start-commands')
  await writeFile(path.join(project.folder, 'quick-start.ts'), code)
  const host = '127.0.8.1'
  const port = await freePort(host)

  const refused = spawnExample('quick-start.ts', { SESSION_SECRET: undefined, HOST: host, PORT: String(port) })
  const [exitCode] = (await once(refused.child, 'exit')) as [number | null]
  expect(exitCode).toBe(1)
  expect(refused.output()).toMatch(/Set SESSION_SECRET/)

  const server = spawnExample('quick-start.ts', { SESSION_SECRET: 'a quick start secret', HOST: host, PORT: String(port) })
  try {
    await server.waitFor(/listening on/)
    const substitute = (text: string) => text.replaceAll('127.0.0.1:3000', `${host}:${port}`)
    await runCurlLines(commands.code, substitute)
    await server.stop()
  } finally {
    server.child.kill('SIGKILL')
  }
}, 60_000)

test('Two servers runs as two processes: a session written on one is read, and taken over, on the other', async () => {
  const { code } = runBlock('two-servers')
  const commands = runBlock('two-servers-commands')
  await writeFile(path.join(project.folder, 'server.ts'), code)
  const hosts = ['127.0.8.1', '127.0.8.2'] as const
  const replication = [await freePort(hosts[0]), await freePort(hosts[1])]
  // The curl lines reach both servers under one name and port (`--resolve`), as behind a balancer.
  const web = await freePortOnBoth(hosts)
  const substitute = (text: string) =>
    text
      .replaceAll('10.10.10.1:4055', `${hosts[0]}:${replication[0]}`)
      .replaceAll('10.10.10.2:4055', `${hosts[1]}:${replication[1]}`)
      .replaceAll(':3000:10.10.10.1', `:${web}:${hosts[0]}`)
      .replaceAll(':3000:10.10.10.2', `:${web}:${hosts[1]}`)
      .replaceAll(':3000/', `:${web}/`)
  const lines = commands.code.split('\n')
  // The secrets from the `export` line, each node's settings from its own line.
  const shared = assignments(lines.find((line) => line.startsWith('export '))!)
  const nodeLines = lines.filter((line) => line.includes('NODE_ID='))
  expect(nodeLines).toHaveLength(2)
  const nodes = nodeLines.map((line, index) =>
    spawnExample('server.ts', { ...shared, ...assignments(substitute(line)), HOST: hosts[index]!, PORT: String(web) }),
  )
  try {
    for (const node of nodes) await node.waitFor(/listening on/)
    for (const node of nodes) await node.waitFor(/peer \S+ is up/)
    await runCurlLines(commands.code, substitute)
    await Promise.all(nodes.map((node) => node.stop()))
  } finally {
    for (const node of nodes) node.child.kill('SIGKILL')
  }
}, 60_000)

/** The block marked `<!-- check: run NAME -->`. */
function runBlock(name: string): CodeBlock {
  const found = blocks.filter((block) => block.marker?.kind === 'run' && block.marker.name === name)
  expect(found.map((block) => `${block.file}: ${name}`)).toEqual([`README.md: ${name}`])
  return found[0]!
}

/** `KEY=value` and `KEY="value"` words of a shell line, up to its command. */
function assignments(line: string): Record<string, string> {
  const env: Record<string, string> = {}
  for (const match of line.replace(/^export\s+/, '').matchAll(/(?:^|\s)([A-Z_][A-Z0-9_]*)=("[^"]*"|\S+)/g)) {
    env[match[1]!] = match[2]!.replace(/^"|"$/g, '')
  }
  return env
}

/**
 * Runs each `curl` line of a shell block (after `substitute`) in one folder with its cookie jar, and
 * expects the output its comment shows. Replication is asynchronous: a line whose answer is not
 * there yet is tried again, with the jar as it was, for up to 10 s.
 */
async function runCurlLines(code: string, substitute: (text: string) => string): Promise<void> {
  const folder = await mkdtemp(path.join(tmpdir(), 'connect-peer-curl-'))
  try {
    for (const line of code.split('\n').filter((each) => /^curl\s/.test(each))) {
      const [command, expected] = line.split(/\s+#\s+/) as [string, string | undefined]
      expect(expected).toBeDefined()
      const deadline = Date.now() + 10_000
      let output = ''
      for (;;) {
        await copyFile(path.join(folder, 'jar'), path.join(folder, 'jar.before')).catch(() => undefined)
        output = (await promisify(execFile)('bash', ['-c', substitute(command)], { cwd: folder })).stdout.trim()
        if (output === expected!.trim() || Date.now() > deadline) break
        await copyFile(path.join(folder, 'jar.before'), path.join(folder, 'jar')).catch(() => rm(path.join(folder, 'jar'), { force: true }))
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
      expect(`${line} -> ${output}`).toBe(`${line} -> ${expected!.trim()}`)
    }
  } finally {
    await rm(folder, { recursive: true, force: true })
  }
}

interface Example {
  readonly child: ChildProcessWithoutNullStreams
  output(): string
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>
  /** SIGTERM, and expects a clean exit (code 0) within 15 s. */
  stop(): Promise<void>
}

/**
 * Runs a file of the scratch project with tsx, as a user would (`npx tsx file.ts`), but as
 * `node --import tsx file.ts`: one process, which the signals reach (tsx's CLI runs the file in a
 * child of its own).
 */
function spawnExample(file: string, env: Record<string, string | undefined>): Example {
  const merged: NodeJS.ProcessEnv = { ...process.env, ...env }
  for (const [key, value] of Object.entries(env)) if (value === undefined) delete merged[key]
  const child = spawn(process.execPath, ['--import', 'tsx', file], { cwd: project.folder, env: merged, stdio: 'pipe' })
  children.add(child)
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
  return {
    child,
    output: () => output,
    async waitFor(pattern, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs
      while (!pattern.test(output)) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`no output matching ${pattern} from ${file}:\n${output}`)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    },
    async stop() {
      const exited = once(child, 'exit') as Promise<[number | null, string | null]>
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      const [code, signal] = await exited
      clearTimeout(timer)
      expect({ file, code, signal }).toEqual({ file, code: 0, signal: null })
    },
  }
}

/** A TCP port that was free a moment ago on `host`. */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, host, () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
    server.on('error', reject)
  })
}

/** A port free on every one of `hosts`. */
async function freePortOnBoth(hosts: readonly string[]): Promise<number> {
  for (;;) {
    const port = await freePort(hosts[0]!)
    const others = await Promise.all(hosts.slice(1).map((host) => portIsFree(host, port)))
    if (others.every(Boolean)) return port
  }
}

function portIsFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer().listen(port, host, () => server.close(() => resolve(true)))
    server.on('error', () => resolve(false))
  })
}

/**
 * Files that compile only while docs/api.md lists exactly the options, events, error codes, error
 * classes and route cookie options the packed package declares: a name missing from the docs, or
 * documented but gone, is a type error naming it.
 */
function referenceChecks(api: string): ReferenceCheck[] {
  const list = (names: string[]) => `[${names.map((name) => JSON.stringify(name)).join(', ')}] as const`
  const same = (what: string, names: string[], type: string) => ({
    where: `docs/api.md (${what} against ${type})`,
    source: [
      "import type * as api from 'connect-peer'",
      `const documented = ${list(names)}`,
      'type Documented = (typeof documented)[number]',
      `type Undocumented = Exclude<${type}, Documented>`,
      `type Unknown = Exclude<Documented, ${type}>`,
      'export const undocumented: [Undocumented] extends [never] ? true : Undocumented = true',
      'export const documentedButUnknown: [Unknown] extends [never] ? true : Unknown = true',
    ].join('\n'),
  })
  const options = tableNames(api, '## Options').filter((name) => !name.includes('.'))
  const errorClasses = tableNames(api, '## Errors')
  return [
    same('## Options', options, 'keyof api.PeerStoreOptions'),
    same('## Events', tableNames(api, '## Events'), 'keyof api.PeerStoreEvents'),
    same('## Errors, codes', tableNames(api, '## Errors', 1), 'api.ErrorCode'),
    same('## Errors, classes', errorClasses, "Exclude<Extract<keyof typeof api, `${string}Error`>, 'PeerStoreError'>"),
    same('routeCookie', tableNames(api, '### `routeCookie` (`RouteCookieOptions`)'), 'keyof api.RouteCookieOptions'),
  ]
}

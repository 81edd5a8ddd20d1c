import { execFileSync, spawn } from 'node:child_process'
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { ROOT } from '../../helpers/child.js'

/**
 * scripts/prepare.mjs, the first step of `npm test` and `npm run demo`, run as a real process: in
 * the repository with a PATH of fake tools (what is found, what is missing), and as the copy in a
 * throwaway project whose one dependency is a local tarball (npm ci works offline).
 */
const PREPARE = path.join(ROOT, 'scripts', 'prepare.mjs')
let scratch: string

beforeAll(() => {
  scratch = mkdtempSync(path.join(tmpdir(), 'connect-peer-prepare-'))
})

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true })
})

interface Run {
  code: number | null
  lines: string[]
  ms: number
}

function prepare(script: string, mode: string, env: NodeJS.ProcessEnv): Promise<Run> {
  const started = Date.now()
  const child = spawn(process.execPath, [script, mode], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code) => resolve({ code, lines: output.split('\n').filter(Boolean), ms: Date.now() - started }))
  })
}

/** A folder of executables that only exist (the script looks for them, never runs them). */
function fakeBin(name: string, tools: string[]): string {
  const dir = path.join(scratch, name)
  mkdirSync(dir, { recursive: true })
  for (const tool of tools) {
    // If anything ran it, the marker would say so.
    writeFileSync(path.join(dir, tool), `#!/bin/sh\ntouch "${dir}/${tool}.ran"\n`)
    chmodSync(path.join(dir, tool), 0o755)
  }
  return dir
}

/** What the namespaced-network tests need, asked for only as root (these tests run as root in CI). */
const NETNS_TOOLS = process.getuid?.() === 0 ? ['ip', 'iptables', 'python3'] : []
/** What the Docker test needs, asked for only as root: it starts dockerd, and debootstrap makes local base images. */
const DOCKER_TOOLS = process.getuid?.() === 0 ? ['docker', 'docker-compose', 'dockerd', 'debootstrap'] : []

const bare = (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv => ({ HOME: process.env.HOME, CONNECT_PEER_NO_INSTALL: '1', ...env })

describe('npm test: tools from outside npm', () => {
  test('haproxy missing and installing forbidden: exit 1 within seconds, one line naming the apt-get command', async () => {
    const bin = fakeBin('no-haproxy', ['chromium', 'redis-server', 'apt-get', ...NETNS_TOOLS, ...DOCKER_TOOLS])
    const { code, lines, ms } = await prepare(PREPARE, 'test', bare({ PATH: bin }))
    expect(code).toBe(1)
    expect(ms).toBeLessThan(5000)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(
      /^\[prepare\] the tests need haproxy, which is missing: run "(sudo )?apt-get install haproxy", then npm test again$/,
    )
    expect(existsSync(path.join(bin, 'apt-get.ran'))).toBe(false)
  })

  test('no apt-get (not Debian): one line naming what to install', async () => {
    const browser = path.join(fakeBin('browser', ['chrome']), 'chrome')
    const { code, lines } = await prepare(
      PREPARE,
      'test',
      bare({ PATH: fakeBin('nothing', [...NETNS_TOOLS, ...DOCKER_TOOLS]), CHROMIUM_PATH: browser }),
    )
    expect({ code, lines }).toEqual({
      code: 1,
      lines: ['[prepare] the tests need haproxy redis-server, which are missing: install haproxy redis-server, then npm test again'],
    })
  })

  test('CHROMIUM_PATH is honoured: a browser there counts, a wrong path is named', async () => {
    const bin = fakeBin('no-chromium', ['haproxy', 'redis-server', ...NETNS_TOOLS, ...DOCKER_TOOLS])
    const browser = path.join(fakeBin('browser', ['chrome']), 'chrome')
    // Everything found: the npm dependencies are what the repository has (nothing to install).
    const found = await prepare(PREPARE, 'test', bare({ PATH: bin, CHROMIUM_PATH: browser }))
    expect(found).toEqual({ code: 0, lines: [], ms: expect.any(Number) })

    const wrong = await prepare(PREPARE, 'test', bare({ PATH: bin, CHROMIUM_PATH: path.join(scratch, 'no-such-chrome') }))
    expect(wrong.code).toBe(1)
    expect(wrong.lines).toEqual([
      `[prepare] CHROMIUM_PATH=${path.join(scratch, 'no-such-chrome')} is not an executable file: point it at a Chromium or Chrome binary, or unset it`,
    ])
  })

  test('with the real haproxy, Chromium, redis-server and Docker of this machine it says nothing and exits 0', async () => {
    const { code, lines } = await prepare(PREPARE, 'test', { ...process.env, CONNECT_PEER_NO_INSTALL: '1' })
    expect({ code, lines }).toEqual({ code: 0, lines: [] })
  })

  test("as root, the network tests' tools are asked for too: iproute2 for ip, iptables, python3", async () => {
    if (process.getuid?.() !== 0) return
    const bin = fakeBin('no-ip', ['haproxy', 'redis-server', 'chromium', 'apt-get', 'python3', ...DOCKER_TOOLS])
    const { code, lines } = await prepare(PREPARE, 'test', bare({ PATH: bin }))
    expect({ code, lines }).toEqual({
      code: 1,
      lines: [
        '[prepare] the tests need iproute2 iptables, which are missing: run "apt-get install iproute2 iptables", then npm test again',
      ],
    })
    expect(existsSync(path.join(bin, 'apt-get.ran'))).toBe(false)
  })

  test('Docker for the compose test, as root only: docker.io (for dockerd), docker-compose and debootstrap; without root none is asked for', async () => {
    const root = process.getuid?.() === 0
    const bin = fakeBin('no-docker', ['haproxy', 'redis-server', 'chromium', 'apt-get', 'docker', ...NETNS_TOOLS])
    const { code, lines } = await prepare(PREPARE, 'test', bare({ PATH: bin }))
    const missing = 'docker.io docker-compose debootstrap'
    expect({ code, lines }).toEqual(
      root
        ? {
            code: 1,
            lines: [`[prepare] the tests need ${missing}, which are missing: run "apt-get install ${missing}", then npm test again`],
          }
        : { code: 0, lines: [] }, // the Docker test skips itself, saying why
    )
    expect(existsSync(path.join(bin, 'apt-get.ran'))).toBe(false)
    expect(existsSync(path.join(bin, 'docker.ran'))).toBe(false)
  })

  test('the demo needs none of them', async () => {
    const { code, lines } = await prepare(PREPARE, 'demo', bare({ PATH: fakeBin('demo', []) }))
    expect({ code, lines }).toEqual({ code: 0, lines: [] })
  })
})

describe('npm dependencies', () => {
  let project: string
  let script: string

  /**
   * Locks a dependency on `tiny` at `version` (a local tarball) in a folder of its own, then hands
   * the project that package.json and package-lock.json, as a `git pull` would.
   */
  function lockTiny(version: string): void {
    const upstream = path.join(scratch, `upstream-${version}`)
    const tiny = path.join(upstream, 'tiny')
    mkdirSync(tiny, { recursive: true })
    writeFileSync(path.join(tiny, 'package.json'), JSON.stringify({ name: 'tiny', version, main: 'index.js' }))
    writeFileSync(path.join(tiny, 'index.js'), `module.exports = '${version}'\n`)
    execFileSync('npm', ['pack', '--silent'], { cwd: tiny, env: npmEnv() })
    writeFileSync(
      path.join(upstream, 'package.json'),
      JSON.stringify({ name: 'project', version: '1.0.0', private: true, dependencies: { tiny: `file:tiny/tiny-${version}.tgz` } }),
    )
    execFileSync('npm', ['install', '--package-lock-only', '--no-audit', '--no-fund', '--silent'], { cwd: upstream, env: npmEnv() })
    mkdirSync(path.join(project, 'tiny'), { recursive: true })
    for (const file of ['package.json', 'package-lock.json', `tiny/tiny-${version}.tgz`]) {
      copyFileSync(path.join(upstream, file), path.join(project, file))
    }
  }

  // Offline: nothing here may reach a registry.
  const npmEnv = (): NodeJS.ProcessEnv => ({ ...process.env, npm_config_offline: 'true', npm_config_update_notifier: 'false' })

  beforeAll(() => {
    project = path.join(scratch, 'project')
    mkdirSync(path.join(project, 'scripts'), { recursive: true })
    script = path.join(project, 'scripts', 'prepare.mjs')
    copyFileSync(PREPARE, script)
    lockTiny('1.0.0')
  }, 30_000)

  test('node_modules missing: forbidden to install, it names npm ci and exits 1', async () => {
    const { code, lines } = await prepare(script, 'demo', { ...npmEnv(), CONNECT_PEER_NO_INSTALL: '1' })
    expect({ code, lines }).toEqual({ code: 1, lines: ['[prepare] node_modules is missing: run "npm ci", then npm run demo again'] })
  })

  test('node_modules missing: it says so and runs npm ci; the next run says nothing', async () => {
    const first = await prepare(script, 'demo', npmEnv())
    expect(first.code).toBe(0)
    expect(first.lines[0]).toBe('[prepare] node_modules is missing: installing the npm dependencies (npm ci)')
    expect(existsSync(path.join(project, 'node_modules', 'tiny', 'package.json'))).toBe(true)

    const second = await prepare(script, 'demo', npmEnv())
    expect({ code: second.code, lines: second.lines }).toEqual({ code: 0, lines: [] })
  }, 30_000)

  test('node_modules a link to another checkout (a git worktree): stale, it is not reinstalled through the link', async () => {
    // A checkout sharing this project's node_modules, whose package-lock.json wants something else.
    const worktree = path.join(scratch, 'worktree')
    mkdirSync(path.join(worktree, 'scripts'), { recursive: true })
    copyFileSync(script, path.join(worktree, 'scripts', 'prepare.mjs'))
    const lock = JSON.parse(readFileSync(path.join(project, 'package-lock.json'), 'utf8'))
    lock.packages['node_modules/tiny'].version = '9.9.9'
    writeFileSync(path.join(worktree, 'package-lock.json'), JSON.stringify(lock))
    symlinkSync(path.join(project, 'node_modules'), path.join(worktree, 'node_modules'))

    const { code, lines } = await prepare(path.join(worktree, 'scripts', 'prepare.mjs'), 'test', {
      ...npmEnv(),
      CHROMIUM_PATH: process.execPath, // any executable: only npm is looked at here
      PATH: `${fakeBin('worktree-tools', ['haproxy', 'redis-server'])}${path.delimiter}${process.env.PATH}`,
    })
    expect({ code, lines }).toEqual({
      code: 1,
      lines: [
        `[prepare] tiny 1.0.0 is installed but package-lock.json wants 9.9.9, and node_modules is a link to ${path.join(project, 'node_modules')}: run "npm ci" there, or remove the link`,
      ],
    })
    expect(existsSync(path.join(project, 'node_modules', 'tiny', 'package.json'))).toBe(true)
  })

  test('node_modules older than package-lock.json: it names the package and reinstalls', async () => {
    lockTiny('1.0.1')
    const { code, lines } = await prepare(script, 'demo', npmEnv())
    expect(code).toBe(0)
    expect(lines[0]).toBe('[prepare] tiny 1.0.0 is installed but package-lock.json wants 1.0.1: installing the npm dependencies (npm ci)')
    expect(execFileSync(process.execPath, ['-p', "require('tiny')"], { cwd: project }).toString().trim()).toBe('1.0.1')
  }, 30_000)
})

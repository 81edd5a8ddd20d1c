/**
 * A Docker engine for the tests that run docker-compose.yml for real, and Compose commands on one
 * project of it.
 *
 * `dockerEngine()` uses a Docker engine that already runs (its pid file names a live dockerd, or
 * `docker info` answers), and never starts a second one nor cleans up after one it did not start.
 * Where none runs and this is root, it saves what dockerd changes on the host (the iptables tables,
 * the sysctls net.ipv4.ip_forward and net.bridge.*, whether br_netfilter is loaded, the network
 * links), starts `dockerd`, and `stop()` stops it and puts all of that back exactly:
 * `iptables-restore` of the saved tables, the sysctls, and only the links that are new.
 * Images stay in /var/lib/docker: the base images are the cache between runs.
 *
 * The saved host state is written (atomically) to a state file under a root-only directory before
 * dockerd starts. A run that crashed leaves it behind; the next run restores the host from it (its
 * dockerd stopped first when it no longer answers, or adopted when it does). A kernel lock
 * (`flock`, released when the process dies) keeps two runs on one machine from sharing the engine
 * and the fixed addresses (10.10.10.0/24, the published port).
 *
 * docker.io and docker-compose are installed by `node scripts/prepare.mjs test` (the first step of
 * `npm test`) as root; anything missing here is one line naming what to run.
 *
 * @example
 * const engine = await dockerEngine()
 * try {
 *   const compose = new Compose('my-test', { CLUSTER_SECRET: 'x' })
 *   await compose.run(['up', '-d'])
 * } finally {
 *   await engine.stop()
 * }
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import {
  closeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { ROOT } from './child.js'
import { settles } from './settle.js'

const IS_ROOT = process.getuid?.() === 0
/** This user's only: the state file, the lock and dockerd's log. */
const DIR = IS_ROOT ? '/run/connect-peer' : path.join(tmpdir(), `connect-peer-${process.getuid?.() ?? 'user'}`)
const STATE = path.join(DIR, 'dockerd.json')
const LOCK = path.join(DIR, 'docker-test.lock')
const LOG = path.join(DIR, 'dockerd.log')
/** Where a dockerd started any way (systemd, by hand) writes its pid. */
const DOCKER_PID = '/var/run/docker.pid'
const TABLES = ['filter', 'nat', 'mangle', 'raw'] as const
const SYSCTLS = [
  'net/ipv4/ip_forward',
  'net/bridge/bridge-nf-call-iptables',
  'net/bridge/bridge-nf-call-ip6tables',
  'net/bridge/bridge-nf-call-arptables',
] as const
/** The links dockerd makes: its bridges and the containers' veth ends. Only new ones are deleted. */
const DOCKER_LINK = /^(docker0|br-[0-9a-f]{12}|veth[0-9a-f]{7})$/
/** Packets from outside for loopback addresses (published ports on 127.0.0.1): moby#41872. */
const LOOPBACK_GUARD = ['PREROUTING', '-d', '127.0.0.0/8', '!', '-i', 'lo', '-j', 'DROP']

/** What the host looked like before this harness started dockerd: what `stop()` puts back. */
interface HostState {
  /** The dockerd started (0 until it is spawned). */
  pid: number
  /** `iptables-save -t <table>` of each table. */
  iptables: Partial<Record<(typeof TABLES)[number], string>>
  /** The value of each sysctl of SYSCTLS that exists, by its path under /proc/sys. */
  sysctls: Partial<Record<(typeof SYSCTLS)[number], '0' | '1'>>
  /** Whether the br_netfilter module was loaded (dockerd loads it). */
  brNetfilter: boolean
  /** The names of the network links. */
  links: string[]
}

export interface DockerEngine {
  /** True when this harness started dockerd (now or in a crashed run), and so stops it. */
  readonly started: boolean
  /** What the host looked like before that dockerd (as `hostNow()` shows it), or null. */
  readonly before: HostView | null
  /** Stops dockerd if this harness started it, restores the host, and releases the lock. Idempotent. */
  stop(): Promise<void>
}

/**
 * Runs a command in a process group of its own; after `timeoutMs` the whole group is stopped. Rejects
 * with the end of its output when it fails.
 */
export async function run(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {},
): Promise<{ stdout: string; stderr: string }> {
  const timeoutMs = options.timeoutMs ?? 60_000
  const child = spawn(command, args, { cwd: ROOT, env: options.env ?? process.env, detached: true })
  const group = recordGroup(child.pid)
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  child.stdin.on('error', () => undefined) // a command that does not read its input
  child.stdin.end(options.input ?? '')
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    killGroup(child)
  }, timeoutMs)
  const why = await new Promise<string | null>((resolve) => {
    child.once('error', (error) => resolve(error.message))
    child.once('close', (code, signal) => {
      if (timedOut) resolve(`timed out after ${timeoutMs} ms: its process group was killed`)
      else resolve(code === 0 ? null : code !== null ? `exit ${code}` : `killed by ${signal}`)
    })
  })
  clearTimeout(timer)
  if (group) rmSync(group, { force: true })
  if (why === null) return { stdout, stderr }
  const output = `${stdout}${stderr}`.trim().split('\n').slice(-40).join('\n')
  throw new Error(`${command} ${args.join(' ')} failed (${why})\n${output}`)
}

/** SIGTERM to the group (a script's trap cleans up), SIGKILL to what is left of it 5 s later. */
function killGroup(child: ChildProcess): void {
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, name)
    } catch {
      // gone already
    }
  }
  signal('SIGTERM')
  setTimeout(() => signal('SIGKILL'), 5_000).unref()
}

/**
 * Notes a child's process group (its pid and start time) in DIR while it runs: a run killed midway
 * leaves its children running in their own groups, and the next run stops them (`stopOrphans()`).
 */
function recordGroup(pid: number | undefined): string | null {
  const started = pid === undefined ? null : startTime(pid)
  if (!existsSync(DIR) || started === null) return null
  const file = path.join(DIR, `group.${process.pid}.${pid}`)
  writeFileSync(file, started, { mode: 0o600 })
  return file
}

/** When a process started (field 22 of /proc/<pid>/stat): with its pid, names it across pid reuse. */
function startTime(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19] ?? null
  } catch {
    return null
  }
}

/** Kills the process groups that the children of a run killed midway left (see `recordGroup()`). */
function stopOrphans(): void {
  for (const name of readdirSync(DIR)) {
    const [, owner, pid] = /^group\.(\d+)\.(\d+)$/.exec(name)?.map(Number) ?? []
    if (owner === undefined || pid === undefined || startTime(owner) !== null) continue // its run still runs
    const file = path.join(DIR, name)
    if (startTime(pid) === readFileSync(file, 'utf8')) {
      console.warn(`stopping process group ${pid}, left running by a run of the Docker tests that was killed`)
      try {
        process.kill(-pid, 'SIGKILL')
      } catch {
        // gone meanwhile
      }
    }
    rmSync(file, { force: true })
  }
}

async function answers(command: string, args: string[], timeoutMs = 10_000): Promise<boolean> {
  return run(command, args, { timeoutMs }).then(
    () => true,
    () => false,
  )
}

/**
 * Why the Docker tests cannot run here, or null when they can. As root (CI) they always run:
 * `dockerEngine()` starts dockerd, and names what to install when something is missing. Without
 * root they need docker, Compose and a running engine. Synchronous, for a `describe.skip` chosen
 * when a test file loads.
 */
export function dockerUnavailable(): string | null {
  if (IS_ROOT) return null
  const works = (command: string, args: string[]) => {
    try {
      execFileSync(command, args, { stdio: 'ignore', timeout: 30_000 })
      return true
    } catch {
      return false
    }
  }
  if (!works('docker', ['--version'])) return 'docker is missing (not root: nothing installs it; apt-get install docker.io)'
  if (!works('docker-compose', ['version']) && !works('docker', ['compose', 'version']))
    return 'docker-compose is missing (apt-get install docker-compose)'
  if (!works('docker', ['info']))
    return 'no Docker engine answers docker info, and without root none is started (sudo systemctl start docker)'
  return null
}

/**
 * The Docker engine, started if needed (see the file's comment). Waits up to `lockTimeoutMs` for
 * another run of these tests to finish.
 */
export async function dockerEngine(lockTimeoutMs = 60_000): Promise<DockerEngine> {
  if (!(await answers('docker', ['--version'])) || !(await composeCommand())) {
    throw new Error(
      'the Docker tests need docker and docker-compose: run "node scripts/prepare.mjs test" as root (apt-get install docker.io docker-compose)',
    )
  }
  const release = await lock(lockTimeoutMs)
  try {
    stopOrphans()
    const crashed = readState()
    const ours = crashed !== null && isDockerd(crashed.pid)
    if (await answers('docker', ['info'], 30_000)) {
      // A crashed run's dockerd is stopped at the end. Someone else's engine is only used; a crashed
      // run's state (its dockerd gone) then stays for a run that finds no engine to restore.
      return engine(ours ? crashed : null, release)
    }
    const running = runningDockerd()
    if (running !== null && running !== crashed?.pid) {
      throw new Error(
        `a dockerd (pid ${running}, in ${DOCKER_PID}) runs but does not answer docker info: not starting a second one; stop it or wait for it, then run the test again`,
      )
    }
    if (!IS_ROOT) {
      throw new Error(
        'no Docker engine answers (docker info): start one (sudo dockerd, or sudo systemctl start docker), then run the test again',
      )
    }
    if (!(await answers('sh', ['-c', 'command -v dockerd']))) {
      throw new Error(
        'no Docker engine answers and there is no dockerd to start: run "apt-get install docker.io" (or node scripts/prepare.mjs test)',
      )
    }
    if (crashed) {
      // Its dockerd is dead or does not answer: stop it and put the host back as it was before it.
      const failed = await restore(crashed)
      if (failed.length) console.warn(`restoring the host from ${STATE} (a crashed run's):\n${failed.join('\n')}`)
    }
    return engine(await startDockerd(crashed), release)
  } catch (error) {
    release()
    throw error
  }
}

function engine(state: HostState | null, release: () => void): DockerEngine {
  let stopped: Promise<void> | undefined
  return {
    started: state !== null,
    before: state && view(state),
    stop: () =>
      (stopped ??= (async () => {
        try {
          const failed = state ? await restore(state) : []
          if (failed.length) throw new Error(`the host is not fully restored (${STATE} stays for the next run):\n${failed.join('\n')}`)
        } finally {
          release()
        }
      })()),
  }
}

/**
 * A kernel lock (`flock` of util-linux, held by a child whose input is a pipe from this process): it
 * ends when this process ends, however it ends. Returns the release.
 */
async function lock(timeoutMs: number): Promise<() => void> {
  mkdirSync(DIR, { recursive: true, mode: 0o700 })
  const dir = lstatSync(DIR)
  if (!dir.isDirectory() || dir.uid !== process.getuid?.() || (dir.mode & 0o077) !== 0) {
    throw new Error(`${DIR} must be a directory of this user's only (mode 0700): remove it, then run the test again`)
  }
  const seconds = String(Math.max(1, Math.ceil(timeoutMs / 1000)))
  const holder = spawn('flock', ['--exclusive', '--wait', seconds, LOCK, '--command', 'echo locked; exec cat'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  const held = await new Promise<boolean>((resolve) => {
    createInterface({ input: holder.stdout }).once('line', (line) => resolve(line === 'locked'))
    holder.once('close', () => resolve(false))
    holder.once('error', () => resolve(false))
  })
  const release = () => {
    holder.stdin.end()
    holder.kill()
  }
  if (!held) {
    release()
    throw new Error(
      `another run of the Docker tests held ${LOCK} for ${timeoutMs} ms (fuser -v ${LOCK} names it), or flock (util-linux) is missing: wait for it, then run the test again`,
    )
  }
  return release
}

function isDockerd(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'dockerd'
  } catch {
    return false
  }
}

/** The pid of a dockerd that runs, by its pid file, or null. */
function runningDockerd(): number | null {
  try {
    const pid = Number(readFileSync(DOCKER_PID, 'utf8').trim())
    return isDockerd(pid) ? pid : null
  } catch {
    return null
  }
}

/** A crashed run's host state, or null. A file that is not one (cut short) is set aside, saying so. */
function readState(): HostState | null {
  if (!existsSync(STATE)) return null
  let state: HostState | null = null
  try {
    state = validState(JSON.parse(readFileSync(STATE, 'utf8')))
  } catch {
    // not JSON
  }
  if (!state) {
    renameSync(STATE, `${STATE}.invalid`)
    console.warn(
      `${STATE} is not a host state (cut short?): set aside as ${STATE}.invalid; the host may need a look (iptables-save, ip link)`,
    )
  }
  return state
}

function validState(value: unknown): HostState | null {
  if (typeof value !== 'object' || value === null) return null
  const { pid, iptables, sysctls, brNetfilter, links } = value as Record<string, unknown>
  const record = (field: unknown): Record<string, unknown> | null =>
    typeof field === 'object' && field !== null && !Array.isArray(field) ? (field as Record<string, unknown>) : null
  const tables = record(iptables)
  const values = record(sysctls)
  const valid =
    typeof pid === 'number' &&
    Number.isInteger(pid) &&
    pid >= 0 &&
    tables !== null &&
    typeof tables.filter === 'string' &&
    Object.entries(tables).every(([table, text]) => validTable(table, text)) &&
    values !== null &&
    Object.entries(values).every(
      ([name, setting]) => (SYSCTLS as readonly string[]).includes(name) && (setting === '0' || setting === '1'),
    ) &&
    typeof brNetfilter === 'boolean' &&
    Array.isArray(links) &&
    links.every((link) => typeof link === 'string' && /^[\w.:-]{1,15}$/.test(link))
  return valid ? (value as HostState) : null
}

/** `iptables-save -t <table>` output, whole: the table's header, built-in chains ACCEPT or DROP, COMMIT. */
function validTable(table: string, text: unknown): boolean {
  if (!(TABLES as readonly string[]).includes(table) || typeof text !== 'string') return false
  const lines = text.split('\n').filter((line) => line && !line.startsWith('#'))
  const policies = lines.filter((line) => /^:[A-Z]+ (?!-)/.test(line))
  return lines[0] === `*${table}` && lines.at(-1) === 'COMMIT' && policies.every((line) => /^:[A-Z]+ (ACCEPT|DROP) /.test(line))
}

/** Written whole or not at all: a temporary file renamed over the state file. */
function writeState(state: HostState): void {
  const temporary = `${STATE}.${process.pid}.tmp`
  writeFileSync(temporary, JSON.stringify(state), { mode: 0o600 })
  renameSync(temporary, STATE)
}

async function snapshot(): Promise<HostState> {
  const iptables: HostState['iptables'] = {}
  for (const table of TABLES) iptables[table] = (await run('iptables-save', ['-t', table])).stdout
  const sysctls: HostState['sysctls'] = {}
  for (const name of SYSCTLS) {
    const setting = readSysctl(name)
    if (setting === '0' || setting === '1') sysctls[name] = setting
  }
  return { pid: 0, iptables, sysctls, brNetfilter: existsSync('/sys/module/br_netfilter'), links: await links() }
}

function readSysctl(name: string): string | null {
  try {
    return readFileSync(path.join('/proc/sys', name), 'utf8').trim()
  } catch {
    return null
  }
}

async function links(): Promise<string[]> {
  const { stdout } = await run('ip', ['-o', 'link', 'show'])
  return stdout
    .split('\n')
    .map((line) => /^\d+: ([^:@\s]+)/.exec(line)?.[1])
    .filter((name) => name !== undefined)
}

/** Starts dockerd, the host saved first (or the state a crashed run saved, carried over). */
async function startDockerd(carried: HostState | null, timeoutMs = 60_000): Promise<HostState> {
  const state: HostState = { ...(carried ?? (await snapshot())), pid: 0 }
  writeState(state)
  const log = openSync(LOG, 'w', 0o600)
  const dockerd = spawn('dockerd', [], { detached: true, stdio: ['ignore', log, log] })
  closeSync(log)
  dockerd.unref()
  let exited: string | null = null
  dockerd.once('exit', (code, signal) => (exited = `exit ${code ?? signal}`))
  dockerd.once('error', (error) => (exited = error.message))
  state.pid = dockerd.pid ?? 0
  writeState(state)
  const tail = () => readFileSync(LOG, 'utf8').trim().split('\n').slice(-5).join('\n')
  try {
    await settles(
      async () => {
        if (exited) throw new Error(`dockerd stopped at once (${exited}); the end of ${LOG}:\n${tail()}`)
        return answers('docker', ['info'])
      },
      timeoutMs,
      () => `dockerd (pid ${state.pid}) does not answer docker info; the end of ${LOG}:\n${tail()}`,
      250,
    )
    await run('iptables', ['-t', 'raw', '-I', ...LOOPBACK_GUARD])
  } catch (error) {
    const failed = await restore(state)
    if (failed.length) console.warn(`restoring the host after dockerd failed to start:\n${failed.join('\n')}`)
    throw error
  }
  return state
}

/**
 * Stops the dockerd of `state` and puts the host back as `state` saw it. Every step is tried; the
 * state file is deleted last, when all of them worked. Returns what failed.
 */
async function restore(state: HostState): Promise<string[]> {
  const failed: string[] = []
  const step = async (what: string, action: () => unknown) => {
    try {
      await action()
    } catch (error) {
      failed.push(`${what}: ${(error as Error).message.split('\n')[0]}`)
    }
  }
  if (isDockerd(state.pid)) await step(`stopping dockerd (pid ${state.pid})`, () => stopProcess(state.pid))
  for (const [table, text] of Object.entries(state.iptables)) {
    await step(`iptables-restore of the ${table} table`, () => run('iptables-restore', [], { input: text }))
  }
  const now = await links().catch(() => [])
  for (const link of now.filter((name) => DOCKER_LINK.test(name) && !state.links.includes(name))) {
    await step(`ip link delete ${link}`, () => run('ip', ['link', 'delete', link]))
  }
  if (!state.brNetfilter && existsSync('/sys/module/br_netfilter')) {
    await step('modprobe -r br_netfilter', () => run('modprobe', ['-r', 'br_netfilter']))
  }
  for (const [name, setting] of Object.entries(state.sysctls)) {
    await step(`sysctl ${name}`, () => writeFileSync(path.join('/proc/sys', name), setting))
  }
  if (failed.length === 0) rmSync(STATE, { force: true })
  return failed
}

async function stopProcess(pid: number): Promise<void> {
  const gone = (ms: number) =>
    settles(
      () => !isDockerd(pid),
      ms,
      () => `dockerd (pid ${pid}) still runs`,
      100,
    )
  process.kill(pid, 'SIGTERM')
  await gone(30_000).catch(async () => {
    process.kill(pid, 'SIGKILL')
    await gone(5_000)
  })
}

/** The host as `stop()` restores it: iptables tables without counters, sysctls, links. */
export interface HostView {
  iptables: Record<string, string>
  sysctls: Record<string, string | null>
  links: string[]
}

/** The host now, to compare with `DockerEngine.before`. */
export async function hostNow(): Promise<HostView> {
  return view(await snapshot())
}

function view(state: HostState): HostView {
  const iptables: Record<string, string> = {}
  for (const [table, text] of Object.entries(state.iptables)) {
    iptables[table] = text
      .split('\n')
      .filter((line) => !line.startsWith('#'))
      .map((line) => line.replace(/ \[\d+:\d+\]$/, ''))
      .join('\n')
  }
  const sysctls: Record<string, string | null> = {}
  for (const name of SYSCTLS) sysctls[name] = state.sysctls[name] ?? null
  return { iptables, sysctls, links: [...state.links].sort() }
}

let composeBase: string[] | null | undefined

/** `docker-compose` (Compose 1, Debian's) or else `docker compose` (Compose 2), or null. */
async function composeCommand(): Promise<string[] | null> {
  if (composeBase !== undefined) return composeBase
  if (await answers('docker-compose', ['version'])) composeBase = ['docker-compose']
  else if (await answers('docker', ['compose', 'version'])) composeBase = ['docker', 'compose']
  else composeBase = null
  return composeBase
}

/** Compose commands on docker-compose.yml as project `project`, with `env` added to the environment. */
export class Compose {
  constructor(
    readonly project: string,
    readonly env: NodeJS.ProcessEnv,
  ) {}

  async run(args: string[], timeoutMs = 60_000): Promise<string> {
    const [command, ...base] = (await composeCommand()) ?? ['docker-compose']
    const full = [...base, '--project-name', this.project, '--file', path.join(ROOT, 'docker-compose.yml'), ...args]
    const { stdout } = await run(command!, full, { env: { ...process.env, ...this.env }, timeoutMs })
    return stdout
  }

  /** The id of the container of `service`. */
  async container(service: string): Promise<string> {
    const id = (await this.run(['ps', '--quiet', service])).trim()
    if (!id) throw new Error(`no container for ${service} in project ${this.project}`)
    return id
  }

  /** What Docker still holds of this project: containers (running or not), networks and volumes. */
  async leftovers(): Promise<{ containers: string[]; networks: string[]; volumes: string[] }> {
    const filter = ['--filter', `label=com.docker.compose.project=${this.project}`]
    const list = async (args: string[]) =>
      (await run('docker', [...args, ...filter])).stdout
        .split('\n')
        .map((line) => line.trim())
        .filter(Boolean)
    return {
      containers: await list(['ps', '--all', '--format', '{{.Names}}']),
      networks: await list(['network', 'ls', '--format', '{{.Name}}']),
      volumes: await list(['volume', 'ls', '--format', '{{.Name}}']),
    }
  }

  /** Ids of the images Compose built for this project (`<project>_<service>` or `<project>-<service>`). */
  async builtImages(): Promise<string[]> {
    const ids = new Set<string>()
    for (const reference of [`${this.project}_*`, `${this.project}-*`]) {
      const { stdout } = await run('docker', ['image', 'ls', '--quiet', '--no-trunc', '--filter', `reference=${reference}`])
      for (const id of stdout.split('\n').filter(Boolean)) ids.add(id)
    }
    return [...ids]
  }
}

/** `docker inspect` of one object, parsed. */
export async function inspect<T>(id: string): Promise<T> {
  const [first] = JSON.parse((await run('docker', ['inspect', id])).stdout) as T[]
  return first!
}

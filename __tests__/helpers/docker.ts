/**
 * A Docker engine for the tests that run docker-compose.yml for real, and Compose commands on one
 * project of it.
 *
 * `dockerEngine()` uses the engine that answers `docker info`. Where none does and this is root, it
 * starts `dockerd` and `stop()` stops it again, and undoes what dockerd changed on the host:
 * its iptables rules and chains, the FORWARD policy and net.ipv4.ip_forward it set, the docker0
 * bridge. Images stay in /var/lib/docker: the base images are the cache between runs. A dockerd
 * left running by a run that crashed is recognised (its pid is kept in a state file) and stopped
 * by the next one. A lock file keeps two runs of these tests on one machine from sharing the engine
 * (one could stop it under the other) and the fixed addresses (10.10.10.0/24, the published port).
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
import { execFile, spawn } from 'node:child_process'
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { ROOT } from './child.js'
import { settles } from './settle.js'

const exec = promisify(execFile)
const STATE = path.join(tmpdir(), 'connect-peer-dockerd.json')
const LOCK = path.join(tmpdir(), 'connect-peer-docker-test.lock')
const LOG = path.join(tmpdir(), 'connect-peer-dockerd.log')
const IP_FORWARD = '/proc/sys/net/ipv4/ip_forward'

/** What the host looked like before this harness started dockerd: what `stop()` puts back. */
interface HostState {
  pid: number
  ipForward: string
  forwardPolicy: string | null
  docker0: boolean
}

export interface DockerEngine {
  /** True when this harness started dockerd (now or in a crashed run), and so stops it. */
  readonly started: boolean
  /** Stops dockerd if this harness started it, restores the host, and releases the lock. Idempotent. */
  stop(): Promise<void>
}

/** Runs a command; rejects with its output when it fails. */
export async function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}) {
  try {
    return await exec(command, args, {
      cwd: ROOT,
      env: options.env ?? process.env,
      timeout: options.timeoutMs ?? 60_000,
      maxBuffer: 64 << 20,
    })
  } catch (error) {
    const { stdout = '', stderr = '', code, signal } = error as { stdout?: string; stderr?: string; code?: unknown; signal?: string }
    const output = `${stdout}${stderr}`.trim().split('\n').slice(-40).join('\n')
    const why = typeof code === 'number' ? `exit ${code}` : signal ? `killed by ${signal}` : (error as Error).message
    throw new Error(`${command} ${args.join(' ')} failed (${why})\n${output}`, { cause: error })
  }
}

async function answers(command: string, args: string[]): Promise<boolean> {
  return run(command, args, { timeoutMs: 10_000 }).then(
    () => true,
    () => false,
  )
}

/**
 * The Docker engine, started if needed (see the file's comment). Waits up to `lockTimeoutMs` for
 * another run of these tests to finish.
 */
export async function dockerEngine(lockTimeoutMs = 300_000): Promise<DockerEngine> {
  if (!(await answers('docker', ['--version'])) || !(await composeCommand())) {
    throw new Error(
      'the Docker tests need docker and docker-compose: run "node scripts/prepare.mjs test" as root (apt-get install docker.io docker-compose)',
    )
  }
  const release = await lock(lockTimeoutMs)
  try {
    const adopted = adoptCrashedRun()
    if (await answers('docker', ['info'])) {
      return engine(adopted, release)
    }
    if (process.getuid?.() !== 0) {
      throw new Error(
        'no Docker engine answers (docker info): start one (sudo dockerd, or sudo systemctl start docker), then run the test again',
      )
    }
    if (!(await answers('sh', ['-c', 'command -v dockerd']))) {
      throw new Error(
        'no Docker engine answers and there is no dockerd to start: run "apt-get install docker.io" (or node scripts/prepare.mjs test)',
      )
    }
    return engine(await startDockerd(), release)
  } catch (error) {
    release()
    throw error
  }
}

function engine(state: HostState | null, release: () => void): DockerEngine {
  let stopped: Promise<void> | undefined
  return {
    started: state !== null,
    stop: () =>
      (stopped ??= (async () => {
        try {
          if (state) await stopDockerd(state)
        } finally {
          release()
        }
      })()),
  }
}

/** An exclusive lock file holding this process's pid; one left by a process that is gone is taken over. */
async function lock(timeoutMs: number): Promise<() => void> {
  let holder = ''
  const take = (): boolean => {
    try {
      const fd = openSync(LOCK, 'wx')
      writeFileSync(fd, String(process.pid))
      closeSync(fd)
      return true
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      holder = readFileSync(LOCK, 'utf8').trim()
      if (!isAlive(Number(holder))) rmSync(LOCK, { force: true })
      return false
    }
  }
  await settles(
    take,
    timeoutMs,
    () => `another run of the Docker tests (pid ${holder}) holds ${LOCK}: wait for it, or remove the file if that process is not one`,
    500,
  )
  return () => {
    if (existsSync(LOCK) && readFileSync(LOCK, 'utf8').trim() === String(process.pid)) rmSync(LOCK, { force: true })
  }
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function commandOf(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim()
  } catch {
    return null
  }
}

/** The host state a crashed run saved, if the dockerd it started still runs (it is ours to stop). */
function adoptCrashedRun(): HostState | null {
  if (!existsSync(STATE)) return null
  const state = JSON.parse(readFileSync(STATE, 'utf8')) as HostState
  if (isAlive(state.pid) && commandOf(state.pid) === 'dockerd') return state
  rmSync(STATE, { force: true })
  return null
}

async function startDockerd(): Promise<HostState> {
  const state: HostState = {
    pid: 0,
    ipForward: readFileSync(IP_FORWARD, 'utf8').trim(),
    forwardPolicy: await forwardPolicy(),
    docker0: await answers('ip', ['link', 'show', 'docker0']),
  }
  const log = openSync(LOG, 'w')
  const dockerd = spawn('dockerd', [], { detached: true, stdio: ['ignore', log, log] })
  closeSync(log)
  dockerd.unref()
  let exited: string | null = null
  dockerd.once('exit', (code, signal) => (exited = `exit ${code ?? signal}`))
  dockerd.once('error', (error) => (exited = error.message))
  state.pid = dockerd.pid ?? 0
  writeFileSync(STATE, JSON.stringify(state))
  const tail = () => readFileSync(LOG, 'utf8').trim().split('\n').slice(-5).join('\n')
  try {
    await settles(
      async () => {
        if (exited) throw new Error(`dockerd stopped at once (${exited}); the end of ${LOG}:\n${tail()}`)
        return answers('docker', ['info'])
      },
      60_000,
      () => `dockerd (pid ${state.pid}) does not answer docker info; the end of ${LOG}:\n${tail()}`,
      250,
    )
  } catch (error) {
    await stopDockerd(state)
    throw error
  }
  return state
}

async function forwardPolicy(): Promise<string | null> {
  const saved = await run('iptables-save', ['-t', 'filter']).catch(() => null)
  return saved ? (/^:FORWARD (\S+)/m.exec(saved.stdout)?.[1] ?? null) : null
}

async function stopDockerd(state: HostState): Promise<void> {
  if (isAlive(state.pid)) {
    process.kill(state.pid, 'SIGTERM')
    const gone = (ms: number) =>
      settles(
        () => !isAlive(state.pid),
        ms,
        () => `dockerd (pid ${state.pid}) still runs`,
        100,
      )
    await gone(30_000).catch(async () => {
      process.kill(state.pid, 'SIGKILL')
      await gone(5_000)
    })
  }
  // dockerd leaves its rules, chains and bridge behind when it stops: take them away.
  for (const table of ['nat', 'filter']) {
    const saved = await run('iptables-save', ['-t', table]).catch(() => null)
    if (!saved) continue
    const lines = saved.stdout.split('\n')
    for (const rule of lines.filter((line) => line.startsWith('-A ') && /DOCKER|docker0/.test(line))) {
      await run('iptables', ['-t', table, '-D', ...rule.slice(3).split(' ')]).catch(() => undefined)
    }
    const chains = lines.map((line) => /^:(DOCKER\S*) /.exec(line)?.[1]).filter((name) => name !== undefined)
    for (const chain of chains) await run('iptables', ['-t', table, '-F', chain]).catch(() => undefined)
    for (const chain of chains) await run('iptables', ['-t', table, '-X', chain]).catch(() => undefined)
  }
  if (state.forwardPolicy) await run('iptables', ['-t', 'filter', '-P', 'FORWARD', state.forwardPolicy]).catch(() => undefined)
  writeFileSync(IP_FORWARD, state.ipForward)
  if (!state.docker0 && (await answers('ip', ['link', 'show', 'docker0']))) await run('ip', ['link', 'delete', 'docker0'])
  rmSync(STATE, { force: true })
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

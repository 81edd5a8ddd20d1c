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
 * The host's state lives in host-state.ts; every command runs through group-run.ts.
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
import { execFileSync, spawn } from 'node:child_process'
import { closeSync, lstatSync, mkdirSync, openSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { ROOT } from './child.js'
import { DIR, IS_ROOT, run, stopOrphans } from './group-run.js'
import { isDockerd, readState, restore, snapshot, STATE, view, writeState, type HostState, type HostView } from './host-state.js'
import { settles } from './settle.js'

export { run } from './group-run.js'
export { hostNow, type HostView } from './host-state.js'

const LOCK = path.join(DIR, 'docker-test.lock')
const LOG = path.join(DIR, 'dockerd.log')
/** Where a dockerd started any way (systemd, by hand) writes its pid. */
const DOCKER_PID = '/var/run/docker.pid'
/** Packets from outside for loopback addresses (published ports on 127.0.0.1): moby#41872. */
const LOOPBACK_GUARD = ['PREROUTING', '-d', '127.0.0.0/8', '!', '-i', 'lo', '-j', 'DROP']

export interface DockerEngine {
  /** True when this harness started dockerd (now or in a crashed run), and so stops it. */
  readonly started: boolean
  /** What the host looked like before that dockerd (as `hostNow()` shows it), or null. */
  readonly before: HostView | null
  /** Stops dockerd if this harness started it, restores the host, and releases the lock. Idempotent. */
  stop(): Promise<void>
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

/** The pid of a dockerd that runs, by its pid file, or null. */
function runningDockerd(): number | null {
  try {
    const pid = Number(readFileSync(DOCKER_PID, 'utf8').trim())
    return isDockerd(pid) ? pid : null
  } catch {
    return null
  }
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

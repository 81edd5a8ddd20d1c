import { execFileSync, fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import path from 'node:path'

export const ROOT = path.resolve(__dirname, '..', '..')

/** The CPU a child runs on: the system under test on core 0, load generators on core 1. */
export type Core = 0 | 1

const TASKSET = ['/usr/bin/taskset', '/bin/taskset'].find((candidate) => existsSync(candidate))

/** Whether processes can be pinned (recorded with every result). */
export const canPin = TASKSET !== undefined

const SPEED_PROBE = `const { createHash } = require('node:crypto'); const end = Date.now() + 1000; let n = 0;
while (Date.now() < end) { createHash('sha256').update('x'.repeat(100)).digest(); n++ } console.log(n)`

/**
 * How fast each core is, one at a time (sha256 digests of 100 bytes per second). The two cores of
 * these VMs are not always equal, and which process runs where matters to every result.
 */
export function coreSpeeds(): Record<string, number> | undefined {
  if (!TASKSET) return undefined
  const speed = (core: Core) =>
    Number(
      execFileSync(TASKSET, ['-c', String(core), process.execPath, '-e', SPEED_PROBE])
        .toString()
        .trim(),
    )
  return { core0: speed(0), core1: speed(1) }
}

/**
 * A TypeScript child (run with tsx) pinned to one core, talking to the parent over IPC: it sends
 * `{ event, ... }` messages and answers `{ id, cmd, args }` requests with `{ id, result | error }`.
 */
export class BenchChild {
  readonly child: ChildProcess
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>()
  readonly #listeners = new Set<(message: Record<string, unknown>) => void>()
  #nextId = 1

  /**
   * `launcher`: a command the child is run through, before taskset (`['ip', 'netns', 'exec', ns]`
   * runs it inside a network namespace; each execs the next in place, so IPC is kept).
   */
  constructor(script: string, env: Record<string, string>, core: Core, launcher: readonly string[] = []) {
    // taskset pins the exec'd node and everything it starts; fork keeps the IPC channel.
    // BENCH_PROFILE=<dir> writes a CPU profile of every child there (to see where time goes);
    // BENCH_NODE_ARGS adds node flags to every child (--trace-gc, say).
    const nodeArgs = [
      ...(process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
      '--expose-gc',
      '--import',
      'tsx',
      ...(process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : []),
    ]
    const command = [...launcher, ...(TASKSET ? [TASKSET, '-c', String(core)] : []), process.execPath, ...nodeArgs]
    this.child = fork(path.join(ROOT, script), [], {
      cwd: ROOT,
      execPath: command[0],
      execArgv: command.slice(1),
      env: { ...process.env, ...env },
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    this.child.on('message', (message: Record<string, unknown> & { id?: number }) => {
      if (message.id !== undefined && this.#pending.has(message.id)) {
        const pending = this.#pending.get(message.id)!
        this.#pending.delete(message.id)
        if (message.error) pending.reject(new Error(typeof message.error === 'string' ? message.error : JSON.stringify(message.error)))
        else pending.resolve(message.result)
        return
      }
      for (const listener of this.#listeners) listener(message)
    })
  }

  call<T>(cmd: string, ...args: unknown[]): Promise<T> {
    const id = this.#nextId++
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject })
      this.child.send({ id, cmd, args })
    })
  }

  waitFor(event: string, timeoutMs = 60_000): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${event} within ${timeoutMs} ms`)), timeoutMs)
      const listener = (message: Record<string, unknown>) => {
        if (message.event !== event) return
        clearTimeout(timer)
        this.#listeners.delete(listener)
        resolve(message)
      }
      this.#listeners.add(listener)
    })
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    this.child.kill('SIGTERM')
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000)
    await once(this.child, 'exit')
    clearTimeout(timer)
  }
}

/** CPU time this process has used, user and system, in microseconds. */
function cpuMicros(): number {
  const { user, system } = process.cpuUsage()
  return user + system
}

/**
 * The child side: answer the parent's requests with `handlers`, plus `cpu` (this process's CPU time
 * in microseconds, which every child can report).
 */
export function serveParent(childHandlers: Record<string, (...args: never[]) => unknown>): void {
  const handlers: Record<string, (...args: never[]) => unknown> = { cpu: cpuMicros, ...childHandlers }
  process.on('message', (message: { id: number; cmd: string; args: unknown[] }) => {
    Promise.resolve()
      .then(() => (handlers[message.cmd] as (...args: unknown[]) => unknown)(...message.args))
      .then(
        (result) => process.send?.({ id: message.id, result }),
        (error: Error) => process.send?.({ id: message.id, error: error.stack ?? String(error) }),
      )
  })
  process.on('disconnect', () => process.exit(0))
  process.once('SIGTERM', () => process.exit(0))
  process.once('SIGINT', () => process.exit(0))
}

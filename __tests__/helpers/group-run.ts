/**
 * Commands of the Docker tests, each in a process group of its own: `run()` stops the whole group
 * when its time is up, and notes the group in a root-only directory while it runs, so that the next
 * run stops what the children of a run killed midway left running (`stopOrphans()`).
 *
 * @example
 * const { stdout } = await run('docker', ['info'], { timeoutMs: 10_000 })
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { ROOT } from './child.js'

export const IS_ROOT = process.getuid?.() === 0
/** This user's only (mode 0700, made by the lock): the state file, the lock, dockerd's log, the groups. */
export const DIR = IS_ROOT ? '/run/connect-peer' : path.join(tmpdir(), `connect-peer-${process.getuid?.() ?? 'user'}`)

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
export function stopOrphans(): void {
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

/**
 * The host as dockerd finds it, and put back exactly when the harness stops the dockerd it started:
 * the iptables tables (`iptables-save`, then `iptables-restore`), the sysctls dockerd sets, whether
 * br_netfilter was loaded, and the links (only new ones are deleted). The state is kept in a file,
 * written atomically and checked when read, so that a run killed midway is undone by the next.
 *
 * @example
 * const state = await snapshot()
 * writeState(state)
 * // ... dockerd runs ...
 * const failed = await restore(state) // [] when the host is as before, and the state file is gone
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { DIR, run } from './group-run.js'
import { settles } from './settle.js'

export const STATE = path.join(DIR, 'dockerd.json')
const TABLES = ['filter', 'nat', 'mangle', 'raw'] as const
const SYSCTLS = [
  'net/ipv4/ip_forward',
  'net/bridge/bridge-nf-call-iptables',
  'net/bridge/bridge-nf-call-ip6tables',
  'net/bridge/bridge-nf-call-arptables',
] as const
/** The links dockerd makes: its bridges and the containers' veth ends. Only new ones are deleted. */
const DOCKER_LINK = /^(docker0|br-[0-9a-f]{12}|veth[0-9a-f]{7})$/

/** What the host looked like before this harness started dockerd: what `stop()` puts back. */
export interface HostState {
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

export function isDockerd(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'dockerd'
  } catch {
    return false
  }
}

/** A crashed run's host state, or null. A file that is not one (cut short) is set aside, saying so. */
export function readState(): HostState | null {
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
export function writeState(state: HostState): void {
  const temporary = `${STATE}.${process.pid}.tmp`
  writeFileSync(temporary, JSON.stringify(state), { mode: 0o600 })
  renameSync(temporary, STATE)
}

export async function snapshot(): Promise<HostState> {
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

/**
 * Stops the dockerd of `state` and puts the host back as `state` saw it. Every step is tried; the
 * state file is deleted last, when all of them worked. Returns what failed.
 */
export async function restore(state: HostState): Promise<string[]> {
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

export function view(state: HostState): HostView {
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

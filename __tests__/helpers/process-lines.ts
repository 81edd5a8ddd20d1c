import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { EventLog } from './event-log.js'

/**
 * A child process whose output is kept as lines, so a test can wait for what the process says
 * ("web on ...", "peer was2 is up") instead of sleeping.
 */
export class WatchedProcess {
  readonly child: ChildProcess
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /**
   * Resolves once the process has exited and its output pipes are closed: only when every process
   * that inherited them (its children too) has exited.
   */
  readonly closed: Promise<void>
  readonly #output = new EventLog<string>()

  constructor(command: string, args: string[], options: SpawnOptions) {
    this.child = spawn(command, args, { ...options, stdio: ['pipe', 'pipe', 'pipe'] })
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })))
    this.closed = new Promise((resolve) => this.child.once('close', () => resolve()))
    let partial = ''
    const take = (chunk: Buffer) => {
      const text = partial + chunk.toString()
      const parts = text.split('\n')
      partial = parts.pop() ?? ''
      for (const line of parts) this.#add(line)
    }
    this.child.stdout!.on('data', take)
    this.child.stderr!.on('data', take)
  }

  /** Every line of output so far, stdout and stderr. */
  get lines(): readonly string[] {
    return this.#output.entries
  }

  /** The number of lines so far: pass it as `from` to wait only for later ones. */
  get mark(): number {
    return this.lines.length
  }

  /** Resolves with the first line (from `from` on) that matches; rejects after `timeoutMs` with the output so far. */
  waitFor(pattern: RegExp, timeoutMs = 20_000, from = 0): Promise<string> {
    return this.#output.waitFor(
      (line) => pattern.test(line),
      timeoutMs,
      from,
      () => `no line matching ${pattern} within ${timeoutMs} ms; output:\n${this.lines.slice(-30).join('\n')}`,
    )
  }

  send(line: string): void {
    this.child.stdin!.write(`${line}\n`)
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal)
    await this.exited
  }

  #add(line: string): void {
    if (process.env.SHOW_CHILD_OUTPUT) console.log(line)
    this.#output.push(line)
  }
}

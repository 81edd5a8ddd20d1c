import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'

/**
 * A child process whose output is kept as lines, so a test can wait for what the process says
 * ("web on ...", "peer was2 is up") instead of sleeping.
 */
export class WatchedProcess {
  readonly child: ChildProcess
  readonly lines: string[] = []
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  #waiters = new Set<{ pattern: RegExp; from: number; resolve: (line: string) => void }>()

  constructor(command: string, args: string[], options: SpawnOptions) {
    this.child = spawn(command, args, { ...options, stdio: ['pipe', 'pipe', 'pipe'] })
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })))
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

  /** The number of lines so far: pass it as `from` to wait only for later ones. */
  get mark(): number {
    return this.lines.length
  }

  /** Resolves with the first line (from `from` on) that matches; rejects after `timeoutMs` with the output so far. */
  waitFor(pattern: RegExp, timeoutMs = 20_000, from = 0): Promise<string> {
    const seen = this.lines.slice(from).find((line) => pattern.test(line))
    if (seen !== undefined) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const waiter = {
        pattern,
        from,
        resolve: (line: string) => {
          clearTimeout(timer)
          resolve(line)
        },
      }
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter)
        reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms; output:\n${this.lines.slice(-30).join('\n')}`))
      }, timeoutMs)
      this.#waiters.add(waiter)
    })
  }

  send(line: string): void {
    this.child.stdin!.write(`${line}\n`)
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal)
    await this.exited
  }

  #add(line: string): void {
    this.lines.push(line)
    if (process.env.SHOW_CHILD_OUTPUT) console.log(line)
    for (const waiter of this.#waiters) {
      if (waiter.pattern.test(line)) {
        this.#waiters.delete(waiter)
        waiter.resolve(line)
      }
    }
  }
}

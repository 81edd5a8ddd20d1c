import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import path from 'node:path'

export interface ScriptResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export const ROOT = path.resolve(__dirname, '..', '..')
/** Child-process entry points (`*.main.ts`) and the data they and the tests read (`tls/`, `public/`). */
export const FIXTURES = path.join(ROOT, '__tests__', 'fixtures')
const TSX = path.join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs')

/**
 * Runs a fixture entry point (a `*.main.ts` file in fixtures/) in its own Node process and resolves when the process exits on its own.
 * If it has not exited after `timeoutMs` it is killed, and the result says so (signal SIGKILL).
 */
export function runScript(fixture: string, env: NodeJS.ProcessEnv = {}, timeoutMs = 20_000): Promise<ScriptResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [TSX, path.join(FIXTURES, fixture)], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      // 'exit' can come before the pipes are drained; 'close' cannot.
      child.on('close', () => resolve({ code, signal, stdout, stderr }))
    })
  })
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
    server.on('error', reject)
  })
}

/** Resolves with the first line of `stream` that matches; rejects if the stream ends first. */
export function lineMatching(stream: NodeJS.ReadableStream, pattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = ''
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString()
      const line = buffered.split('\n').find((each) => pattern.test(each))
      if (line !== undefined) {
        stream.off('data', onData)
        resolve(line)
      }
    }
    stream.on('data', onData)
    stream.once('end', () => reject(new Error(`stream ended without a line matching ${pattern}: ${buffered}`)))
  })
}

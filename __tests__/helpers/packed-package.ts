import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, realpath, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { ROOT } from './child.js'

const run = promisify(execFile)

/** A scratch project with the packed package installed, as a user's project would have it. */
export interface PackedProject {
  /** The project folder: `package.json`, `node_modules/connect-peer` and whatever the test writes. */
  readonly folder: string
  /** The files the tarball holds, relative to the package root. */
  readonly files: readonly string[]
  remove(): Promise<void>
}

/** Builds dist/ with `npm run build` when it is missing (`npm test` builds before Jest runs). */
export async function ensureBuilt(): Promise<void> {
  if (existsSync(path.join(ROOT, 'dist', 'index.js'))) return
  await run('npm', ['run', '-s', 'build'], { cwd: ROOT })
}

/** Packs the package (`npm pack`) into `folder`; returns the tarball's path and its file list. */
export async function packInto(folder: string): Promise<{ tarball: string; files: string[] }> {
  await ensureBuilt()
  const packed = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', folder], { cwd: ROOT })
  const [{ filename, files }] = JSON.parse(packed.stdout) as [{ filename: string; files: { path: string }[] }]
  return { tarball: path.join(folder, filename), files: files.map((file) => file.path) }
}

/**
 * Packs the package and unpacks the tarball into a scratch project's `node_modules/connect-peer`,
 * offline: every other dependency (express, express-session, their types, koa, fastify, tsx, ...)
 * is a symlink into this repository's `node_modules`, so nothing is downloaded and the package
 * resolves its own dependencies the way an installed copy does. `type` is the scratch project's
 * module type ("module": its `.ts` files are ES modules, top-level await allowed).
 */
export async function packedProject(options: { type?: 'module' | 'commonjs' } = {}): Promise<PackedProject> {
  const folder = await mkdtemp(path.join(tmpdir(), 'connect-peer-packed-'))
  try {
    const { tarball, files } = await packInto(folder)
    const modules = path.join(folder, 'node_modules')
    const own = path.join(modules, 'connect-peer')
    await mkdir(own, { recursive: true })
    await run('tar', ['-xzf', tarball, '-C', own, '--strip-components=1'])
    await rm(tarball)
    const shared = await realpath(path.join(ROOT, 'node_modules'))
    for (const entry of await readdir(shared)) {
      if (entry === 'connect-peer' || entry.startsWith('.package-lock')) continue
      await symlink(path.join(shared, entry), path.join(modules, entry))
    }
    await writeFile(
      path.join(folder, 'package.json'),
      JSON.stringify({ name: 'scratch', private: true, type: options.type ?? 'module', dependencies: { 'connect-peer': '*' } }),
    )
    return { folder, files, remove: () => rm(folder, { recursive: true, force: true }) }
  } catch (error) {
    await rm(folder, { recursive: true, force: true })
    throw error
  }
}

/**
 * First step of `npm run demo` and `npm test` (plain Node, node: built-ins only, so it runs on a
 * fresh clone before anything is installed):
 *
 *   node scripts/prepare.mjs demo   npm dependencies only (the demo's balancer is in Node)
 *   node scripts/prepare.mjs test   also haproxy, Chromium and redis-server, which the tests run, and
 *                                   as root iproute2, iptables and python3 (the namespaced-network
 *                                   tests), Docker, Compose and debootstrap (the Docker test starts
 *                                   the engine, and builds base images no registry provides); without
 *                                   root those tests are skipped where they cannot run, saying why
 *
 * What is missing is installed when it can be (npm ci; apt-get as root on Debian), saying so on
 * one line. Otherwise it stops at once with exit code 1 and one line naming the command to run.
 *
 *   CHROMIUM_PATH=/path/to/chrome   the browser the tests drive (else /usr/bin/chromium, else chromium on PATH)
 *   CONNECT_PEER_NO_INSTALL=1       never install anything: only report what is missing
 */
import { spawnSync } from 'node:child_process'
import { accessSync, constants, existsSync, lstatSync, readFileSync, realpathSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const MODES = ['demo', 'test']
const NO_INSTALL = Boolean(process.env.CONNECT_PEER_NO_INSTALL)

const mode = process.argv[2] ?? ''
if (!MODES.includes(mode)) fail(`usage: node scripts/prepare.mjs ${MODES.join('|')}`)
checkNode()
if (mode === 'test') prepareSystemTools()
prepareNpmDependencies()

function checkNode() {
  const major = Number(process.versions.node.split('.')[0])
  if (major < 20) fail(`connect-peer needs Node.js 20 or newer; this is ${process.version}: install a current Node.js (https://nodejs.org)`)
}

/**
 * haproxy, Chromium, redis-server (and as root iproute2, iptables, python3, docker.io,
 * docker-compose, debootstrap): the tests run the real ones.
 */
function prepareSystemTools() {
  const chromiumPath = process.env.CHROMIUM_PATH
  if (chromiumPath && !isExecutable(chromiumPath)) {
    fail(`CHROMIUM_PATH=${chromiumPath} is not an executable file: point it at a Chromium or Chrome binary, or unset it`)
  }
  const missing = [
    { name: 'haproxy', found: onPath('haproxy') },
    { name: 'chromium', found: Boolean(chromiumPath) || isExecutable('/usr/bin/chromium') || onPath('chromium') },
    { name: 'redis-server', found: onPath('redis-server') },
    // The network tests (__tests__/helpers/netns.ts) and the Docker test, which starts dockerd when no
    // engine runs (__tests__/functional/demo/compose-docker.test.ts), need root: only root is asked
    // for their tools. Without root they are skipped where they cannot run, saying why.
    ...(process.getuid?.() === 0
      ? [
          { name: 'iproute2', found: onPath('ip') },
          { name: 'iptables', found: onPath('iptables') },
          { name: 'python3', found: onPath('python3') },
          { name: 'docker.io', found: onPath('docker') && onPath('dockerd') },
          { name: 'docker-compose', found: onPath('docker-compose') || hasComposePlugin() },
          // examples/express-app/docker/local-images.sh, where no image registry answers.
          { name: 'debootstrap', found: onPath('debootstrap') },
        ]
      : []),
  ]
    .filter((tool) => !tool.found)
    .map((tool) => tool.name)
  if (missing.length === 0) return

  const list = missing.join(' ')
  const apt = onPath('apt-get')
  const root = process.getuid?.() === 0
  if (apt && root && !NO_INSTALL) {
    say(`the tests need ${list}: installing (apt-get install -y --no-install-recommends ${list})`)
    // Another apt-get may hold the lock for a while (unattended upgrades): wait for it.
    const lock = ['-o', 'DPkg::Lock::Timeout=300']
    run('apt-get', [...lock, 'update', '-qq'], { quiet: true })
    run('apt-get', [...lock, 'install', '-y', '-qq', '--no-install-recommends', ...missing], { quiet: true })
    return
  }
  const chromium = missing.includes('chromium') ? ' (or set CHROMIUM_PATH to a Chromium or Chrome binary)' : ''
  if (apt)
    fail(
      `the tests need ${list}, which ${missing.length === 1 ? 'is' : 'are'} missing: run "${root ? '' : 'sudo '}apt-get install ${list}"${chromium}, then npm test again`,
    )
  const brew = missing.map((name) => ({ chromium: null, 'redis-server': 'redis', 'docker.io': 'docker' })[name] ?? name).filter(Boolean)
  const how = onPath('brew') && brew.length > 0 ? `run "brew install ${brew.join(' ')}"` : `install ${list}`
  fail(`the tests need ${list}, which ${missing.length === 1 ? 'is' : 'are'} missing: ${how}${chromium}, then npm test again`)
}

/** `npm ci` when node_modules is missing or does not hold what package-lock.json locks. */
function prepareNpmDependencies() {
  const stale = npmStaleness()
  if (stale === null) return
  // npm ci empties node_modules first: through a link (a git worktree sharing another checkout's
  // packages) that would pull them from under the other checkout.
  const modules = path.join(ROOT, 'node_modules')
  if (existsSync(modules) && lstatSync(modules).isSymbolicLink()) {
    fail(`${stale}, and node_modules is a link to ${realpathSync(modules)}: run "npm ci" there, or remove the link`)
  }
  if (NO_INSTALL) fail(`${stale}: run "npm ci", then npm ${mode === 'demo' ? 'run demo' : 'test'} again`)
  say(`${stale}: installing the npm dependencies (npm ci)`)
  run('npm', ['ci', '--no-audit', '--no-fund'], { quiet: false })
}

/** Why the installed packages are not the locked ones, or null when they are. */
function npmStaleness() {
  const locked = readJson(path.join(ROOT, 'package-lock.json'))?.packages
  if (!locked) fail('package-lock.json is missing or unreadable: restore it (git checkout package-lock.json)')
  const wanted = Object.entries(locked).filter(([key]) => key.startsWith('node_modules/'))
  if (wanted.length === 0) return null
  if (!existsSync(path.join(ROOT, 'node_modules'))) return 'node_modules is missing'
  // npm records what it installed in node_modules/.package-lock.json (the "hidden lockfile").
  const installed = readJson(path.join(ROOT, 'node_modules', '.package-lock.json'))?.packages
  if (!installed) return 'node_modules was not installed by npm'
  for (const [key, entry] of wanted) {
    const have = installed[key]
    // Optional packages for another platform are not installed at all.
    if (!have && entry.optional) continue
    if (!have) return `${key.slice('node_modules/'.length)} is not installed`
    if (!entry.link && have.version !== entry.version) {
      return `${key.slice('node_modules/'.length)} ${have.version} is installed but package-lock.json wants ${entry.version}`
    }
  }
  return null
}

function run(command, args, { quiet }) {
  const result = spawnSync(command, args, {
    cwd: ROOT,
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    stdio: quiet ? ['ignore', 'pipe', 'pipe'] : 'inherit',
    encoding: 'utf8',
  })
  if (result.status === 0) return
  if (quiet) process.stderr.write(`${result.stdout ?? ''}${result.stderr ?? ''}`)
  fail(`${command} ${args.join(' ')} failed (${result.error?.message ?? `exit ${result.status ?? result.signal}`})`)
}

function onPath(name) {
  return (process.env.PATH ?? '')
    .split(path.delimiter)
    .filter(Boolean)
    .some((dir) => isExecutable(path.join(dir, name)))
}

/** Compose 2, as a plugin of the docker command (`docker compose`), where Docker installs its plugins. */
function hasComposePlugin() {
  const dirs = [
    path.join(process.env.HOME ?? '', '.docker', 'cli-plugins'),
    ...['/usr/local/lib', '/usr/local/libexec', '/usr/lib', '/usr/libexec'].map((dir) => path.join(dir, 'docker', 'cli-plugins')),
  ]
  return dirs.some((dir) => isExecutable(path.join(dir, 'docker-compose')))
}

function isExecutable(file) {
  try {
    accessSync(file, constants.X_OK)
    return statSync(file).isFile()
  } catch {
    return false
  }
}

function readJson(file) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'))
  } catch {
    return undefined
  }
}

function say(message) {
  console.log(`[prepare] ${message}`)
}

function fail(message) {
  console.error(`[prepare] ${message}`)
  process.exit(1)
}

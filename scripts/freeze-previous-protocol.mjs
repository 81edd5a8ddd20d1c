/**
 * Freezes the previous protocol version's node for the rolling-upgrade test
 * (__tests__/functional/cluster/rolling-upgrade.test.ts), so that test never needs git history:
 *
 *   node scripts/freeze-previous-protocol.mjs
 *
 * It takes `lib/` and the tsconfig files of REVISION with `git archive`, compiles them with this
 * repository's TypeScript (node_modules/typescript) into plain CommonJS (no maps, no .d.ts), and
 * packs that `dist/` with a package.json naming the revision into FIXTURE. The compiled code
 * requires its dependencies (msgpackr, debug, p-queue...) by name: the test resolves them from this
 * repository's node_modules (NODE_PATH).
 *
 * When the protocol changes again (PROTOCOL_VERSION in lib/protocol/frame.ts goes up): set
 * REVISION to the last commit of the version being replaced (the commit before the change), set
 * PROTOCOL to that version, run this script, rename the fixture in the test if its name changed,
 * and commit the script and the new tarball together. See docs/rolling-upgrades.md.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** The last commit that speaks only the previous protocol version. */
const REVISION = '441f2db'
/** The protocol version that revision speaks. */
const PROTOCOL = 2

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const FIXTURE = path.join(ROOT, '__tests__', 'fixtures', 'previous-protocol', `connect-peer-protocol${PROTOCOL}.tgz`)
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')

const work = mkdtempSync(path.join(tmpdir(), 'connect-peer-freeze-'))
try {
  const source = path.join(work, 'source')
  mkdirSync(source)
  const archive = execFileSync('git', ['-C', ROOT, 'archive', '--format=tar', REVISION, 'lib', 'tsconfig.json', 'tsconfig.build.json'])
  execFileSync('tar', ['-x', '-C', source], { input: archive })
  const frame = readFileSync(path.join(source, 'lib', 'protocol', 'frame.ts'), 'utf8')
  if (!frame.includes(`export const PROTOCOL_VERSION = ${PROTOCOL}\n`))
    throw new Error(`${REVISION} does not speak protocol ${PROTOCOL} (lib/protocol/frame.ts): check REVISION and PROTOCOL`)
  // Its types and dependencies come from this repository's node_modules.
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(source, 'node_modules'), 'dir')
  const out = path.join(work, 'package')
  execFileSync(
    process.execPath,
    [
      TSC,
      ...['-p', path.join(source, 'tsconfig.build.json'), '--outDir', path.join(out, 'dist')],
      ...['--declaration', 'false', '--declarationMap', 'false', '--sourceMap', 'false'],
    ],
    { stdio: 'inherit' },
  )
  writeFileSync(
    path.join(out, 'package.json'),
    `${JSON.stringify({ name: `connect-peer-protocol${PROTOCOL}`, private: true, type: 'commonjs', main: 'dist/index.js', revision: REVISION, protocol: PROTOCOL }, null, 2)}\n`,
  )
  mkdirSync(path.dirname(FIXTURE), { recursive: true })
  // The same bytes for the same input: sorted names, no times or owners, gzip without a name or time.
  const tar = execFileSync('tar', [
    '--sort=name',
    '--mtime=@0',
    '--owner=0',
    '--group=0',
    '--numeric-owner',
    '-c',
    '-C',
    out,
    'package.json',
    'dist',
  ])
  writeFileSync(FIXTURE, execFileSync('gzip', ['-n', '-9'], { input: tar, maxBuffer: 64 * 1024 * 1024 }))
  console.log(`${path.relative(ROOT, FIXTURE)}: protocol ${PROTOCOL} from ${REVISION}`)
} finally {
  rmSync(work, { recursive: true, force: true })
}

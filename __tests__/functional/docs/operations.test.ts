import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { ROOT } from '../../helpers/child.js'

/**
 * docs/operations.md lists every `debug` namespace the code uses, each with the files that use it,
 * and no namespace the code does not use. (Every metric is checked against a live scrape in
 * functional/demo/metrics.test.ts.)
 */
const operations = readFileSync(path.join(ROOT, 'docs', 'operations.md'), 'utf8')

function sources(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(folder, entry.name)
    if (entry.isDirectory()) return sources(full)
    return entry.name.endsWith('.ts') ? [full] : []
  })
}

/** Namespace -> the lib/ files that log under it. */
function namespacesInCode(): Map<string, string[]> {
  const found = new Map<string, string[]>()
  for (const file of sources(path.join(ROOT, 'lib'))) {
    for (const match of readFileSync(file, 'utf8').matchAll(/debugFor\('([a-z-]+)'\)/g)) {
      const files = found.get(match[1]!) ?? []
      files.push(path.relative(ROOT, file))
      found.set(match[1]!, files)
    }
  }
  return found
}

/** The rows of the table under "## Debug namespaces": namespace -> its "subsystem (files)" cell. */
function documented(): Map<string, string> {
  const section = operations.slice(operations.indexOf('## Debug namespaces'))
  const rows = new Map<string, string>()
  for (const match of section.matchAll(/^\| `connect-peer:([a-z-]+)` \| ([^|]+) \|/gm)) rows.set(match[1]!, match[2]!)
  return rows
}

test('every debug namespace in lib/ is documented, and nothing else is', () => {
  const inCode = namespacesInCode()
  expect(inCode.size).toBeGreaterThanOrEqual(7)
  expect([...documented().keys()].sort()).toEqual([...inCode.keys()].sort())
})

test("each namespace's row names every file that logs under it (or its folder)", () => {
  const rows = documented()
  const missing = [...namespacesInCode()].flatMap(([namespace, files]) =>
    files.filter((file) => !rows.get(namespace)?.includes(`\`${file}\``) && !rows.get(namespace)?.includes(`\`${path.dirname(file)}/\``)).map((file) => `${namespace}: ${file}`),
  )
  expect(missing).toEqual([])
})

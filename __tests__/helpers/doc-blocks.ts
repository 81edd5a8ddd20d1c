import { execFile, spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { parseAllDocuments } from 'yaml'
import { ROOT } from './child.js'

const run = promisify(execFile)

/**
 * The code blocks of the README and docs/, and the checks each kind gets. A block may be preceded
 * by a marker comment, `<!-- check: KIND [NAME] -->`:
 *
 * - `fragment`: TypeScript that is not a whole file. Its imports stay at the top; the rest becomes
 *   the body of an async function, after `FRAGMENT_CONTEXT` (declared `store`, `app`, `secret`).
 * - `output`: not code (program output, a transcript); only checked to be non-empty.
 * - `run NAME`: checked like any block of its language, and also run by the test named NAME.
 *
 * A block of a language nothing here can check, without an `output` marker, is a problem.
 */
export interface CodeBlock {
  /** The markdown file, relative to the repository. */
  readonly file: string
  /** Line of the opening fence (1-based). */
  readonly line: number
  readonly lang: string
  readonly code: string
  readonly marker: { readonly kind: 'fragment' | 'output' | 'run'; readonly name?: string } | undefined
}

export interface Problem {
  /** `file:line` of the problem in the markdown. */
  readonly where: string
  readonly message: string
}

const MARKER = /^<!--\s*check:\s*(fragment|output|run)(?:\s+([\w-]+))?\s*-->$/
const FENCE = /^(`{3,}|~{3,})\s*([\w+-]*)\s*$/

/** Every fenced block of a markdown text, with the marker before it, if any. */
export function extractBlocks(markdown: string, file: string): CodeBlock[] {
  const lines = markdown.split('\n')
  const blocks: CodeBlock[] = []
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!)
    if (!open) continue
    const fence = open[1]!
    let end = i + 1
    while (end < lines.length && lines[end]!.trim() !== fence) end++
    if (end >= lines.length) throw new Error(`${file}:${i + 1}: code block never closed`)
    let before = i - 1
    while (before >= 0 && lines[before]!.trim() === '') before--
    const markerLine = before >= 0 ? lines[before]!.trim() : ''
    if (/^<!--\s*check:/.test(markerLine) && !MARKER.test(markerLine)) {
      throw new Error(`${file}:${before + 1}: unknown marker ${markerLine} (fragment, output or run NAME)`)
    }
    const marker = MARKER.exec(markerLine)
    blocks.push({
      file,
      line: i + 1,
      lang: open[2]!.toLowerCase(),
      code: lines.slice(i + 1, end).join('\n'),
      marker: marker ? { kind: marker[1] as 'fragment' | 'output' | 'run', ...(marker[2] ? { name: marker[2] } : {}) } : undefined,
    })
    i = end
  }
  return blocks
}

/** README.md and every docs/*.md, read from the repository. */
export function documentationFiles(): string[] {
  const docs = readdirSync(path.join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`)
  return ['README.md', ...docs]
}

/** What a fragment may use without declaring it. */
export const FRAGMENT_CONTEXT = [
  "import type { PeerStore } from 'connect-peer'",
  "import type { Express } from 'express'",
  'declare const store: PeerStore',
  'declare const app: Express',
  'declare const secret: string',
].join('\n')

const TYPESCRIPT = new Set(['ts', 'typescript', 'js', 'javascript'])
const SHELL = new Set(['sh', 'bash', 'shell'])
/** Languages checked here; anything else needs an `output` marker. */
export const CHECKED_LANGUAGES = [...TYPESCRIPT, ...SHELL, 'json', 'yaml', 'yml', 'haproxy', 'xml', 'nginx', 'apache']

/** A TypeScript file that compiles only if `docs/api.md` lists every option, event and error code. */
export interface ReferenceCheck {
  readonly source: string
  readonly where: string
}

/**
 * Type-checks every TypeScript block (and the reference checks) in one `tsc` run against the packed
 * package installed in `project`, and checks every other block by its language.
 */
export async function checkBlocks(
  blocks: readonly CodeBlock[],
  project: string,
  extra: readonly ReferenceCheck[] = [],
): Promise<Problem[]> {
  const problems: Problem[] = []
  const typescript: { file: string; block: CodeBlock | undefined; offset: number; where?: string }[] = []
  const dir = path.join(project, 'blocks')
  await mkdir(dir, { recursive: true })
  for (const [index, block] of blocks.entries()) {
    const where = `${block.file}:${block.line}`
    if (block.code.trim() === '') {
      problems.push({ where, message: 'empty code block' })
      continue
    }
    if (block.marker?.kind === 'output') continue
    if (block.marker?.kind === 'fragment' && !TYPESCRIPT.has(block.lang)) {
      problems.push({ where, message: `a fragment marker is for TypeScript blocks, not ${block.lang || 'unlabelled'} ones` })
      continue
    }
    if (TYPESCRIPT.has(block.lang)) {
      const { source, offset } = typescriptSource(block)
      const js = block.lang.startsWith('j')
      const name = `block${index}.${js ? (/\brequire\(/.test(block.code) ? 'cjs' : 'mjs') : 'ts'}`
      await writeFile(path.join(dir, name), source)
      typescript.push({ file: `blocks/${name}`, block, offset })
    } else if (SHELL.has(block.lang)) problems.push(...checkShell(block))
    else if (block.lang === 'json') problems.push(...attempt(where, () => JSON.parse(block.code)))
    else if (block.lang === 'yaml' || block.lang === 'yml') problems.push(...checkYaml(block))
    else if (block.lang === 'haproxy') problems.push(...(await checkHaproxy(block, dir, index)))
    else if (block.lang === 'xml') problems.push(...checkXml(block))
    else if (block.lang === 'nginx') problems.push(...checkBraces(block))
    else if (block.lang === 'apache') problems.push(...checkApache(block))
    else {
      problems.push({
        where,
        message:
          `cannot check a block of language "${block.lang || '(none)'}": label it (${CHECKED_LANGUAGES.join(', ')}), ` +
          'or mark it <!-- check: output --> if it is not code',
      })
    }
  }
  for (const [index, check] of extra.entries()) {
    const name = `reference${index}.ts`
    await writeFile(path.join(dir, name), check.source)
    typescript.push({ file: `blocks/${name}`, block: undefined, offset: 0, where: check.where })
  }
  if (typescript.length > 0) problems.push(...(await compile(project, typescript)))
  return problems
}

/** The block as a module file; for a fragment, its body wrapped in a function after the context. */
function typescriptSource(block: CodeBlock): { source: string; offset: number } {
  if (block.marker?.kind !== 'fragment') return { source: `${block.code}\nexport {}\n`, offset: 0 }
  const lines = block.code.split('\n')
  const imports: string[] = []
  const body: string[] = []
  let inImport = false
  for (const line of lines) {
    if (inImport || /^import\s/.test(line)) {
      imports.push(line)
      body.push('') // keeps the body's line numbers
      inImport = !/from\s+['"][^'"]+['"]\s*;?\s*$|^import\s+['"]/.test(line)
    } else body.push(line)
  }
  const head = `${FRAGMENT_CONTEXT}\n${imports.join('\n')}\nexport async function fragment(): Promise<void> {`
  return { source: `${head}\n${body.join('\n')}\n}\n`, offset: head.split('\n').length }
}

async function compile(project: string, files: { file: string; block: CodeBlock | undefined; offset: number; where?: string }[]) {
  await writeFile(
    path.join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        target: 'ES2022',
        lib: ['ES2023', 'ESNext.Disposable'],
        module: 'nodenext',
        moduleResolution: 'nodenext',
        allowJs: true,
        checkJs: true,
        noEmit: true,
        skipLibCheck: true,
        esModuleInterop: true,
        types: ['node'],
      },
      files: files.map((each) => each.file),
    }),
  )
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
  const output = await run(process.execPath, [tsc, '-p', 'tsconfig.json', '--pretty', 'false'], { cwd: project }).then(
    () => '',
    (error: Error & { stdout?: string }) => error.stdout || error.message,
  )
  const problems: Problem[] = []
  for (const line of output.split('\n')) {
    const match = /^(blocks\/[\w.]+)\((\d+),\d+\): (.*)$/.exec(line)
    if (!match) {
      if (line.trim() !== '' && !/^\s/.test(line)) problems.push({ where: 'tsc', message: line })
      continue
    }
    const file = files.find((each) => each.file === match[1])
    if (!file?.block) {
      problems.push({ where: file?.where ?? match[1]!, message: match[3]! })
      continue
    }
    const lineInBlock = Number(match[2]) - file.offset
    problems.push({ where: `${file.block.file}:${file.block.line + lineInBlock}`, message: match[3]! })
  }
  return problems
}

function attempt(where: string, check: () => unknown): Problem[] {
  try {
    check()
    return []
  } catch (error) {
    return [{ where, message: (error as Error).message }]
  }
}

function checkYaml(block: CodeBlock): Problem[] {
  const where = `${block.file}:${block.line}`
  return parseAllDocuments(block.code).flatMap((document) => document.errors.map((error) => ({ where, message: error.message })))
}

/** Whether `haproxy` is on the PATH; the message says how to get it when it is not. */
export function haproxyMissing(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v haproxy'], { encoding: 'utf8' })
  if (found.status === 0) return undefined
  return (
    'haproxy is not installed, so the HAProxy configuration in the docs cannot be checked. ' +
    '`npm test` installs it when run as root on Debian; otherwise run `sudo apt-get install haproxy`.'
  )
}

async function checkHaproxy(block: CodeBlock, dir: string, index: number): Promise<Problem[]> {
  const where = `${block.file}:${block.line}`
  const missing = haproxyMissing()
  if (missing) return [{ where, message: missing }]
  const file = path.join(dir, `haproxy${index}.cfg`)
  await writeFile(file, `${block.code}\n`)
  const result = spawnSync('haproxy', ['-c', '-f', file], { encoding: 'utf8' })
  if (result.status === 0) return []
  return [{ where, message: `haproxy -c failed:\n${result.stdout}${result.stderr}` }]
}

/** Well-formed XML: tags nest and close, attributes are quoted (comments and declarations skipped). */
export function checkXml(block: CodeBlock): Problem[] {
  const where = `${block.file}:${block.line}`
  const text = block.code.replace(/<!--[\s\S]*?-->/g, '').replace(/<\?[\s\S]*?\?>/g, '')
  const stack: string[] = []
  const tag = /<(\/?)([A-Za-z_][\w.:-]*)((?:\s+[\w.:-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/g
  let position = 0
  for (let match = tag.exec(text); match; match = tag.exec(text)) {
    if (/[<>]/.test(text.slice(position, match.index))) return [{ where, message: `malformed markup before ${match[0].slice(0, 40)}` }]
    position = match.index + match[0].length
    const [, closing, name, , selfClosing] = match
    if (closing) {
      const open = stack.pop()
      if (open !== name) return [{ where, message: `</${name}> closes <${open ?? 'nothing'}>` }]
    } else if (!selfClosing) stack.push(name!)
  }
  if (/[<>]/.test(text.slice(position))) return [{ where, message: 'malformed markup at the end' }]
  return stack.length === 0 ? [] : [{ where, message: `unclosed <${stack.join('>, <')}>` }]
}

/** nginx: braces balance, and every statement ends with `;` or a block. */
function checkBraces(block: CodeBlock): Problem[] {
  const where = `${block.file}:${block.line}`
  let depth = 0
  for (const char of block.code.replace(/#.*$/gm, '')) {
    if (char === '{') depth++
    if (char === '}' && --depth < 0) return [{ where, message: 'unbalanced }' }]
  }
  if (depth !== 0) return [{ where, message: 'unclosed {' }]
  const dangling = block.code
    .split('\n')
    .map((line) => line.replace(/#.*$/, '').trim())
    .find((line) => line !== '' && !/[;{}]$/.test(line))
  return dangling ? [{ where, message: `statement without ; at "${dangling}"` }] : []
}

/** Apache: `<Section>` and `</Section>` pair up. */
function checkApache(block: CodeBlock): Problem[] {
  const where = `${block.file}:${block.line}`
  const stack: string[] = []
  for (const line of block.code.split('\n')) {
    const open = /^\s*<([A-Za-z]+)[\s>]/.exec(line)
    const close = /^\s*<\/([A-Za-z]+)>/.exec(line)
    if (close) {
      if (stack.pop() !== close[1]) return [{ where, message: `</${close[1]}> closes nothing open` }]
    } else if (open) stack.push(open[1]!)
  }
  return stack.length === 0 ? [] : [{ where, message: `unclosed <${stack.join('>, <')}>` }]
}

const SHELL_BUILTINS = new Set(['cd', 'export', 'source', '.', 'set', 'echo', 'exit', 'test', '[', 'true', 'false', 'read', 'unset'])

/** Shell: `bash -n` accepts it, every command exists, every `npm run X` names a script of package.json. */
export function checkShell(block: CodeBlock): Problem[] {
  const problems: Problem[] = []
  const syntax = spawnSync('bash', ['-n'], { input: block.code, encoding: 'utf8' })
  if (syntax.status !== 0) problems.push({ where: `${block.file}:${block.line}`, message: `bash -n: ${syntax.stderr.trim()}` })
  const scripts = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts
  const lines = block.code.replace(/\\\n/g, ' ').split('\n')
  lines.forEach((text, index) => {
    const where = `${block.file}:${block.line + 1 + index}`
    for (const words of commandsOf(text)) {
      const [command, ...args] = words
      if (command === undefined) continue
      if (!SHELL_BUILTINS.has(command) && spawnSync('sh', ['-c', `command -v '${command}'`]).status !== 0) {
        problems.push({ where, message: `command not found: ${command}` })
      }
      if (command === 'npm') {
        const [sub, ...rest] = args
        const script =
          sub === 'run' || sub === 'run-script' ? rest.find((arg) => !arg.startsWith('-')) : sub === 'test' ? 'test' : undefined
        if (script !== undefined && !(script in scripts)) problems.push({ where, message: `npm script not in package.json: ${script}` })
        if (sub === undefined) problems.push({ where, message: 'npm without a command' })
      }
      if (command === 'node') {
        for (const file of args.filter((arg) => /^[\w./-]+\.(ts|js|mjs|cjs)$/.test(arg))) {
          if (!existsSync(path.join(ROOT, file))) problems.push({ where, message: `no such file: ${file}` })
        }
      }
    }
  })
  return problems
}

/** The simple commands of one shell line: words, with leading `VAR=value` words and comments dropped. */
export function commandsOf(line: string): string[][] {
  const commands: string[][] = []
  let words: string[] = []
  let word = ''
  let quote: string | undefined
  let nesting = 0
  const finishWord = () => {
    if (word !== '') words.push(word)
    word = ''
  }
  const finishCommand = () => {
    finishWord()
    const command = words.filter((_, index) => !words.slice(0, index + 1).every((each) => /^[A-Za-z_]\w*=/.test(each)))
    if (command.length > 0) commands.push(command)
    words = []
  }
  for (let i = 0; i < line.length; i++) {
    const char = line[i]!
    if (quote) {
      if (char === quote) quote = undefined
      else if (char === '$' && line[i + 1] === '(') {
        // A command substitution inside double quotes: its command counts too.
        const inner = /^\$\(([^)]*)\)/.exec(line.slice(i))
        if (inner) commands.push(...commandsOf(inner[1]!))
      }
      word += char
      continue
    }
    if (char === '$' && line[i + 1] === '(') {
      const inner = /^\$\(([^)]*)\)/.exec(line.slice(i))
      if (inner) commands.push(...commandsOf(inner[1]!))
      nesting++
      word += char
      continue
    }
    if (nesting > 0) {
      if (char === ')') nesting--
      word += char
      continue
    }
    if (char === '"' || char === "'") quote = char
    else if (char === '#' && word === '') break
    else if (/\s/.test(char)) finishWord()
    else if (char === ';' || char === '|' || char === '&') finishCommand()
    else word += char
  }
  finishCommand()
  return commands
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
export function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-')
}

/** Relative links whose file (or heading anchor) does not exist. */
export function checkLinks(markdown: string, file: string): Problem[] {
  const problems: Problem[] = []
  const withoutCode = markdown.replace(/^(`{3,})[\s\S]*?^\1\s*$/gm, (block) => block.replace(/[^\n]/g, ''))
  withoutCode.split('\n').forEach((text, index) => {
    for (const match of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = match[1]!
      if (/^(https?:|mailto:)/.test(target)) continue
      const [relative, anchor] = target.split('#') as [string, string | undefined]
      const resolved = relative === '' ? path.join(ROOT, file) : path.join(ROOT, path.dirname(file), relative)
      const where = `${file}:${index + 1}`
      if (!existsSync(resolved)) {
        problems.push({ where, message: `link to a missing file: ${target}` })
        continue
      }
      if (anchor === undefined || !resolved.endsWith('.md')) continue
      const headings = readFileSync(resolved, 'utf8')
        .replace(/^(`{3,})[\s\S]*?^\1\s*$/gm, '')
        .split('\n')
        .filter((line) => /^#{1,6}\s/.test(line))
        .map((line) => slug(line.replace(/^#+\s*/, '')))
      if (!headings.includes(anchor)) problems.push({ where, message: `link to a missing heading: ${target}` })
    }
  })
  return problems
}

/**
 * The names in the first (or `column`) cell of the tables under a `## heading` of a markdown text,
 * up to the next heading of that level: `` `ttl` `` gives `ttl`.
 */
export function tableNames(markdown: string, heading: string, column = 0): string[] {
  const start = markdown.indexOf(`\n${heading}\n`)
  if (start === -1) throw new Error(`no heading ${heading}`)
  const level = /^#+/.exec(heading)![0]
  const rest = markdown.slice(start + heading.length + 2)
  const end = rest.search(new RegExp(`^#{1,${level.length}}\\s`, 'm'))
  const section = end === -1 ? rest : rest.slice(0, end)
  const names: string[] = []
  const lines = section.split('\n')
  for (const [index, line] of lines.entries()) {
    // Rows only: not the header (the line before the |---| separator).
    if (!line.startsWith('|') || /^\|[\s|:-]*$/.test(lines[index + 1] ?? '') || /^\|[\s|:-]*$/.test(line)) continue
    const cell = line.split(/(?<!\\)\|/)[column + 1]?.trim() ?? ''
    const name = /^`([\w:.-]+)`/.exec(cell)?.[1]
    if (name !== undefined) names.push(name)
  }
  return names
}

/**
 * A strict reader of Prometheus's text exposition format (version 0.0.4), for tests: prom-client has
 * no parser, and a lenient one would accept what Prometheus itself refuses. Throws, naming the line,
 * on anything out of the format: a malformed name, label or value, a sample before its family's TYPE
 * or of another family's TYPE, a family split in two, a series given twice, HELP or TYPE twice, a
 * counter going by another name, histogram buckets that are not cumulative or lack `+Inf`, a `_count`
 * that differs from the `+Inf` bucket, a missing final newline.
 */
export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

export interface Family {
  readonly name: string
  readonly type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped'
  readonly help: string | undefined
  readonly samples: Sample[]
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped'])

export function parsePrometheusText(text: string): Map<string, Family> {
  if (text.length > 0 && !text.endsWith('\n')) throw new Error('the exposition does not end with a newline')
  const families = new Map<string, { family: Family; ended: boolean; typed: boolean }>()
  const series = new Set<string>()
  let current: string | undefined
  const lines = text.split('\n')
  lines.pop()
  lines.forEach((line, index) => {
    const where = `line ${index + 1} (${JSON.stringify(line)})`
    const fail = (why: string): never => {
      throw new Error(`${where}: ${why}`)
    }
    if (line === '') return
    const meta = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(line)
    if (meta) {
      const [, kind, name, rest = ''] = meta as unknown as [string, 'HELP' | 'TYPE', string, string | undefined]
      if (!METRIC_NAME.test(name)) fail(`bad metric name ${name}`)
      let entry = families.get(name)
      if (entry?.ended) fail(`family ${name} is split: its lines are not together`)
      if (!entry) {
        if (current !== undefined) families.get(current)!.ended = true
        entry = { family: { name, type: 'untyped', help: undefined, samples: [] }, ended: false, typed: false }
        families.set(name, entry)
        current = name
      }
      const family = entry.family as { -readonly [K in keyof Family]: Family[K] }
      if (kind === 'HELP') {
        if (family.help !== undefined) fail(`second HELP for ${name}`)
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ''))) fail('HELP text with an escape other than \\\\ and \\n')
        family.help = rest
      } else {
        if (!TYPES.has(rest)) fail(`unknown type ${rest}`)
        if (family.samples.length > 0) fail(`TYPE for ${name} after its samples`)
        if (entry.typed) fail(`second TYPE for ${name}`)
        entry.typed = true
        family.type = rest as Family['type']
      }
      return
    }
    if (line.startsWith('#')) return // a comment
    const sample = parseSample(line, fail)
    const familyName = familyOf(sample.name, families)
    const entry = families.get(familyName)
    if (!entry) fail(`sample ${sample.name} has no TYPE before it`)
    if (entry!.ended || current !== familyName) fail(`family ${familyName} is split: its lines are not together`)
    const { family } = entry!
    if (family.type === 'counter' && sample.name !== family.name) fail(`counter ${family.name} has a sample named ${sample.name}`)
    if ((family.type === 'gauge' || family.type === 'untyped') && sample.name !== family.name)
      fail(`${family.type} ${family.name} has a sample named ${sample.name}`)
    const key = `${sample.name}{${Object.entries(sample.labels)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join(',')}}`
    if (series.has(key)) fail(`series ${key} given twice`)
    series.add(key)
    if (family.type === 'counter' && !(sample.value >= 0)) fail(`counter ${family.name} is ${sample.value}`)
    family.samples.push(sample)
  })
  const result = new Map<string, Family>()
  for (const [name, { family }] of families) {
    if (family.type === 'histogram') checkHistogram(family)
    result.set(name, family)
  }
  return result
}

/** The family a sample belongs to: its own name, or a histogram's or summary's base name. */
function familyOf(sample: string, families: Map<string, { family: Family }>): string {
  if (families.has(sample)) return sample
  const match = /^(.*)_(bucket|sum|count)$/.exec(sample)
  if (match) {
    const type = families.get(match[1]!)?.family.type
    if (type === 'histogram' || (type === 'summary' && match[2] !== 'bucket')) return match[1]!
  }
  return sample
}

function parseSample(line: string, fail: (why: string) => never): Sample {
  const head = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line)
  if (!head) fail('a sample must start with a metric name')
  const name = head[1]!
  let at = name.length
  const labels: Record<string, string> = {}
  if (line[at] === '{') {
    at += 1
    for (;;) {
      if (line[at] === '}') {
        at += 1
        break
      }
      const label = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(line.slice(at))
      if (!label || !LABEL_NAME.test(label[1]!)) fail(`bad label at column ${at + 1}`)
      const labelName = label[1]!
      if (labelName in labels) fail(`label ${labelName} twice`)
      at += label[0].length
      let value = ''
      for (;;) {
        const char = line[at]
        if (char === undefined) fail('unterminated label value')
        if (char === '"') break
        if (char === '\\') {
          const next = line[at + 1]
          if (next === '\\' || next === '"') value += next
          else if (next === 'n') value += '\n'
          else fail(`bad escape \\${next ?? ''} in a label value`)
          at += 2
        } else {
          value += char
          at += 1
        }
      }
      labels[labelName] = value
      at += 1
      if (line[at] === ',') at += 1
      else if (line[at] !== '}') fail(`expected , or } at column ${at + 1}`)
    }
  }
  const rest = line.slice(at)
  const parts = /^ (\S+)(?: (-?\d+))?$/.exec(rest)
  if (!parts) fail('expected one space, a value, and optionally a timestamp')
  const text = parts[1]!
  let value: number
  // Values are what Go's strconv.ParseFloat reads (Prometheus's own parser): Inf and NaN in any
  // case. prom-client writes `Nan` for a summary with no sample yet (its event-loop lag, at start).
  if (/^\+?inf(inity)?$/i.test(text)) value = Infinity
  else if (/^-inf(inity)?$/i.test(text)) value = -Infinity
  else if (/^nan$/i.test(text)) value = NaN
  else if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) value = Number(text)
  else fail(`bad value ${text}`)
  return { name, labels, value: value! }
}

function checkHistogram(family: Family): void {
  const groups = new Map<string, { buckets: Array<[number, number]>; count?: number; sum?: number }>()
  for (const sample of family.samples) {
    const { le, ...others } = sample.labels
    const key = JSON.stringify(Object.entries(others).sort(([a], [b]) => a.localeCompare(b)))
    let group = groups.get(key)
    if (!group) groups.set(key, (group = { buckets: [] }))
    if (sample.name === `${family.name}_bucket`) {
      if (le === undefined) throw new Error(`${family.name}: a bucket without le`)
      const bound = le === '+Inf' ? Infinity : Number(le)
      if (Number.isNaN(bound)) throw new Error(`${family.name}: bad le ${le}`)
      group.buckets.push([bound, sample.value])
    } else if (le !== undefined) {
      throw new Error(`${family.name}: le on ${sample.name}`)
    } else if (sample.name === `${family.name}_count`) group.count = sample.value
    else if (sample.name === `${family.name}_sum`) group.sum = sample.value
    else throw new Error(`${family.name}: unexpected sample ${sample.name}`)
  }
  for (const [key, group] of groups) {
    const where = `${family.name}${key}`
    const last = group.buckets.at(-1)
    if (!last || last[0] !== Infinity) throw new Error(`${where}: no +Inf bucket last`)
    for (let i = 1; i < group.buckets.length; i++) {
      const [bound, count] = group.buckets[i]!
      const [previousBound, previousCount] = group.buckets[i - 1]!
      if (!(bound > previousBound)) throw new Error(`${where}: buckets not in increasing order of le`)
      if (count < previousCount) throw new Error(`${where}: buckets not cumulative`)
    }
    if (group.count === undefined || group.sum === undefined) throw new Error(`${where}: _count or _sum missing`)
    if (group.count !== last[1]) throw new Error(`${where}: _count ${group.count} but +Inf bucket ${last[1]}`)
  }
}

/** The value of the one sample of `name` whose labels include `labels`; throws when there is not exactly one. */
export function valueOf(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const found = [...families.values()]
    .flatMap((family) => family.samples)
    .filter((sample) => sample.name === name && Object.entries(labels).every(([k, v]) => sample.labels[k] === v))
  if (found.length !== 1) throw new Error(`${found.length} samples of ${name}${JSON.stringify(labels)}`)
  return found[0]!.value
}

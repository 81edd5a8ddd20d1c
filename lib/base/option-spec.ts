import { InvalidOptionError } from './errors.js'

/**
 * One option: what leaving it out means, and how a given value is checked and turned into what the
 * code uses. Each subsystem keeps a table of these beside its options interface, typed with
 * `satisfies OptionTable<TheInterface>`, so an option's default, bounds, validation and the list of
 * known names all come from one declaration (ioredis keeps cluster options beside the cluster).
 */
export interface OptionSpec<Resolved> {
  /** The value used when the option is left out; absent when leaving it out has a meaning of its own. */
  readonly default?: unknown
  /** Checks the value (the default included) and returns it resolved; throws `InvalidOptionError`. */
  readonly parse: (value: unknown, name: string) => Resolved
}

/** A spec for every option of `Options`, and for nothing else. */
export type OptionTable<Options> = { readonly [K in keyof Required<Options>]: OptionSpec<unknown> }

/** The options of a table, each checked and resolved (durations in milliseconds). */
export type ResolvedTable<Table> = { readonly [K in keyof Table]: Table[K] extends OptionSpec<infer R> ? R : never }

/** Resolves every option of `table` from `options` (all of them, whether or not the mode uses them). */
export function resolveTable<Table extends Record<string, OptionSpec<unknown>>>(
  table: Table,
  options: Readonly<Record<string, unknown>>,
): ResolvedTable<Table> {
  const resolved: Record<string, unknown> = {}
  for (const [name, spec] of Object.entries(table)) resolved[name] = spec.parse(options[name] ?? spec.default, name)
  return resolved as ResolvedTable<Table>
}

/**
 * Refuses option names no table knows, suggesting the closest known one ("did you mean `ttl`?")
 * when a name is a typo away from it.
 */
export function checkKnownNames(options: object, known: readonly string[], within?: string): void {
  for (const name of Object.keys(options)) {
    if (known.includes(name)) continue
    const suggestion = closest(name, known)
    const what = within ? `a field of \`${within}\`` : 'a known option'
    const expected = suggestion ? `${what} (did you mean ${suggestion}?)` : `${what}: one of ${known.join(', ')}`
    throw new InvalidOptionError(within ? `${within}.${name}` : name, expected, name)
  }
}

// ---- parsers -------------------------------------------------------------------------------------

/** An integer from `min` to `max`. */
export const integer =
  (min: number, max: number) =>
  (value: unknown, name: string): number => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new InvalidOptionError(name, `an integer from ${min} to ${max}`, value)
    }
    return value
  }

/** A finite number of seconds (above 0, or from 0 with `allowZero`), resolved to milliseconds. */
export const seconds =
  ({ allowZero }: { allowZero: boolean }) =>
  (value: unknown, name: string): number => {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
      throw new InvalidOptionError(name, `a finite number of seconds ${allowZero ? 'of at least 0' : 'greater than 0'}`, value)
    }
    return value * 1000
  }

export const boolean = (value: unknown, name: string): boolean => {
  if (typeof value !== 'boolean') throw new InvalidOptionError(name, 'a boolean', value)
  return value
}

/** One of a few strings. */
export const oneOf =
  <const Choices extends readonly string[]>(...choices: Choices) =>
  (value: unknown, name: string): Choices[number] => {
    if (typeof value !== 'string' || !choices.includes(value))
      throw new InvalidOptionError(name, choices.map((choice) => `'${choice}'`).join(', '), value)
    return value
  }

/** A string of `min` to `max` characters. */
export const text =
  (min: number, max: number) =>
  (value: unknown, name: string): string => {
    if (typeof value !== 'string' || value.length < min || value.length > max) {
      throw new InvalidOptionError(name, `a string of ${min} to ${max} characters`, value)
    }
    return value
  }

/** A function, described for the error message. */
export const func =
  <F extends (...args: never[]) => unknown>(description: string) =>
  (value: unknown, name: string): F => {
    if (typeof value !== 'function') throw new InvalidOptionError(name, description, value)
    return value as F
  }

/** `parse`, or undefined when the option is left out (and has no default). */
export const optional =
  <R>(parse: (value: unknown, name: string) => R) =>
  (value: unknown, name: string): R | undefined =>
    value === undefined ? undefined : parse(value, name)

/** The known name a typo away from `name` (case aside), if one is closer than every other. */
function closest(name: string, known: readonly string[]): string | undefined {
  const allowed = name.length <= 4 ? 1 : 2
  const ranked = known
    .map((candidate) => ({ candidate, edits: distance(name.toLowerCase(), candidate.toLowerCase()) }))
    .filter(({ edits }) => edits <= allowed)
    .sort((a, b) => a.edits - b.edits)
  const best = ranked.filter(({ edits }) => edits === ranked[0]?.edits).map(({ candidate }) => `\`${candidate}\``)
  // A tie ("tll": `ttl` or `tls`?) names both rather than guessing; more than that is no hint.
  return best.length === 0 || best.length > 2 ? undefined : best.join(' or ')
}

/** Edits (insert, delete, replace, swap two neighbours) that turn `a` into `b`. */
function distance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  )
  const at = (i: number, j: number) => rows[i]?.[j] ?? 0
  for (let i = 1; i <= a.length; i++) {
    const row = rows[i] ?? []
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let edits = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) edits = Math.min(edits, at(i - 2, j - 2) + 1)
      row[j] = edits
    }
  }
  return at(a.length, b.length)
}

/** Control and invisible formatting characters, line and paragraph separators, lone surrogates. */
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]+/gu

/** How much of a text from the other side an error message or log line shows by default. */
export const PRINTABLE_LENGTH = 200

/**
 * Text the other side of a connection chose (a refusal's detail, a cluster name, the names in a
 * certificate), made fit for one line of a log or an error message: every run of control or
 * formatting characters becomes one space, so it cannot forge log lines, move the cursor or reorder
 * what follows, and it is cut to `maxLength` characters.
 *
 * @example
 * ```ts
 * printable('no\nforged line') // 'no forged line'
 * ```
 */
export function printable(text: string, maxLength = PRINTABLE_LENGTH): string {
  const flat = text.replace(UNPRINTABLE, ' ')
  if (flat.length <= maxLength) return flat
  // Never end on half a surrogate pair.
  const cut = flat.slice(0, maxLength).replace(/[\uD800-\uDBFF]$/, '')
  return `${cut}... (${text.length} characters)`
}

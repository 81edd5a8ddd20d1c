import { InvalidOptionError } from '../base/errors.js'

/** Node ids end up in session ids (`<random>.<nodeId>`) and cookies: keep them to a safe alphabet. */
export const NODE_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/

export function parseNodeId(option: string, value: unknown): string {
  if (typeof value !== 'string' || !NODE_ID_PATTERN.test(value)) {
    throw new InvalidOptionError(option, '1 to 64 letters, digits, "-" or "_" (it becomes part of session ids and cookies)', value)
  }
  return value
}

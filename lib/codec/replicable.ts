import { NotReplicableError } from '../errors.js'

/**
 * Checks, before anything is encoded, that a session value survives a msgpack round trip on every
 * node: plain objects, arrays, strings, numbers, booleans, null, undefined (dropped like JSON does),
 * valid Dates and Buffers/Uint8Arrays. Anything else (functions, symbols, bigints, circular
 * references, Maps, Sets, sockets, class instances) throws `NotReplicableError` naming the path.
 * `container` is the object that holds `value`, so a reference back to it counts as circular.
 */
export function assertReplicable(value: unknown, path: string, maxDepth: number, container?: object): void {
  // `value` is a field of the session, and the session itself is depth 1 (as in `scanValue`).
  check(value, path, 2, maxDepth, new Set(container ? [container] : []))
}

function check(value: unknown, path: string, depth: number, maxDepth: number, ancestors: Set<object>): void {
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
    case 'undefined':
      return
    case 'function':
      throw new NotReplicableError(path, 'functions cannot be sent to another node')
    case 'symbol':
      throw new NotReplicableError(path, 'symbols cannot be sent to another node')
    case 'bigint':
      throw new NotReplicableError(path, 'bigints are not supported; store them as strings')
  }
  if (value === null) return
  const object = value as object
  if (object instanceof Date) {
    if (Number.isNaN(object.getTime())) throw new NotReplicableError(path, 'the Date is invalid')
    return
  }
  if (object instanceof Uint8Array && (object.constructor === Uint8Array || Buffer.isBuffer(object))) return
  if (depth > maxDepth) throw new NotReplicableError(path, `it is nested deeper than ${maxDepth} levels`)
  if (ancestors.has(object)) throw new NotReplicableError(path, 'it is a circular reference')

  ancestors.add(object)
  if (Array.isArray(object)) {
    if (Object.getPrototypeOf(object) !== Array.prototype) throw notPlain(path, object)
    for (let i = 0; i < object.length; i++) check(object[i], `${path}[${i}]`, depth + 1, maxDepth, ancestors)
  } else {
    const prototype = Object.getPrototypeOf(object)
    if (prototype !== Object.prototype && prototype !== null) throw notPlain(path, object)
    for (const key of Object.keys(object)) {
      if (key === '__proto__') throw new NotReplicableError(path, 'it has an own "__proto__" key')
      check((object as Record<string, unknown>)[key], joinPath(path, key), depth + 1, maxDepth, ancestors)
    }
  }
  ancestors.delete(object)
}

function notPlain(path: string, object: object): NotReplicableError {
  const name = Object.getPrototypeOf(object)?.constructor?.name ?? 'an unknown class'
  return new NotReplicableError(path, `it is an instance of ${name}, which would not come back as the same kind of object`)
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/

/** `user` + `name` -> `user.name`; keys that are not identifiers use brackets: `user["first name"]`. */
export function joinPath(path: string, key: string): string {
  if (path === '') return IDENTIFIER.test(key) ? key : `[${JSON.stringify(key)}]`
  return IDENTIFIER.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`
}

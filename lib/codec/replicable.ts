import { NotReplicableError } from '../base/errors.js'

/**
 * Checks, before anything is encoded, that a session value survives a msgpack round trip on every
 * node: plain objects, arrays, strings, numbers, booleans, null, undefined (dropped like JSON does),
 * valid Dates and Buffers/Uint8Arrays. Anything else (functions, symbols, bigints, circular
 * references, Maps, Sets, sockets, class instances) throws `NotReplicableError` naming the path.
 * `container` is the object that holds `value`, so a reference back to it counts as circular.
 *
 * This runs on every `set`: the path is kept as a stack of keys and only turned into text when a
 * value is refused.
 */
export function assertReplicable(value: unknown, path: string, maxDepth: number, container?: object): void {
  const walk = new Walk(path, maxDepth, container)
  // `value` is a field of the session, and the session itself is depth 1 (as in `scanValue`).
  walk.check(value, 2)
}

class Walk {
  readonly #root: string
  readonly #maxDepth: number
  readonly #keys: Array<string | number> = []
  readonly #ancestors: object[] = []

  constructor(root: string, maxDepth: number, container: object | undefined) {
    this.#root = root
    this.#maxDepth = maxDepth
    if (container) this.#ancestors.push(container)
  }

  check(value: unknown, depth: number): void {
    switch (typeof value) {
      case 'string':
      case 'number':
      case 'boolean':
      case 'undefined':
        return
      case 'function':
        throw this.#refuse('functions cannot be sent to another node')
      case 'symbol':
        throw this.#refuse('symbols cannot be sent to another node')
      case 'bigint':
        throw this.#refuse('bigints are not supported; store them as strings')
    }
    if (value === null) return
    const object = value as object
    if (object instanceof Date) {
      if (Number.isNaN(object.getTime())) throw this.#refuse('the Date is invalid')
      return
    }
    if (object instanceof Uint8Array && (object.constructor === Uint8Array || Buffer.isBuffer(object))) return
    if (depth > this.#maxDepth) throw this.#refuse(`it is nested deeper than ${this.#maxDepth} levels`)
    if (this.#ancestors.includes(object)) throw this.#refuse('it is a circular reference')

    this.#ancestors.push(object)
    if (Array.isArray(object)) {
      if (Object.getPrototypeOf(object) !== Array.prototype) throw this.#notPlain(object)
      for (let i = 0; i < object.length; i++) {
        this.#keys.push(i)
        this.check(object[i], depth + 1)
        this.#keys.pop()
      }
    } else {
      const prototype: unknown = Object.getPrototypeOf(object)
      if (prototype !== Object.prototype && prototype !== null) throw this.#notPlain(object)
      for (const key of Object.keys(object)) {
        this.#keys.push(key)
        if (key === '__proto__') throw this.#refuse('the key "__proto__" is reserved')
        this.check((object as Record<string, unknown>)[key], depth + 1)
        this.#keys.pop()
      }
    }
    this.#ancestors.pop()
  }

  #notPlain(object: object): NotReplicableError {
    const name = (Object.getPrototypeOf(object) as { constructor?: { name?: string } } | null)?.constructor?.name ?? 'an unknown class'
    return this.#refuse(`it is an instance of ${name}, which would not come back as the same kind of object`)
  }

  #refuse(reason: string): NotReplicableError {
    let path = this.#root
    for (const key of this.#keys) path = typeof key === 'number' ? `${path}[${key}]` : joinPath(path, key)
    return new NotReplicableError(path, reason)
  }
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/

/** `user` + `name` -> `user.name`; keys that are not identifiers use brackets: `user["first name"]`. */
export function joinPath(path: string, key: string): string {
  if (path === '') return IDENTIFIER.test(key) ? key : `[${JSON.stringify(key)}]`
  return IDENTIFIER.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`
}

import { InvalidOptionError } from '../base/errors.js'

/**
 * The ReplicationValve filter of Tomcat's usual cluster configuration: requests for these files
 * replicate nothing. Matched against the whole path (Tomcat uses `matches()`), without the query
 * string.
 */
export const DEFAULT_STATIC_FILTER = /^(?:.*\.gif|.*\.js|.*\.jpeg|.*\.jpg|.*\.png|.*\.htm|.*\.html|.*\.css|.*\.txt)$/

/**
 * Which requests replicate nothing: a RegExp tested against the path (anchor it yourself), a
 * function of the request, or `false` to replicate every request.
 */
export type StaticFilter<Request> = RegExp | ((request: Request) => boolean) | false

/** Turns the option into a predicate of (request, path); validates it once, up front. */
export function staticMatcher<Request>(filter: StaticFilter<Request> | undefined): (request: Request, path: string) => boolean {
  const chosen = filter ?? DEFAULT_STATIC_FILTER
  if (chosen === false) return () => false
  if (chosen === DEFAULT_STATIC_FILTER) return (_request, path) => matchesDefault(path)
  if (chosen instanceof RegExp) {
    // A global or sticky RegExp keeps state between tests; copy it without those flags.
    const regexp = new RegExp(chosen.source, chosen.flags.replace(/[gy]/g, ''))
    return (_request, path) => regexp.test(path)
  }
  if (typeof chosen === 'function') return (request) => chosen(request) === true
  throw new InvalidOptionError('staticFilter', 'a RegExp, a function of the request, or false', chosen)
}

const DEFAULT_EXTENSIONS = new Set(['gif', 'js', 'jpeg', 'jpg', 'png', 'htm', 'html', 'css', 'txt'])

/**
 * `DEFAULT_STATIC_FILTER.test(path)` without a RegExp: the part after the last dot is one of the
 * extensions, and (as `.` in the RegExp does not match them) the path holds no line terminator.
 */
export function matchesDefault(path: string): boolean {
  const dot = path.lastIndexOf('.')
  if (dot === -1 || path.length - dot > 5 || !DEFAULT_EXTENSIONS.has(path.slice(dot + 1))) return false
  for (let i = 0; i < path.length; i++) {
    const code = path.charCodeAt(i)
    if (code === 0x0a || code === 0x0d || code === 0x2028 || code === 0x2029) return false
  }
  return true
}

/** The path of a request URL, without the query string. */
export function pathOf(url: string | undefined): string {
  if (!url) return '/'
  const query = url.indexOf('?')
  return query === -1 ? url : url.slice(0, query)
}

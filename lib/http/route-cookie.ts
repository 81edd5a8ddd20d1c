import { parse, serialize } from 'cookie'
import { InvalidOptionError } from '../base/errors.js'

/** How the route cookie is written; every field has a default (see `resolveRouteCookie`). */
export interface RouteCookieOptions {
  /**
   * Cookie name the load balancer routes on.
   * @default 'ROUTEID'
   */
  name?: string
  /**
   * `'plain'` writes `was1` (HAProxy, nginx, Traefik); `'dot'` writes `.was1` (Apache mod_proxy_balancer).
   * @default 'plain'
   */
  format?: 'plain' | 'dot'
  /** @default '/' */
  path?: string
  /** @default undefined (the current host) */
  domain?: string
  /** @default true */
  httpOnly?: boolean
  /** @default false */
  secure?: boolean
  /** @default 'lax' */
  sameSite?: 'lax' | 'strict' | 'none'
  /**
   * Lifetime in ms; undefined makes it a browser-session cookie. A lost route cookie only costs a
   * rebind: the balancer picks a node, which takes the session over.
   * @default undefined
   */
  maxAge?: number
}

export interface RouteCookie {
  readonly name: string
  /** The value naming `nodeId` in the configured format. */
  value(nodeId: string): string
  /** The route a request's cookie header names, if any. */
  read(cookieHeader: string | undefined): string | undefined
  /** A Set-Cookie header value routing to `nodeId`. */
  header(nodeId: string): string
  /**
   * The Set-Cookie value to add to the response of a request served by `nodeId`, or undefined when
   * none is needed: the client's route cookie already names this node, or the request has no session
   * worth routing (no data in it, and no session cookie sent).
   */
  headerFor(request: { cookieHeader: string | undefined; sessionCookieName: string; hasData: boolean }, nodeId: string): string | undefined
}

/** `header` added to the Set-Cookie values a response already has. */
export function appendSetCookie(existing: number | string | readonly string[] | undefined, header: string): string[] {
  if (existing === undefined) return [header]
  return typeof existing === 'object' ? [...existing, header] : [String(existing), header]
}

const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

export function resolveRouteCookie(options: RouteCookieOptions = {}): RouteCookie {
  const name = options.name ?? 'ROUTEID'
  if (typeof name !== 'string' || !COOKIE_NAME.test(name))
    throw new InvalidOptionError('routeCookie.name', "a cookie name (letters, digits and !#$%&'*+-.^_`|~)", name)
  const format = options.format ?? 'plain'
  if (format !== 'plain' && format !== 'dot') throw new InvalidOptionError('routeCookie.format', "'plain' or 'dot'", format)
  const sameSite = options.sameSite ?? 'lax'
  if (!['lax', 'strict', 'none'].includes(sameSite))
    throw new InvalidOptionError('routeCookie.sameSite', "'lax', 'strict' or 'none'", sameSite)
  if (options.maxAge !== undefined && (typeof options.maxAge !== 'number' || !(options.maxAge > 0))) {
    throw new InvalidOptionError('routeCookie.maxAge', 'a number of ms greater than 0, or undefined', options.maxAge)
  }
  const attributes = {
    path: options.path ?? '/',
    domain: options.domain,
    httpOnly: options.httpOnly ?? true,
    secure: options.secure ?? false,
    sameSite,
    maxAge: options.maxAge === undefined ? undefined : Math.floor(options.maxAge / 1000),
  } as const
  const value = (nodeId: string) => (format === 'dot' ? `.${nodeId}` : nodeId)
  const routeIn = (cookies: Record<string, string | undefined>) => {
    const raw = cookies[name]
    return format === 'dot' && raw?.startsWith('.') ? raw.slice(1) : raw
  }
  return {
    name,
    value,
    read: (cookieHeader) => routeIn(cookieHeader ? parse(cookieHeader) : {}),
    header: (nodeId) => serialize(name, value(nodeId), attributes),
    headerFor({ cookieHeader, sessionCookieName, hasData }, nodeId) {
      const cookies = cookieHeader ? parse(cookieHeader) : {}
      if (routeIn(cookies) === nodeId) return undefined
      if (!hasData && cookies[sessionCookieName] === undefined) return undefined
      return serialize(name, value(nodeId), attributes)
    },
  }
}

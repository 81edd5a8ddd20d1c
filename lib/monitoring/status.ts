import { InvalidOptionError } from '../base/errors.js'
import type { Member, MemberState } from '../cluster/peer-link.js'
import { internalsOf } from '../peer-store/internals.js'
import type { PeerStore } from '../peer-store/peer-store.js'
import { PROTOCOL_VERSION } from '../protocol/frame.js'
import type { SyncProgress } from '../replication/replication.js'
import { renderStatusPage, STATUS_PAGE_CSP } from './status-html.js'

/**
 * What the status page shows, as its JSON: counts, members and transfers. Never a session's id or
 * contents: nothing here reads the session table beyond its counts.
 */
export interface ClusterStatus {
  /** When this was read (ISO 8601, this node's clock). */
  readonly at: string
  readonly node: NodeStatus
  readonly members: MemberStatus[]
  /** The last state transfer this node received, running or done; null before the first. */
  readonly transfer: TransferStatus | null
}

export interface NodeStatus {
  /** This node's id; null for a store that has none (a single node). */
  readonly nodeId: string | null
  /** The replication port bound; null without peers. */
  readonly port: number | null
  /** The replication protocol version this node speaks. */
  readonly protocol: number
  /** True while this node is still receiving its state from a peer. */
  readonly syncing: boolean
  readonly sessions: number
  readonly tombstones: number
  /** Seconds since this process started. */
  readonly uptimeSeconds: number
  /** Transport totals since start, as `stats()` reports them. */
  readonly framesIn: number
  readonly framesOut: number
  readonly bytesIn: number
  readonly bytesOut: number
  readonly protocolErrors: number
  readonly refusedHandshakes: number
  readonly queueOverflows: number
}

export interface MemberStatus {
  readonly nodeId: string | null
  readonly address: string
  readonly state: MemberState
  /** When it entered this state (ISO 8601). */
  readonly since: string
  /** The last replication lag measured on a batch from it, in seconds; null before the first. */
  readonly lagSeconds: number | null
  readonly queuedBytes: number
  readonly connections: number
  /** The protocol version agreed with it; null while unknown. */
  readonly protocol: number | null
}

export interface TransferStatus {
  /** The peer the sessions came from. */
  readonly peer: string
  readonly state: 'running' | 'done'
  /** Sessions received so far (all of them once done). */
  readonly sessions: number
  /** Bytes received so far; null when the transfer reported no progress. */
  readonly bytes: number | null
  /** What the peer's digest announced; null when the transfer reported no progress. */
  readonly expectedSessions: number | null
  readonly expectedBytes: number | null
  /** When it started (ISO 8601). */
  readonly startedAt: string
  /** How long it took; null while running. */
  readonly durationMs: number | null
}

/**
 * Options of `statusPage`, for every framework; `Request` is what the framework hands a handler
 * (Express's `req`, Koa's `ctx`, Fastify's `request`).
 */
export interface StatusPageOptions<Request> {
  /**
   * Decides who may see the page: return (or resolve) true to serve it, false to answer 403. Required:
   * the page is never public by accident. A throw (or rejection) goes to the framework's error handling.
   */
  authorize: (request: Request) => boolean | Promise<boolean>
  /**
   * Where the page is served, relative to where the middleware is mounted (Fastify: its prefix). The
   * same path serves the JSON to `?format=json` or to a request that accepts JSON and not HTML.
   * @default '/cluster'
   */
  path?: string
}

/** An HTTP answer, for an adapter to write out. */
export interface StatusReply {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

/** What an adapter knows of a request. */
export interface StatusRequest {
  readonly method: string
  /** The path and query, as the framework has it (relative to the mount point). */
  readonly url: string
  readonly accept: string | undefined
}

const COMMON_HEADERS = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', vary: 'Accept' }

/** Keeps what the store's events tell and its counters do not: lag per peer, the last transfer. */
class StatusTracker {
  readonly #store: PeerStore
  readonly #nodeId: string | null
  readonly #lag = new Map<string, number>()
  #transfer: { -readonly [K in keyof TransferStatus]: TransferStatus[K] } | undefined

  constructor(store: PeerStore) {
    const internals = internalsOf(store)
    this.#store = store
    this.#nodeId = internals.nodeId ?? null
    internals.observe((measurement) => {
      if (measurement.kind === 'lag') this.#lag.set(measurement.peer, Math.max(0, measurement.seconds))
    })
    store.on('sync:progress', (progress) => this.#progress(progress))
    store.on('sync', ({ peer, sessions, durationMs }) => {
      const transfer = this.#transfer?.peer === peer && this.#transfer.state === 'running' ? this.#transfer : undefined
      this.#transfer = {
        peer,
        state: 'done',
        sessions,
        bytes: transfer?.bytes ?? null,
        expectedSessions: transfer?.expectedSessions ?? null,
        expectedBytes: transfer?.expectedBytes ?? null,
        startedAt: transfer?.startedAt ?? new Date(Date.now() - durationMs).toISOString(),
        durationMs,
      }
    })
  }

  #progress(progress: SyncProgress): void {
    const running = this.#transfer?.peer === progress.peer && this.#transfer.state === 'running' ? this.#transfer : undefined
    this.#transfer = {
      peer: progress.peer,
      state: 'running',
      sessions: progress.sessions,
      bytes: progress.bytes,
      expectedSessions: progress.expectedSessions,
      expectedBytes: progress.expectedBytes,
      startedAt: running?.startedAt ?? new Date().toISOString(),
      durationMs: null,
    }
  }

  status(): ClusterStatus {
    const stats = this.#store.stats()
    return {
      at: new Date().toISOString(),
      node: {
        nodeId: this.#nodeId,
        port: this.#store.port ?? null,
        protocol: PROTOCOL_VERSION,
        syncing: stats.syncing,
        sessions: stats.sessions,
        tombstones: stats.tombstones,
        uptimeSeconds: Math.round(process.uptime()),
        framesIn: stats.framesIn,
        framesOut: stats.framesOut,
        bytesIn: stats.bytesIn,
        bytesOut: stats.bytesOut,
        protocolErrors: stats.protocolErrors,
        refusedHandshakes: stats.refusedHandshakes,
        queueOverflows: stats.queueOverflows,
      },
      members: this.#store.members().map((member) => this.#member(member)),
      transfer: this.#transfer ? { ...this.#transfer } : null,
    }
  }

  #member(member: Member): MemberStatus {
    const name = member.nodeId ?? member.address
    return {
      nodeId: member.nodeId,
      address: member.address,
      state: member.state,
      since: member.since.toISOString(),
      lagSeconds: this.#lag.get(name) ?? null,
      queuedBytes: member.queuedBytes,
      connections: member.connections,
      protocol: member.protocol,
    }
  }
}

/** One tracker per store, however many pages are mounted on it: its listeners are added once. */
const trackers = new WeakMap<PeerStore, StatusTracker>()

/**
 * The one function behind the three adapters: checks the options at once, starts tracking the
 * store's transfers and lag, and answers requests. `matches` says whether a URL is the page's.
 */
export function statusResponder<Request>(
  store: PeerStore,
  options: StatusPageOptions<Request>,
): {
  matches(url: string): boolean
  respond(request: Request, http: StatusRequest): Promise<StatusReply>
} {
  internalsOf(store)
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('options', 'an object with `authorize`', options)
  const { authorize } = options
  if (typeof authorize !== 'function')
    throw new InvalidOptionError(
      'authorize',
      'a function (request) => boolean deciding who sees the status page, such as one that checks an admin session ' +
        'or the client address; `() => true` makes it public',
      authorize,
    )
  const path = options.path ?? '/cluster'
  if (typeof path !== 'string' || !path.startsWith('/')) throw new InvalidOptionError('path', "a path starting with '/'", path)
  let tracker = trackers.get(store)
  if (!tracker) trackers.set(store, (tracker = new StatusTracker(store)))
  const view = tracker
  return {
    matches: (url) => {
      const pathname = url.split('?', 1)[0]!
      return pathname === path || pathname === `${path.replace(/\/$/, '')}/`
    },
    async respond(request, http) {
      if (http.method !== 'GET' && http.method !== 'HEAD')
        return { status: 405, headers: { ...COMMON_HEADERS, allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }, body: '' }
      if ((await authorize(request)) !== true)
        return {
          status: 403,
          headers: { ...COMMON_HEADERS, 'content-type': 'text/plain; charset=utf-8' },
          body: 'Forbidden: the status page is not open to this request.\n',
        }
      const status = view.status()
      if (wantsJson(http))
        return {
          status: 200,
          headers: { ...COMMON_HEADERS, 'content-type': 'application/json; charset=utf-8' },
          body: JSON.stringify(status),
        }
      return {
        status: 200,
        headers: {
          ...COMMON_HEADERS,
          'content-type': 'text/html; charset=utf-8',
          'content-security-policy': STATUS_PAGE_CSP,
          'x-frame-options': 'DENY',
          'referrer-policy': 'no-referrer',
        },
        body: renderStatusPage(status),
      }
    },
  }
}

/** JSON for `?format=json`, or for a client that accepts JSON and not HTML (curl -H 'accept: application/json'). */
function wantsJson({ url, accept = '' }: StatusRequest): boolean {
  const query = url.includes('?') ? new URLSearchParams(url.slice(url.indexOf('?') + 1)) : undefined
  const format = query?.get('format')
  if (format) return format === 'json'
  return /\bapplication\/json\b/.test(accept) && !/\btext\/html\b/.test(accept)
}

import { Resolver } from 'node:dns/promises'
import { isIP } from 'node:net'
import { debugFor } from '../base/debug.js'
import { DiscoveryError, InvalidOptionError } from '../base/errors.js'
import { checkKnownNames, integer } from '../base/option-spec.js'
import { canonicalHost, parsePeer, type PeerAddress, type PeerSpec } from './address.js'

const debug = debugFor('membership')

/** A function listing the peers now; called at start and every `interval`. */
export type PeerFunction = () => readonly PeerSpec[] | Promise<readonly PeerSpec[]>

/** Peers listed by a function of yours, asked at start and every `interval` ms. */
export interface PeerFunctionSource {
  resolve: PeerFunction
  /**
   * Milliseconds between two calls; also a call's deadline (at least 1 s, at most 10 s): a promise not
   * settled by then fails the round.
   * @default 30000
   */
  interval?: number
}

/**
 * Peers found in DNS, resolved at start and every `interval` ms: the A and AAAA records of `dns`
 * (each address at `port`), or with `srv: true` its SRV records (each target's addresses at the
 * record's port). Node ids are learnt in the handshake.
 *
 * @example
 * ```ts
 * const store = new PeerStore({ dns: 'app-peers.internal', port: 4055 }, { nodeId, listen: '0.0.0.0:4055', secret })
 * ```
 */
export interface DnsPeers {
  /** The name to resolve, such as a Kubernetes headless service (`app-peers.default.svc.cluster.local`). */
  dns: string
  /**
   * The peers' port, for A and AAAA records (SRV records carry their own).
   * @default this node's listen port
   */
  port?: number
  /**
   * Resolve SRV records (`_cp._tcp.example`) instead of A and AAAA: each names a target host and a port.
   * @default false
   */
  srv?: boolean
  /**
   * Milliseconds between two resolutions; also a resolution's deadline (at least 1 s, at most 10 s).
   * @default 30000
   */
  interval?: number
  /** DNS servers to ask instead of the system's, as `dns.setServers` takes them (`'10.0.0.53'`, `'10.0.0.53:5353'`). */
  servers?: readonly string[]
}

/**
 * The `peers` argument: a fixed list, or a source asked again and again, so that nodes can come and
 * go without a restart: a function (`() => specs`, or `{ resolve, interval }`) or a DNS name.
 *
 * @example
 * ```ts
 * new PeerStore(['was2@10.0.0.2:4055'], options) // fixed
 * new PeerStore(async () => registry.peers(), options) // asked every 30 s
 * new PeerStore({ resolve: () => readPeersFile(), interval: 5000 }, options)
 * new PeerStore({ dns: '_cp._tcp.app.example', srv: true }, options)
 * ```
 */
export type PeerSource = readonly PeerSpec[] | PeerFunction | PeerFunctionSource | DnsPeers

/** A checked source that is not a fixed list. */
export type DiscoveryConfig =
  | { readonly kind: 'function'; readonly resolve: PeerFunction; readonly interval: number }
  | {
      readonly kind: 'dns'
      readonly name: string
      readonly srv: boolean
      /** Undefined with `srv`. */
      readonly port: number | undefined
      readonly interval: number
      readonly servers: readonly string[] | undefined
    }

const DEFAULT_INTERVAL = 30_000
/** The most peers one round may list (after removing duplicates); a longer answer fails the round. */
const MAX_DISCOVERED_PEERS = 256
/** How many SRV targets are resolved at once. */
const SRV_CONCURRENCY = 8
/** The deadline of a round: its interval, but at least 1 s and at most 10 s. */
function roundDeadline(intervalMs: number): number {
  return Math.min(Math.max(intervalMs, 1000), 10_000)
}
const interval = integer(10, 86_400_000)
const DNS_FIELDS = ['dns', 'port', 'srv', 'interval', 'servers']

/** True for what may stand in the `peers` place of the constructor (rather than the options). */
export function isPeerSource(value: unknown): value is PeerSource {
  if (Array.isArray(value) || typeof value === 'function') return true
  return typeof value === 'object' && value !== null && ('dns' in value || 'resolve' in value)
}

/**
 * Checks a `peers` source that is not a list; `listenPort` is the default port of DNS peers.
 * Throws `InvalidOptionError`.
 */
export function parseDiscovery(value: unknown, listenPort: number): DiscoveryConfig {
  if (typeof value === 'function') return { kind: 'function', resolve: value as PeerFunction, interval: DEFAULT_INTERVAL }
  const expected = 'an array of peers, a function returning one, { resolve, interval } or { dns, port, srv, interval, servers }'
  if (typeof value !== 'object' || value === null) throw new InvalidOptionError('peers', expected, value)
  if ('resolve' in value) {
    checkKnownNames(value, ['resolve', 'interval'], 'peers')
    const spec = value as Record<string, unknown>
    if (typeof spec.resolve !== 'function') throw new InvalidOptionError('peers.resolve', 'a function returning peers', spec.resolve)
    return {
      kind: 'function',
      resolve: spec.resolve as PeerFunction,
      interval: spec.interval === undefined ? DEFAULT_INTERVAL : interval(spec.interval, 'peers.interval'),
    }
  }
  if (!('dns' in value)) throw new InvalidOptionError('peers', expected, value)
  checkKnownNames(value, DNS_FIELDS, 'peers')
  const spec = value as Record<string, unknown>
  const { dns: name, srv = false, servers } = spec
  if (typeof name !== 'string' || name.length === 0 || name.length > 253 || /\s/.test(name) || isIP(name) !== 0)
    throw new InvalidOptionError('peers.dns', 'a DNS name (such as app-peers.internal)', name)
  if (typeof srv !== 'boolean') throw new InvalidOptionError('peers.srv', 'a boolean', srv)
  let port: number | undefined
  if (!srv) {
    port = spec.port === undefined ? listenPort : integer(1, 65535)(spec.port, 'peers.port')
    if (port === 0) throw new InvalidOptionError('peers.port', "the peers' port: required when this node listens on port 0", spec.port)
  } else if (spec.port !== undefined) {
    throw new InvalidOptionError('peers.port', 'no port with `srv: true`: SRV records give the port', spec.port)
  }
  if (servers !== undefined) {
    if (!Array.isArray(servers) || servers.length === 0 || !servers.every((server) => typeof server === 'string'))
      throw new InvalidOptionError('peers.servers', "a non-empty list of DNS server addresses, such as ['10.0.0.53']", servers)
    try {
      new Resolver().setServers(servers)
    } catch (error) {
      throw new InvalidOptionError('peers.servers', `addresses dns.setServers accepts (${(error as Error).message})`, servers)
    }
  }
  return {
    kind: 'dns',
    name,
    srv,
    port,
    interval: spec.interval === undefined ? DEFAULT_INTERVAL : interval(spec.interval, 'peers.interval'),
    servers: servers as readonly string[] | undefined,
  }
}

export interface DiscoveryEvents {
  /**
   * What the source lists now (deduplicated, never empty: a round that finds no peer fails); the
   * caller adds what is new and removes what is gone.
   */
  found(peers: readonly PeerAddress[]): void
  /** The source could not be read: the caller keeps its peers. */
  failed(error: DiscoveryError): void
}

/** Asks a `peers` source at start and every `interval`, one round at a time, until `stop()`. */
export class PeerDiscovery {
  readonly #config: DiscoveryConfig
  readonly #events: DiscoveryEvents
  readonly #resolver: Resolver | undefined
  readonly #stopped: Promise<void>
  #stop!: () => void
  #timer: NodeJS.Timeout | undefined
  #running = true
  /** Milliseconds a round may take before it is given up and reported. */
  readonly #deadline: number

  constructor(config: DiscoveryConfig, events: DiscoveryEvents) {
    this.#config = config
    this.#events = events
    this.#deadline = roundDeadline(config.interval)
    if (config.kind === 'dns') {
      // Short tries: a round that fails keeps the peers and is tried again at the next interval.
      this.#resolver = new Resolver({ timeout: 2000, tries: 2 })
      if (config.servers) this.#resolver.setServers(config.servers)
    }
    this.#stopped = new Promise((resolve) => (this.#stop = resolve))
  }

  /** How errors name the source. */
  get source(): string {
    const config = this.#config
    return config.kind === 'function' ? 'the peers function' : `dns ${config.srv ? 'srv ' : ''}${config.name}`
  }

  /**
   * Runs the first round (resolves when it is over: found, failed or past its deadline; never
   * rejects), then one every interval.
   */
  async start(): Promise<void> {
    if (!this.#running) return
    await this.#round()
    this.#schedule()
  }

  /** No round after this; a round under way is abandoned (its DNS queries cancelled). */
  stop(): void {
    this.#running = false
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#resolver?.cancel()
    this.#stop()
  }

  #schedule(): void {
    if (!this.#running) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      void this.#round().then(() => this.#schedule())
    }, this.#config.interval)
    this.#timer.unref()
  }

  /**
   * One round, over within its deadline: a source that never answers is given up (its DNS queries
   * cancelled, a late answer ignored) and reported, and the next round comes at the next interval.
   * A round that finds no peer, or more than `MAX_DISCOVERED_PEERS`, fails too: the peers are kept.
   */
  async #round(): Promise<void> {
    let found: PeerAddress[]
    let deadline: NodeJS.Timeout | undefined
    const timedOut = new Promise<'timeout'>((resolve) => {
      deadline = setTimeout(() => resolve('timeout'), this.#deadline)
    })
    try {
      const listing = this.#list()
      listing.catch(() => undefined) // a round given up may still fail later: nobody waits for it then
      const listed = await Promise.race([listing, this.#stopped.then(() => undefined), timedOut])
      if (listed === undefined || !this.#running) return
      if (listed === 'timeout') {
        this.#resolver?.cancel()
        this.#fail(`no answer within ${this.#deadline} ms`)
        return
      }
      found = listed
    } catch (error) {
      if (!this.#running) return
      const cause = error as Error & { code?: string }
      const detail = cause.message.replace(/\.$/, '')
      this.#fail(cause.code && !(cause instanceof InvalidOptionError) ? `${cause.code}: ${detail}` : detail, cause)
      return
    } finally {
      clearTimeout(deadline)
    }
    const unique = new Map<string, PeerAddress>()
    for (const peer of found) unique.set(`${canonicalHost(peer.host)}|${peer.port}`, peer)
    debug('%s: %d peers', this.source, unique.size)
    // An empty answer is more likely a transient fault (a DNS update under way, a registry restarting)
    // than a cluster of one: removing every peer at once is not worth that risk.
    if (unique.size === 0) return this.#fail('no peers found')
    if (unique.size > MAX_DISCOVERED_PEERS) return this.#fail(`${unique.size} peers listed, more than ${MAX_DISCOVERED_PEERS}`)
    this.#events.found([...unique.values()])
  }

  #fail(message: string, cause?: Error): void {
    debug('%s: %s', this.source, message)
    this.#events.failed(new DiscoveryError(this.source, message, cause ? { cause } : undefined))
  }

  /** What the source lists, each peer checked as a configured one (`parsePeer`). */
  async #list(): Promise<PeerAddress[]> {
    const config = this.#config
    if (config.kind === 'function') {
      const specs: unknown = await config.resolve()
      if (!Array.isArray(specs)) throw new InvalidOptionError('peers()', "an array of 'host:port' or { host, port, nodeId }", specs)
      tooMany(specs.length, 'peers()')
      return specs.map((spec: unknown, index) => parsePeer(`peers()[${index}]`, spec))
    }
    const resolver = this.#resolver!
    if (!config.srv) {
      const hosts = await addressesOf(resolver, config.name)
      tooMany(hosts.length, `the A and AAAA records of ${config.name}`)
      return hosts.map((host, index) => parsePeer(`${this.source}[${index}]`, { host, port: config.port }))
    }
    const records = await resolver.resolveSrv(config.name)
    tooMany(records.length, `the SRV records of ${config.name}`)
    // Each record checked as a configured peer; a target of "." (given as '') says the service is
    // decidedly not available there (RFC 2782): skipped.
    const targets = records.flatMap(({ name, port }, index) =>
      name === '' || name === '.'
        ? []
        : [{ option: `${this.source}[${index}]`, ...parsePeer(`${this.source}[${index}]`, { host: name, port }) }],
    )
    const peers = await mapLimited(targets, SRV_CONCURRENCY, async ({ option, host: name, port }) =>
      (await addressesOf(resolver, name)).map((host) => parsePeer(option, { host, port })),
    )
    return peers.flat()
  }
}

/** A DNS answer or a function's list longer than a round takes fails the round before anything is parsed. */
function tooMany(count: number, what: string): void {
  if (count > MAX_DISCOVERED_PEERS) throw new Error(`${what}: ${count} entries, more than ${MAX_DISCOVERED_PEERS}`)
}

/** `map` over `items`, at most `limit` at a time, results in order; the first rejection rejects. */
async function mapLimited<T, R>(items: readonly T[], limit: number, map: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++
      results[index] = await map(items[index]!)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return results
}

/**
 * The A and AAAA addresses of `name`. A family without records is empty (ENODATA); any other
 * failure fails the whole round, so a half answer never removes peers.
 */
async function addressesOf(resolver: Resolver, name: string): Promise<string[]> {
  if (isIP(name) !== 0) return [name]
  const [v4, v6] = await Promise.all([resolver.resolve4(name).catch(noData), resolver.resolve6(name).catch(noData)])
  return [...v4, ...v6]
}

function noData(error: NodeJS.ErrnoException): string[] {
  if (error.code === 'ENODATA') return []
  throw error
}

import type { SessionData } from 'express-session'
import { InvalidOptionError } from '../base/errors.js'
import {
  boolean,
  checkKnownNames,
  func,
  integer,
  oneOf,
  optional,
  resolveTable,
  seconds,
  type OptionTable,
  type ResolvedTable,
} from '../base/option-spec.js'
import type { PeerSource } from '../cluster/discovery.js'
import { CLUSTER_OPTIONS, resolveCluster, type ClusterConfig, type ClusterOptions } from '../cluster/cluster-options.js'
import {
  REPLICATION_OPTIONS,
  resolveReplication,
  type ReplicationConfig,
  type ReplicationOptions,
} from '../replication/replication-options.js'
import { PERSIST_OPTIONS, type PersistConfig, type PersistOptions } from '../persistence/persist-options.js'
import { REDIS_OPTIONS, type RedisConfig, type RedisTierOptions } from '../replication/redis/redis-options.js'

/** Options of the sessions this node keeps, replicated or not. */
export interface SessionOptions {
  /**
   * Lifetime, in seconds, of a session whose cookie has no `expires` (no `maxAge`). A function of the
   * session is called on every write and always wins over the cookie, as in connect-redis: use it for
   * per-session lifetimes such as "remember me".
   * @default 86400 (one day)
   */
  ttl?: number | ((session: SessionData) => number)
  /**
   * Ignore `touch()`: an unchanged session's expiry only moves when the session is saved.
   * @default false
   */
  disableTouch?: boolean
  /**
   * Rewrite (and replicate) an unchanged session's expiry at most once per this many seconds (0: on
   * every request). Expiry then lags by up to this much, but a session never lapses because of it:
   * an expiry closer than `touchAfter` is always rewritten.
   * @default 0
   */
  touchAfter?: number
  /**
   * Largest encoded session, in bytes; a larger `set` fails with `SessionTooLargeError`.
   * @default 262144 (256 KiB)
   */
  maxSessionBytes?: number
  /**
   * Deepest nesting of objects and arrays in a session (the session itself is level 1).
   * @default 32
   */
  maxDepth?: number
  /**
   * Seconds a destroyed session's tombstone is kept at least (it is kept until the session would
   * have expired in any case). While it exists, writes to that id are ignored and no stale copy from
   * a peer can bring the session back.
   * @default 600
   */
  tombstoneTtl?: number
  /**
   * How many times one session may be taken over by another node (rebound to a new id after a
   * failover). Each takeover leaves a tombstone of the old id for the session's remaining lifetime,
   * so this bounds the tombstones one session can leave, whoever alternates its route cookie. Past
   * it, the session is still served on whichever node gets it, under the id it has.
   * @default 10
   */
  maxRebinds?: number
  /**
   * How often, in ms, expired sessions are reclaimed. Expired sessions are never returned even
   * before they are reclaimed.
   * @default 1000
   */
  reapInterval?: number
  /**
   * Whose session this is: a function of the session returning the user's id (a string or number),
   * or undefined for an anonymous session. Enables `sessionsOf`, `destroyAllOf`,
   * `maxSessionsPerPrincipal`, and protects these sessions from `maxSessions` eviction. Called on
   * every write.
   * @example (session) => session.userId
   */
  principal?: (session: SessionData) => string | number | null | undefined
  /**
   * Most sessions one principal may have. A new one beyond it (a login, a new device) is handled
   * as `principalLimitPolicy` says.
   */
  maxSessionsPerPrincipal?: number
  /**
   * With `maxSessionsPerPrincipal`: `'evict-oldest'` destroys the principal's oldest sessions to make
   * room; `'refuse'` fails the new session's `set` with `SessionLimitError`.
   * @default 'evict-oldest'
   */
  principalLimitPolicy?: 'evict-oldest' | 'refuse'
  /**
   * Most sessions this node holds. A new session beyond it evicts the least recently used anonymous
   * session (in the whole cluster: the eviction is a destroy); sessions with a principal are evicted
   * only to make room for another one, and a new anonymous session that finds only those is refused
   * with `SessionLimitError`. Counted in `stats().evicted` and `stats().refused`.
   */
  maxSessions?: number
  /**
   * Longest a session may live, in seconds from its creation, however active it is (OWASP's
   * absolute timeout). Sessions then expire as usual (`session:expired`).
   */
  absoluteTimeout?: number
}

/**
 * Options of `new PeerStore(peers, options)`. Session lifetimes are in seconds, like connect-redis's
 * `ttl` and connect-mongo's `touchAfter`; everything else is in milliseconds or bytes. Each group is
 * declared (with its defaults and checks) beside the part of the store it configures.
 */
export interface PeerStoreOptions extends SessionOptions, ClusterOptions, ReplicationOptions, PersistOptions, RedisTierOptions {}

/** Defaults and checks of every session option. */
const SESSION_OPTIONS = {
  ttl: {
    default: 86_400,
    parse: (value: unknown, name: string): TtlFunction | number =>
      typeof value === 'function' ? (value as TtlFunction) : seconds({ allowZero: false })(value, name),
  },
  disableTouch: { default: false, parse: boolean },
  touchAfter: { default: 0, parse: seconds({ allowZero: true }) },
  maxSessionBytes: { default: 256 * 1024, parse: integer(64, 64 * 1024 * 1024) },
  maxDepth: { default: 32, parse: integer(2, 512) },
  tombstoneTtl: { default: 600, parse: seconds({ allowZero: true }) },
  maxRebinds: { default: 10, parse: integer(0, 1000) },
  reapInterval: { default: 1000, parse: integer(10, 3_600_000) },
  principal: { parse: optional(func<PrincipalFunction>('a function of the session returning a user id, such as (s) => s.userId')) },
  maxSessionsPerPrincipal: { parse: optional(integer(1, 1_000_000)) },
  principalLimitPolicy: { default: 'evict-oldest', parse: oneOf('evict-oldest', 'refuse') },
  maxSessions: { parse: optional(integer(1, 100_000_000)) },
  absoluteTimeout: { parse: optional(seconds({ allowZero: false })) },
} as const satisfies OptionTable<SessionOptions>

type TtlFunction = (session: SessionData) => number
type PrincipalFunction = NonNullable<SessionOptions['principal']>

/** Every option name, for the check that refuses unknown ones. */
const KNOWN_OPTIONS = [SESSION_OPTIONS, CLUSTER_OPTIONS, REPLICATION_OPTIONS, PERSIST_OPTIONS, REDIS_OPTIONS].flatMap((table) =>
  Object.keys(table),
)

/** Node id of a store without peers: versions still need an origin. */
const LOCAL_NODE_ID = 'local'

/** Options after defaults and validation; durations in milliseconds. */
export interface ResolvedOptions extends Omit<ResolvedTable<typeof SESSION_OPTIONS>, 'ttl'> {
  /** Lifetime of a session whose cookie has no expiry, in ms (the default's, with a `ttl` function). */
  readonly ttl: number
  readonly ttlFunction: TtlFunction | undefined
  /** A container cannot hold more items than there are bytes, so the size limit bounds it too. */
  readonly maxContainerLength: number
  readonly nodeId: string
  /** The node id was given: session ids carry it as their route (a plain store's do not). */
  readonly routed: boolean
  readonly clusterName: string
  /** The cluster secrets (the first used to seal and connect); empty without one. */
  readonly secrets: readonly string[]
  readonly replication: ReplicationConfig
  /** Present when the store replicates. */
  readonly cluster: ClusterConfig | undefined
  /** Present when the store keeps snapshots. */
  readonly persist: PersistConfig | undefined
  /** Present when the store has a Redis tier. */
  readonly redis: RedisConfig | undefined
  /** How long a write waits for a confirmation in `ack`/`sync` mode (peers and Redis alike). */
  readonly ackTimeout: number
}

/**
 * Validates every option, whatever the mode (an option a single node does not use is still checked),
 * before anything (timer, socket) exists; throws `InvalidOptionError`.
 */
export function resolveOptions(peers: PeerSource, options: PeerStoreOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidOptionError('options', 'an object', options)
  }
  checkKnownNames(options, KNOWN_OPTIONS)
  const values = options as Readonly<Record<string, unknown>>
  const session = resolveTable(SESSION_OPTIONS, values)
  if (session.maxSessionsPerPrincipal !== undefined && session.principal === undefined) {
    throw new InvalidOptionError('principal', 'a function such as (s) => s.userId when `maxSessionsPerPrincipal` is set', undefined)
  }
  const ttlFunction = typeof session.ttl === 'function' ? session.ttl : undefined
  const replication = resolveReplication(values)
  const clusterValues = resolveTable(CLUSTER_OPTIONS, values)
  const cluster = resolveCluster(peers, clusterValues, session.maxSessionBytes)
  const redis = resolveRedis(values)
  if (redis && clusterValues.nodeId === undefined) {
    throw new InvalidOptionError(
      'nodeId',
      'a node id (such as "was1") when the store has a Redis tier; it must be unique among the nodes on that Redis',
      undefined,
    )
  }
  return {
    ...session,
    ttl: ttlFunction ? SESSION_OPTIONS.ttl.default * 1000 : (session.ttl as number),
    ttlFunction,
    maxContainerLength: session.maxSessionBytes,
    nodeId: cluster?.nodeId ?? clusterValues.nodeId ?? LOCAL_NODE_ID,
    routed: clusterValues.nodeId !== undefined,
    clusterName: clusterValues.clusterName,
    secrets: clusterValues.secret,
    replication,
    cluster,
    persist: resolveTable(PERSIST_OPTIONS, values).persist,
    redis,
    ackTimeout: clusterValues.ackTimeout,
  }
}

function resolveRedis(values: Readonly<Record<string, unknown>>): RedisConfig | undefined {
  const { redis, redisPrefix, redisMaxPending } = resolveTable(REDIS_OPTIONS, values)
  return redis && { connection: redis, prefix: redisPrefix, maxPending: redisMaxPending }
}

import { InvalidOptionError } from '../../base/errors.js'
import { integer, text, type OptionTable } from '../../base/option-spec.js'

/**
 * What the Redis tier needs of a client: the subset of ioredis's `Redis` and `Cluster` it uses, so
 * connect-peer's types do not depend on ioredis being installed.
 */
export interface RedisClient {
  /** ioredis's connection state (`'ready'` when commands go through). */
  readonly status?: string
  defineCommand(name: string, definition: { numberOfKeys: number; lua: string }): void
  hgetallBuffer(key: string): Promise<Record<string, Buffer>>
  get(key: string): Promise<string | null>
  publish(channel: string, message: Buffer): Promise<unknown>
  subscribe(...channels: string[]): Promise<unknown>
  scan(cursor: string, matchToken: 'MATCH', pattern: string, countToken: 'COUNT', count: number): Promise<[string, string[]]>
  /** ioredis's `Cluster`: its master nodes, each scanned on its own. */
  nodes?(role: 'master'): RedisClient[]
  duplicate(): RedisClient
  on(event: string, listener: (...args: unknown[]) => void): unknown
  removeListener?(event: string, listener: (...args: unknown[]) => void): unknown
  quit(): Promise<unknown>
  disconnect(): void
}

/** Options of the Redis tier. */
export interface RedisTierOptions {
  /**
   * A Redis tier behind the peers (or instead of them): every change is also written to Redis, a
   * miss reads Redis, and changes are announced to every node on the same Redis, so nodes that are
   * not in each other's peer list (autoscaled, containers) share sessions. An ioredis `Redis` or
   * `Cluster` client (yours: the store does not close it), or a `redis://` URL or ioredis options,
   * for which the store makes (and closes) its own client; ioredis must then be installed.
   * @default undefined (no Redis tier)
   */
  redis?: RedisClient | string | Record<string, unknown>
  /**
   * Prefix of every key and channel the tier uses. One session is one key, `<prefix>s:{<id>}` (a hash
   * tag, so Redis Cluster keeps a session in one slot).
   * @default 'connect-peer:'
   */
  redisPrefix?: string
  /**
   * Sessions whose latest change waits for Redis (while it is slow or down), at most; past it the
   * queue is dropped and, once Redis is back, every session this node holds is written back (by
   * version: a newer copy in Redis is never overwritten).
   * @default 100000
   */
  redisMaxPending?: number
}

/** The Redis tier's settings after validation. */
export interface RedisConfig {
  /** A client to use as it is, or what to make one from. */
  readonly connection: { readonly client: RedisClient } | { readonly create: string | Record<string, unknown> }
  readonly prefix: string
  readonly maxPending: number
}

export const REDIS_OPTIONS = {
  redis: { parse: parseRedis },
  redisPrefix: { default: 'connect-peer:', parse: text(0, 200) },
  redisMaxPending: { default: 100_000, parse: integer(1, 10_000_000) },
} as const satisfies OptionTable<RedisTierOptions>

function parseRedis(value: unknown, name: string): RedisConfig['connection'] | undefined {
  if (value === undefined) return undefined
  if (typeof value === 'string') {
    if (!/^rediss?:\/\//.test(value))
      throw new InvalidOptionError(name, "an ioredis client, ioredis options, or a URL such as 'redis://127.0.0.1:6379'", value, {
        sensitive: true,
      })
    return { create: value }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidOptionError(name, "an ioredis client, ioredis options, or a URL such as 'redis://127.0.0.1:6379'", value)
  }
  if (isClient(value)) return { client: value }
  return { create: value as Record<string, unknown> }
}

/** An ioredis client (or one that looks like one), as opposed to options for making one. */
function isClient(value: object): value is RedisClient {
  const candidate = value as Partial<Record<keyof RedisClient, unknown>>
  return (
    typeof candidate.defineCommand === 'function' && typeof candidate.duplicate === 'function' && typeof candidate.publish === 'function'
  )
}

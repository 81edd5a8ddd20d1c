import { decode, packr } from '../../codec/msgpack.js'
import { assertWellFormed, readMapFields } from '../../codec/msgpack-scan.js'
import { encodeKey, layoutOf, mapHeaderBytes } from '../../codec/session-layout.js'
import type { SessionLimits } from '../../codec/session-codec.js'
import { MAX_SESSION_ID_LENGTH } from '../../codec/session-codec.js'
import type { EntryState } from '../../table/session-table.js'
import { NODE_ID_PATTERN } from '../../table/node-id.js'
import { MAX_COUNTER, NO_VERSION, type Version } from '../../table/version.js'

/**
 * How the Redis tier lays sessions out in Redis, and the scripts that keep every write ordered by
 * version there as in memory. One session (or tombstone) is one hash, `<prefix>s:{<sid>}`:
 *
 *     v counter   o origin   k kind (l live, d destroyed, m moved)   e expires at (ms)
 *     c cookie expires (ms, or '')   t new id (moved)   r rebinds   p epoch ("counter:origin", see `clear`)
 *     n the session's field names, in order (msgpack array; live)   f:<name> that field's msgpack value
 *
 * A field per hash field, so that a change writes only the fields that changed (the per-field delta
 * the peers get), on the version Redis holds; when Redis holds another, the whole session is written.
 * and expires in Redis when it would in memory (a tombstone when it is forgotten). Everything read
 * back is checked like a frame from a peer: Redis is shared infrastructure, not part of the store.
 */
export const sessionKey = (prefix: string, sid: string): string => `${prefix}s:{${sid}}`
export const epochKey = (prefix: string): string => `${prefix}epoch`
export const changesChannel = (prefix: string): string => `${prefix}changes`

/** `a` newer than `b`, in Lua: the same order as `compareVersions` (a destroy beats everything). */
const NEWER = `
local function newer(c1, o1, k1, c2, o2, k2)
  local d1 = (k1 == 'd')
  local d2 = (k2 == 'd')
  if d1 ~= d2 then return d1 end
  if c1 ~= c2 then return c1 > c2 end
  return o1 > o2
end
local function epoch(text)
  if type(text) ~= 'string' then return 0, '' end
  local c, o = string.match(text, '^(%d+):(.*)$')
  return tonumber(c) or 0, o or ''
end
`

/**
 * Writes a whole entry unless Redis holds a newer version (or an entry of a newer epoch). Returns 1
 * when written, 0 when what Redis holds won, 2 when Redis holds this very version already (a
 * write-back after an outage repeats writes that went through).
 * KEYS: session key. ARGV: counter, origin, kind, expiresAt, cookieExpires, field names, movedTo,
 * rebinds, epoch counter, epoch origin, now, then a name and a value per field (live).
 */
export const WRITE_SCRIPT = `${NEWER}
local expiresAt = tonumber(ARGV[4])
if expiresAt <= tonumber(ARGV[11]) then return 0 end
local stored = redis.call('HMGET', KEYS[1], 'v', 'o', 'k', 'p')
if type(stored[1]) == 'string' then
  local sc, so = epoch(stored[4])
  local ec = tonumber(ARGV[9])
  if sc > ec or (sc == ec and so > ARGV[10]) then return 0 end
  if sc == ec and so == ARGV[10] and tonumber(stored[1]) == tonumber(ARGV[1]) and stored[2] == ARGV[2] and stored[3] == ARGV[3] then return 2 end
  if sc == ec and so == ARGV[10] and not newer(tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(stored[1]), stored[2], stored[3]) then return 0 end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'o', ARGV[2], 'k', ARGV[3], 'e', ARGV[4], 'c', ARGV[5], 'r', ARGV[8], 'p', ARGV[9] .. ':' .. ARGV[10])
if ARGV[3] == 'l' then
  redis.call('HSET', KEYS[1], 'n', ARGV[6])
  for i = 12, #ARGV, 2 do redis.call('HSET', KEYS[1], 'f:' .. ARGV[i], ARGV[i + 1]) end
end
if ARGV[3] == 'm' then redis.call('HSET', KEYS[1], 't', ARGV[7]) end
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return 1
`

/**
 * Writes the fields of a live session that changed since version `base`, if Redis holds exactly
 * `base` (of this epoch). Returns 1 when written, 0 when Redis holds something newer, 2 when it holds
 * this version already, 3 when it holds another (or nothing): the whole session must be written.
 * KEYS: session key. ARGV: base counter, base origin, counter, origin, expiresAt, cookieExpires,
 * rebinds, epoch counter, epoch origin, now, field names, how many fields are removed, their names,
 * then a name and a value per field set.
 */
export const DELTA_SCRIPT = `${NEWER}
local expiresAt = tonumber(ARGV[5])
if expiresAt <= tonumber(ARGV[10]) then return 0 end
local s = redis.call('HMGET', KEYS[1], 'v', 'o', 'k', 'p', 'n')
if type(s[1]) ~= 'string' then return 3 end
local sc, so = epoch(s[4])
local ec = tonumber(ARGV[8])
if s[3] == 'l' and type(s[5]) ~= 'string' then return 3 end
if sc > ec or (sc == ec and so > ARGV[9]) then return 0 end
if sc ~= ec or so ~= ARGV[9] then return 3 end
local counter = tonumber(s[1])
if s[3] == 'l' and counter == tonumber(ARGV[3]) and s[2] == ARGV[4] then return 2 end
if s[3] ~= 'l' or counter ~= tonumber(ARGV[1]) or s[2] ~= ARGV[2] then
  if newer(counter, s[2], s[3], tonumber(ARGV[3]), ARGV[4], 'l') then return 0 end
  return 3
end
local removed = tonumber(ARGV[12])
for i = 13, 12 + removed do redis.call('HDEL', KEYS[1], 'f:' .. ARGV[i]) end
for i = 13 + removed, #ARGV, 2 do redis.call('HSET', KEYS[1], 'f:' .. ARGV[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[1], 'v', ARGV[3], 'o', ARGV[4], 'e', ARGV[5], 'c', ARGV[6], 'r', ARGV[7], 'n', ARGV[11])
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
return 1
`

/**
 * Moves a live session's expiry later, for the version it was made for only (a touch).
 * KEYS: session key. ARGV: counter, origin, expiresAt, cookieExpires.
 */
export const EXPIRE_SCRIPT = `
local s = redis.call('HMGET', KEYS[1], 'v', 'o', 'k', 'e')
if type(s[1]) ~= 'string' or s[3] ~= 'l' or tonumber(s[1]) ~= tonumber(ARGV[1]) or s[2] ~= ARGV[2] then return 0 end
if tonumber(ARGV[3]) <= tonumber(s[4]) then return 0 end
redis.call('HSET', KEYS[1], 'e', ARGV[3], 'c', ARGV[4])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 1
`

/**
 * Raises the cluster's epoch (a clear) unless a newer one is there; returns the epoch that holds.
 * KEYS: epoch key. ARGV: counter, origin.
 */
export const EPOCH_SCRIPT = `${NEWER}
local sc, so = epoch(redis.call('GET', KEYS[1]))
local c = tonumber(ARGV[1])
if sc > c or (sc == c and so >= ARGV[2]) then return sc .. ':' .. so end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[2])
return ARGV[1] .. ':' .. ARGV[2]
`

/**
 * Deletes a session key a clear left behind: only if its epoch is older than the given one, so an
 * entry written after the clear (by any node) stays. Returns 1 when deleted.
 * KEYS: session key. ARGV: epoch counter, epoch origin.
 */
export const SWEEP_SCRIPT = `${NEWER}
local sc, so = epoch(redis.call('HGET', KEYS[1], 'p'))
local c = tonumber(ARGV[1])
if sc < c or (sc == c and so < ARGV[2]) then
  redis.call('UNLINK', KEYS[1])
  return 1
end
return 0
`

const KIND = { live: 'l', destroyed: 'd', moved: 'm' } as const

/** The arguments of `WRITE_SCRIPT` for an entry. */
export function writeArguments(state: EntryState, epoch: Version, now: number): Array<string | number | Buffer> {
  const kind = state.blob !== null ? KIND.live : state.movedTo !== null ? KIND.moved : KIND.destroyed
  const fields = state.blob !== null ? layoutOf(state.blob) : []
  const args: Array<string | number | Buffer> = [
    state.version.counter,
    state.version.origin,
    kind,
    state.expiresAt,
    state.cookieExpires ?? '',
    state.blob !== null ? fieldNames(fields.map((field) => field.key)) : '',
    state.movedTo ?? '',
    state.rebinds,
    epoch.counter,
    epoch.origin,
    now,
  ]
  for (const field of fields) args.push(field.key, state.blob!.subarray(field.valueStart, field.valueEnd))
  return args
}

/**
 * The arguments of `DELTA_SCRIPT`: the live entry `state`, of which the fields named in `changed`
 * differ from version `base` (a name no longer in the session is removed).
 */
export function deltaArguments(
  base: Version,
  state: EntryState & { readonly blob: Buffer },
  changed: ReadonlySet<string>,
  epoch: Version,
  now: number,
): Array<string | number | Buffer> {
  const fields = layoutOf(state.blob)
  const present = new Set(fields.map((field) => field.key))
  const removed = [...changed].filter((name) => !present.has(name))
  const args: Array<string | number | Buffer> = [
    base.counter,
    base.origin,
    state.version.counter,
    state.version.origin,
    state.expiresAt,
    state.cookieExpires ?? '',
    state.rebinds,
    epoch.counter,
    epoch.origin,
    now,
    fieldNames(fields.map((field) => field.key)),
    removed.length,
    ...removed,
  ]
  for (const field of fields) if (changed.has(field.key)) args.push(field.key, state.blob.subarray(field.valueStart, field.valueEnd))
  return args
}

function fieldNames(names: readonly string[]): Buffer {
  return Buffer.from(packr.pack(names))
}

export function formatEpoch(epoch: Version): string {
  return `${epoch.counter}:${epoch.origin}`
}

export function parseEpoch(text: string | null): Version | undefined {
  if (text === null) return NO_VERSION
  const match = /^(\d{1,15}):([A-Za-z0-9_-]{0,64})$/.exec(text)
  if (!match) return undefined
  const counter = Number(match[1])
  const origin = match[2] ?? ''
  if (counter === 0) return origin === '' ? NO_VERSION : undefined
  return counter <= MAX_COUNTER && NODE_ID_PATTERN.test(origin) ? { counter, origin } : undefined
}

/**
 * The entry a hash read back from Redis holds, checked; undefined when there is none, when it is
 * malformed, or when it belongs to an older epoch than `epoch` (a clear made it gone).
 */
export function readEntry(fields: Record<string, Buffer>, epoch: Version, limits: SessionLimits): EntryState | undefined {
  const text = (name: string) => fields[name]?.toString('latin1')
  const counter = Number(text('v'))
  const origin = text('o') ?? ''
  const kind = text('k')
  const expiresAt = Number(text('e'))
  const cookieText = text('c')
  const rebinds = Number(text('r') ?? '0')
  const entryEpoch = parseEpoch(text('p') ?? null)
  if (!Number.isSafeInteger(counter) || counter < 1 || counter > MAX_COUNTER || !NODE_ID_PATTERN.test(origin)) return undefined
  if (!Number.isSafeInteger(expiresAt) || !Number.isSafeInteger(rebinds) || rebinds < 0 || !entryEpoch) return undefined
  if (entryEpoch.counter < epoch.counter || (entryEpoch.counter === epoch.counter && entryEpoch.origin < epoch.origin)) return undefined
  const cookieExpires = cookieText === undefined || cookieText === '' ? null : Number(cookieText)
  if (cookieExpires !== null && !Number.isSafeInteger(cookieExpires)) return undefined
  const version = { counter, origin }
  if (kind === KIND.live) {
    const blob = assembleSession(fields, limits)
    return blob ? { version, blob, movedTo: null, expiresAt, cookieExpires, rebinds } : undefined
  }
  if (kind === KIND.moved) {
    const movedTo = fields.t?.toString('utf8')
    if (!movedTo || movedTo.length > MAX_SESSION_ID_LENGTH) return undefined
    return { version, blob: null, movedTo, expiresAt, cookieExpires: null, rebinds: 0 }
  }
  if (kind === KIND.destroyed) return { version, blob: null, movedTo: null, expiresAt, cookieExpires: null, rebinds: 0 }
  return undefined
}

/**
 * The session bytes a live hash holds: its fields, in the order `n` gives, as one msgpack map, then
 * checked like bytes from a peer. Undefined when anything is missing, malformed or too large.
 */
function assembleSession(fields: Record<string, Buffer>, limits: SessionLimits): Buffer | undefined {
  const order = fields.n
  if (!order || order.length > limits.maxSessionBytes) return undefined
  try {
    assertWellFormed(order, { maxDepth: 2, maxContainerLength: limits.maxContainerLength })
    const names = decode(order)
    if (!Array.isArray(names)) return undefined
    const parts: Buffer[] = [mapHeaderBytes(names.length)]
    let size = parts[0]!.length
    for (const name of names as unknown[]) {
      const value = typeof name === 'string' ? fields[`f:${name}`] : undefined
      if (value === undefined) return undefined
      const key = encodeKey(name as string)
      size += key.length + value.length
      if (size > limits.maxSessionBytes) return undefined
      parts.push(key, value)
    }
    const blob = Buffer.concat(parts, size)
    readMapFields(blob, limits)
    return blob
  } catch {
    return undefined
  }
}

// ---- announcements --------------------------------------------------------------------------------

/** What a node announces on the changes channel for each session it wrote. */
export interface Notice {
  readonly sid: string
  readonly version: Version
  /** What the session became: live (the new data is in Redis), destroyed, moved, or only a later expiry. */
  readonly kind: 'live' | 'destroyed' | 'moved' | 'expiry'
  readonly expiresAt: number
  readonly cookieExpires: number | null
  readonly movedTo: string | null
}

const NOTICE_KINDS = ['live', 'destroyed', 'moved', 'expiry'] as const

/** A batch of notices from one node, or a clear (a new epoch). */
export type Announcement =
  { readonly from: string; readonly notices: readonly Notice[] } | { readonly from: string; readonly epoch: Version }

export function encodeAnnouncement(announcement: Announcement): Buffer {
  if ('epoch' in announcement) return Buffer.from(packr.pack([announcement.from, 1, announcement.epoch.counter, announcement.epoch.origin]))
  const notices = announcement.notices.map((notice) => [
    notice.sid,
    notice.version.counter,
    notice.version.origin,
    NOTICE_KINDS.indexOf(notice.kind),
    notice.expiresAt,
    notice.cookieExpires,
    notice.movedTo,
  ])
  return Buffer.from(packr.pack([announcement.from, 0, notices]))
}

/** Most notices one announcement may carry. */
export const MAX_NOTICES = 10_000

/** Reads an announcement, checked; undefined when it is malformed (it is then ignored). */
export function decodeAnnouncement(bytes: Buffer): Announcement | undefined {
  try {
    assertWellFormed(bytes, { maxDepth: 4, maxContainerLength: MAX_NOTICES })
    const value = decode(bytes)
    if (!Array.isArray(value)) return undefined
    const [from, type, ...rest] = value as unknown[]
    if (typeof from !== 'string' || !NODE_ID_PATTERN.test(from)) return undefined
    if (type === 1) {
      const epoch = parseEpoch(`${String(rest[0])}:${String(rest[1])}`)
      return epoch && epoch.counter > 0 ? { from, epoch } : undefined
    }
    if (type !== 0 || !Array.isArray(rest[0])) return undefined
    const notices: Notice[] = []
    for (const item of rest[0] as unknown[]) {
      const notice = readNotice(item)
      if (!notice) return undefined
      notices.push(notice)
    }
    return { from, notices }
  } catch {
    return undefined
  }
}

function readNotice(item: unknown): Notice | undefined {
  if (!Array.isArray(item) || item.length !== 7) return undefined
  const [sid, counter, origin, kind, expiresAt, cookieExpires, movedTo] = item as unknown[]
  const validSid = (value: unknown): value is string =>
    typeof value === 'string' && value.length > 0 && value.length <= MAX_SESSION_ID_LENGTH
  if (!validSid(sid) || typeof counter !== 'number' || !Number.isSafeInteger(counter) || counter < 1 || counter > MAX_COUNTER)
    return undefined
  if (typeof origin !== 'string' || !NODE_ID_PATTERN.test(origin) || typeof kind !== 'number') return undefined
  const kindName = NOTICE_KINDS[kind]
  if (!kindName || typeof expiresAt !== 'number' || !Number.isSafeInteger(expiresAt)) return undefined
  if (cookieExpires !== null && (typeof cookieExpires !== 'number' || !Number.isSafeInteger(cookieExpires))) return undefined
  if (movedTo !== null && !validSid(movedTo)) return undefined
  if ((kindName === 'moved') !== (movedTo !== null)) return undefined
  return { sid, version: { counter, origin }, kind: kindName, expiresAt, cookieExpires, movedTo }
}

import { createSocket, type RemoteInfo, type Socket } from 'node:dgram'
import { once } from 'node:events'
import { isIPv4, isIPv6 } from 'node:net'

/** The records of one name; a name with none of the type asked answers "no data", an unknown name NXDOMAIN. */
export interface DnsRecords {
  a?: string[]
  aaaa?: string[]
  srv?: Array<{ target: string; port: number; priority?: number; weight?: number }>
}

const TYPE = { A: 1, AAAA: 28, SRV: 33 } as const

/**
 * A tiny authoritative DNS server over UDP for tests: it answers A, AAAA and SRV questions about the
 * names a test gives it, from a loopback address, so discovery is tested without any real DNS
 * server. Records can be changed while it runs; every question is counted.
 *
 * @example
 * ```ts
 * const dns = await DnsServer.start('127.0.9.50')
 * dns.set('app-peers.test', { a: ['127.0.9.21'] })
 * new PeerStore({ dns: 'app-peers.test', servers: [dns.address] }, options)
 * ```
 */
export class DnsServer {
  readonly #socket: Socket
  readonly #records = new Map<string, DnsRecords>()
  /** Names whose questions are counted and never answered. */
  readonly #silent = new Set<string>()
  /** Questions received, as `name/type`. */
  readonly questions: string[] = []
  readonly #waiters = new Set<{ count: number; resolve: () => void }>()

  private constructor(socket: Socket) {
    this.#socket = socket
    socket.on('message', (message, remote) => this.#answer(message, remote))
  }

  static async start(host: string): Promise<DnsServer> {
    const socket = createSocket('udp4')
    socket.bind(0, host)
    await once(socket, 'listening')
    return new DnsServer(socket)
  }

  /** `host:port`, as `dns.setServers` (and the `servers` field of a DNS `peers`) takes it. */
  get address(): string {
    const { address, port } = this.#socket.address()
    return `${address}:${port}`
  }

  /** Sets (replaces) the records of `name`. */
  set(name: string, records: DnsRecords): void {
    this.#records.set(name.toLowerCase(), records)
  }

  /** Forgets `name`: questions about it get NXDOMAIN. */
  delete(name: string): void {
    this.#records.delete(name.toLowerCase())
  }

  /** Never answers questions about `name` (they are still counted), as a server that hangs would not. */
  ignore(name: string): void {
    this.#silent.add(name.toLowerCase())
  }

  /** Resolves once `count` questions have been received in all. */
  questionsAtLeast(count: number): Promise<void> {
    if (this.questions.length >= count) return Promise.resolve()
    return new Promise((resolve) => this.#waiters.add({ count, resolve }))
  }

  async close(): Promise<void> {
    this.#socket.close()
    await once(this.#socket, 'close')
  }

  #answer(query: Buffer, remote: RemoteInfo): void {
    if (query.length < 12 || (query[2]! & 0x80) !== 0) return // too short, or a response
    let offset = 12
    const labels: string[] = []
    for (;;) {
      const length = query[offset]
      if (length === undefined || length > 63) return
      offset += 1
      if (length === 0) break
      labels.push(query.toString('latin1', offset, offset + length))
      offset += length
    }
    if (offset + 4 > query.length) return
    const type = query.readUInt16BE(offset)
    const question = query.subarray(12, offset + 4)
    const name = labels.join('.').toLowerCase()
    this.questions.push(`${name}/${type}`)
    for (const waiter of this.#waiters) {
      if (this.questions.length < waiter.count) continue
      this.#waiters.delete(waiter)
      waiter.resolve()
    }
    if (this.#silent.has(name)) return
    const records = this.#records.get(name)
    const answers = records ? answersFor(records, type) : []
    const header = Buffer.alloc(12)
    header.writeUInt16BE(query.readUInt16BE(0), 0) // the same id
    // QR, AA, RD as asked; RCODE 3 (NXDOMAIN) for an unknown name.
    header.writeUInt16BE(0x8400 | (query.readUInt16BE(2) & 0x0100) | (records ? 0 : 3), 2)
    header.writeUInt16BE(1, 4)
    header.writeUInt16BE(answers.length, 6)
    this.#socket.send(Buffer.concat([header, question, ...answers]), remote.port, remote.address)
  }
}

function answersFor(records: DnsRecords, type: number): Buffer[] {
  if (type === TYPE.A)
    return (records.a ?? []).filter((ip) => isIPv4(ip)).map((ip) => record(TYPE.A, Buffer.from(ip.split('.').map(Number))))
  if (type === TYPE.AAAA) return (records.aaaa ?? []).filter((ip) => isIPv6(ip)).map((ip) => record(TYPE.AAAA, ipv6Bytes(ip)))
  if (type === TYPE.SRV) {
    return (records.srv ?? []).map(({ target, port, priority = 0, weight = 0 }) => {
      const fixed = Buffer.alloc(6)
      fixed.writeUInt16BE(priority, 0)
      fixed.writeUInt16BE(weight, 2)
      fixed.writeUInt16BE(port, 4)
      return record(TYPE.SRV, Buffer.concat([fixed, encodeName(target)]))
    })
  }
  return []
}

/** One answer about the question's name (a pointer to offset 12), class IN, TTL 0. */
function record(type: number, data: Buffer): Buffer {
  const head = Buffer.alloc(12)
  head.writeUInt16BE(0xc00c, 0)
  head.writeUInt16BE(type, 2)
  head.writeUInt16BE(1, 4)
  head.writeUInt32BE(0, 6)
  head.writeUInt16BE(data.length, 10)
  return Buffer.concat([head, data])
}

function encodeName(name: string): Buffer {
  const parts = name.split('.').filter((label) => label.length > 0)
  return Buffer.concat([
    ...parts.map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label, 'latin1')])),
    Buffer.from([0]),
  ])
}

function ipv6Bytes(ip: string): Buffer {
  const [head = '', tail = ''] = ip.split('::')
  const left = head ? head.split(':') : []
  const right = ip.includes('::') ? (tail ? tail.split(':') : []) : []
  const groups = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right]
  const bytes = Buffer.alloc(16)
  groups.forEach((group, index) => bytes.writeUInt16BE(parseInt(group, 16), index * 2))
  return bytes
}

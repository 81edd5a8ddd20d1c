import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { killAll, NodeProcess, type NodeSpec } from '../../helpers/node-process.js'
import { session } from '../../helpers/sessions.js'

/**
 * Sessions outlive every process: real node processes write snapshots to real files, are stopped
 * (SIGTERM, which the fixture wires to close(), as an application does) or killed (SIGKILL), and
 * start again from them.
 */
const SECRET = 'snapshot test secret, long enough'
const A = { nodeId: 'was1', host: '127.0.5.1', port: 4601 }
const B = { nodeId: 'was2', host: '127.0.5.2', port: 4601 }

let root: string
beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'connect-peer-snapshots-'))
})
afterEach(async () => {
  await killAll()
  await rm(root, { recursive: true, force: true })
})

function spec(node: typeof A, peers: (typeof A)[], persist: object, options: object = {}): NodeSpec {
  return {
    ...node,
    peers,
    options: { secret: SECRET, persist: { dir: path.join(root, node.nodeId), interval: 60 }, ...persist, ...options },
  }
}

async function startPair(persist: object = {}) {
  const [was1, was2] = await Promise.all([NodeProcess.start(spec(A, [B], persist)), NodeProcess.start(spec(B, [A], persist))])
  await Promise.all([was1.waitForSync('was2'), was2.waitForSync('was1')])
  return [was1, was2] as const
}

/** Stops a node as a deployment does: SIGTERM, and the process exits once its store closed. */
async function stop(node: NodeProcess): Promise<void> {
  await node.kill('SIGTERM')
}

test('two nodes stopped with SIGTERM and started again: every session is back, with its data and expiry', async () => {
  let [was1, was2] = await startPair()
  const expiries = new Map<string, number>()
  for (let i = 0; i < 200; i++) {
    const data = session({ i, user: { name: `user-${i}` } }, 3_600_000 + i * 1000)
    expiries.set(`s${i}`, (data.cookie as { expires: Date }).expires.getTime())
    await (i % 2 === 0 ? was1 : was2).call('set', `s${i}`, data)
  }
  await was1.waitForReplicated('s199', 'upsert')
  await Promise.all([stop(was1), stop(was2)])
  ;[was1, was2] = await startPair()
  for (const node of [was1, was2]) {
    expect((await node.call<string[]>('ids')).length).toBe(200)
    for (const i of [0, 57, 199]) {
      const found = await node.call<{ i: number; user: { name: string }; cookie: { expires: Date } }>('get', `s${i}`)
      expect(found).toMatchObject({ i, user: { name: `user-${i}` } })
      expect(new Date(found.cookie.expires).getTime()).toBe(expiries.get(`s${i}`))
    }
  }
}, 60_000)

test('a session destroyed before the stop stays destroyed after the restart', async () => {
  let [was1, was2] = await startPair()
  for (let i = 0; i < 10; i++) await was1.call('set', `s${i}`, session({ i }))
  await was2.waitForReplicated('s9', 'upsert')
  await was2.call('destroy', 's3')
  await was1.waitForReplicated('s3', 'destroy')
  await Promise.all([stop(was1), stop(was2)])
  ;[was1, was2] = await startPair()
  for (const node of [was1, was2]) {
    expect(await node.call('get', 's3')).toBeNull()
    expect((await node.call<string[]>('ids')).length).toBe(9)
    expect(await node.call('stats')).toMatchObject({ tombstones: 1 })
  }
}, 60_000)

test("a snapshot older than a peer's copy never wins: changes and logouts made while the node was down hold", async () => {
  const [first, was2] = await startPair()
  await first.call('set', 'changed', session({ step: 1 }))
  await first.call('set', 'logged-out', session({ user: 'ada' }))
  await was2.waitForReplicated('logged-out', 'upsert')
  await stop(first)
  await was2.call('set', 'changed', session({ step: 2 }))
  await was2.call('destroy', 'logged-out')
  const was1 = await NodeProcess.start(spec(A, [B], {}))
  await was1.waitForSync('was2')
  for (const node of [was1, was2]) {
    expect(await node.call('get', 'changed')).toMatchObject({ step: 2 })
    expect(await node.call('get', 'logged-out')).toBeNull()
  }
}, 60_000)

test('both nodes killed with SIGKILL: at most what changed within one interval is lost', async () => {
  const fast = { persist: { interval: 0.2 } }
  const [was1, was2] = await Promise.all([
    NodeProcess.start(spec(A, [B], {}, { persist: { dir: path.join(root, 'was1'), ...fast.persist } })),
    NodeProcess.start(spec(B, [A], {}, { persist: { dir: path.join(root, 'was2'), ...fast.persist } })),
  ])
  await Promise.all([was1.waitForSync('was2'), was2.waitForSync('was1')])
  for (let i = 0; i < 100; i++) await was1.call('set', `s${i}`, session({ i }))
  await was2.waitForReplicated('s99', 'upsert')
  // Once each has written a snapshot after the last write, a crash of both loses nothing of it.
  const marks = [was1.mark, was2.mark]
  await Promise.all([
    was1.waitFor((event) => event.event === 'snapshot' && event.entries === 100, 5000, marks[0]),
    was2.waitFor((event) => event.event === 'snapshot' && event.entries === 100, 5000, marks[1]),
  ])
  await Promise.all([was1.kill('SIGKILL'), was2.kill('SIGKILL')])
  const [again1, again2] = await Promise.all([
    NodeProcess.start(spec(A, [B], {}, { persist: { dir: path.join(root, 'was1'), ...fast.persist } })),
    NodeProcess.start(spec(B, [A], {}, { persist: { dir: path.join(root, 'was2'), ...fast.persist } })),
  ])
  for (const node of [again1, again2]) expect((await node.call<string[]>('ids')).length).toBe(100)
}, 60_000)

describe('a bad snapshot never stops a node: it starts without it, says why, and keeps the file aside', () => {
  /** One node writes a snapshot of 50 sessions (SIGTERM), then the test spoils the file. */
  async function writtenSnapshot(options: object = {}): Promise<string> {
    const node = await NodeProcess.start({ ...A, peers: [], options: { secret: SECRET, persist: path.join(root, 'one'), ...options } })
    for (let i = 0; i < 50; i++) await node.call('set', `s${i}`, session({ i, pad: 'x'.repeat(200) }))
    await stop(node)
    return path.join(root, 'one', 'was1.snapshot')
  }

  async function startAfter(options: object = {}) {
    const node = await NodeProcess.start({ ...A, peers: [], options: { secret: SECRET, persist: path.join(root, 'one'), ...options } })
    const warning = await node.waitFor((event) => event.event === 'warning')
    return { node, warning, files: await readdir(path.join(root, 'one')) }
  }

  test('a corrupted snapshot', async () => {
    const file = await writtenSnapshot()
    const bytes = await readFile(file)
    const middle = Math.floor(bytes.length / 2)
    bytes[middle] = (bytes[middle] ?? 0) ^ 0xff
    await writeFile(file, bytes)
    const { node, warning, files } = await startAfter()
    expect(warning).toMatchObject({ reason: 'corrupt', file: expect.stringContaining('was1.snapshot.bad-') })
    expect(files.filter((name) => name.startsWith('was1.snapshot.bad-'))).toHaveLength(1)
    expect(await node.call('ids')).toEqual([])
    // It serves, and writes snapshots again.
    await node.call('set', 'after', session({ n: 1 }))
    expect(await node.call('get', 'after')).toMatchObject({ n: 1 })
  })

  test('a truncated snapshot', async () => {
    const file = await writtenSnapshot()
    const { size } = await stat(file)
    await truncate(file, size - 40)
    const { node, warning } = await startAfter()
    expect(warning).toMatchObject({ reason: 'truncated' })
    expect(await node.call('ids')).toEqual([])
  })

  test('a snapshot of another cluster is refused', async () => {
    await writtenSnapshot({ clusterName: 'shop' })
    const { node, warning } = await startAfter({ clusterName: 'billing' })
    expect(warning).toMatchObject({ reason: 'foreign', message: expect.stringContaining('cluster "shop"') })
    expect(await node.call('ids')).toEqual([])
  })

  test("another node's snapshot is refused", async () => {
    const file = await writtenSnapshot()
    await mkdir(path.join(root, 'other'))
    await copyFile(file, path.join(root, 'other', 'was9.snapshot'))
    const node = await NodeProcess.start({
      nodeId: 'was9',
      host: A.host,
      port: A.port,
      peers: [],
      options: { secret: SECRET, persist: path.join(root, 'other') },
    })
    expect(await node.waitFor((event) => event.event === 'warning')).toMatchObject({
      reason: 'foreign',
      message: expect.stringContaining('node "was1"'),
    })
    expect(await node.call('ids')).toEqual([])
  })

  test('a snapshot sealed with another secret', async () => {
    await writtenSnapshot()
    const { node, warning } = await startAfter({ secret: 'a different secret, also long' })
    expect(warning).toMatchObject({ reason: 'undecryptable' })
    expect(await node.call('ids')).toEqual([])
  })
})

import path from 'node:path'
import { ROOT } from '../../helpers/child.js'
import { Browser, EXAMPLE, startAppNode } from '../../helpers/demo-nodes.js'
import { WatchedProcess } from '../../helpers/process-lines.js'

/**
 * What `docker compose up` would run, with the real parts: HAProxy from Debian with the very
 * haproxy.cfg the compose file mounts, in front of two processes of the example app's entry point.
 */
const HTTP = 3201
const REPLICATION = 4201
const FRONT = 3200
let was1: WatchedProcess
let was2: WatchedProcess
let haproxy: WatchedProcess

function startHaproxy(): WatchedProcess {
  return new WatchedProcess('haproxy', ['-V', '-db', '-f', path.join(EXAMPLE, 'haproxy.cfg')], {
    cwd: ROOT,
    env: { ...process.env, LISTEN_ADDR: `127.0.0.1:${FRONT}`, NODE1_ADDR: `127.0.0.11:${HTTP}`, NODE2_ADDR: `127.0.0.12:${HTTP}` },
  })
}

beforeAll(async () => {
  was1 = startAppNode('was1', '127.0.0.11', HTTP, REPLICATION, `was2@127.0.0.12:${REPLICATION}`)
  was2 = startAppNode('was2', '127.0.0.12', HTTP, REPLICATION, `was1@127.0.0.11:${REPLICATION}`)
  await Promise.all([was1.waitFor(/\[was1\] peer was2 is up/), was2.waitFor(/\[was2\] peer was1 is up/)])
  await Promise.all([was1.waitFor(/\[was1\] web on/), was2.waitFor(/\[was2\] web on/)])
  haproxy = startHaproxy()
  await haproxy.waitFor(/Using epoll\(\) as the polling mechanism/)
}, 60_000)

afterAll(async () => {
  await Promise.all([haproxy, was1, was2].map((process) => process?.kill('SIGKILL')))
})

test('HAProxy keeps a client on the node named by its route cookie', async () => {
  const browser = new Browser(`http://127.0.0.1:${FRONT}`)
  const first = await browser.post('/count')
  const node = first.node as string
  expect(browser.cookies.get('ROUTEID')).toBe(node)
  for (let i = 2; i <= 6; i++) expect(await browser.post('/count')).toEqual({ node, count: i })
  // Another client, without the cookie, is balanced to the other node (round robin).
  const other = await new Browser(`http://127.0.0.1:${FRONT}`).post('/count')
  expect(other.node).not.toBe(node)
}, 30_000)

test('when the node dies, HAProxy fails over and the session and its counter survive on the other node', async () => {
  const browser = new Browser(`http://127.0.0.1:${FRONT}`)
  const first = await browser.post('/count')
  await browser.post('/count')
  const third = await browser.post('/count')
  expect(third.count).toBe(3)
  const served = first.node as 'was1' | 'was2'
  const survivor = served === 'was1' ? 'was2' : 'was1'
  const mark = haproxy.mark
  await (served === 'was1' ? was1 : was2).kill('SIGKILL')

  const afterFailover = await browser.post('/count')
  expect(afterFailover).toEqual({ node: survivor, count: 4 })
  expect(browser.cookies.get('ROUTEID')).toBe(survivor)
  const state = await browser.get('/api/state')
  expect(state).toMatchObject({ node: survivor, count: 4 })
  expect(state.sessionId).toMatch(new RegExp(`\\.${survivor}$`))
  // HAProxy's health check notices too, and stops sending anyone there.
  await haproxy.waitFor(new RegExp(`Server app/${served} is DOWN`), 10_000, mark)
  expect(await browser.post('/count')).toEqual({ node: survivor, count: 5 })

  // Restarted, the node receives every session from its peer, and HAProxy takes it back.
  const restarted = startAppNode(
    served,
    served === 'was1' ? '127.0.0.11' : '127.0.0.12',
    HTTP,
    REPLICATION,
    `${survivor}@127.0.0.${survivor === 'was1' ? 11 : 12}:${REPLICATION}`,
  )
  if (served === 'was1') was1 = restarted
  else was2 = restarted
  await restarted.waitFor(new RegExp(`\\[${served}\\] received [1-9]\\d* sessions from ${survivor}`))
  await haproxy.waitFor(new RegExp(`Server app/${served} is UP`), 15_000, mark)
  const returning = new Browser(`http://127.0.0.1:${FRONT}`)
  returning.cookies.set('ROUTEID', served)
  returning.cookies.set('connect.sid', browser.cookies.get('connect.sid')!)
  // The old route points at the restarted node, which has the session now and takes it back.
  expect(await returning.post('/count')).toEqual({ node: served, count: 6 })
}, 60_000)

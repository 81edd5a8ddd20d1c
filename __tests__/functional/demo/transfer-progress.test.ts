import type { SyncProgress } from '../../../lib/index.js'
import { percentOf, ProgressPrinter, renderProgress } from '../../../examples/express-app/transfer-progress.js'

/** How the demo's nodes print `sync:progress` (in process; the demo printing it for real is in demo.test.ts). */
const at = (sessions: number, expectedSessions = 20_000): SyncProgress => ({
  peer: 'was1',
  sessions,
  bytes: sessions * 200,
  expectedSessions,
  expectedBytes: expectedSessions * 200,
})

test('a line with a bar, the percentage, the sessions and the megabytes', () => {
  expect(renderProgress(at(0))).toBe('receiving from was1 [------------------------]   0% 0/20000 sessions, 0.0/4.0 MB')
  expect(renderProgress(at(8400))).toBe('receiving from was1 [##########--------------]  42% 8400/20000 sessions, 1.7/4.0 MB')
  expect(renderProgress(at(20_000))).toBe('receiving from was1 [########################] 100% 20000/20000 sessions, 4.0/4.0 MB')
  expect(renderProgress(at(1, 1))).toBe('receiving from was1 [########################] 100% 1/1 session, 0.0/0.0 MB')
})

test('the percentage never passes 100 and rounds down, so 100% means done', () => {
  expect(percentOf(at(19_999))).toBe(99)
  expect(percentOf(at(25_000))).toBe(100)
  expect(percentOf({ ...at(0, 0), bytes: 50, expectedBytes: 200 })).toBe(25)
})

test('on a terminal: one line per transfer, rewritten in place, ended when the transfer is', () => {
  const out: string[] = []
  const printer = new ProgressPrinter({ write: (text) => out.push(text), tty: true, prefix: '[was2] ' })
  for (const sessions of [0, 5000, 20_000]) printer.update(at(sessions))
  printer.done('was1')
  expect(out).toHaveLength(4)
  expect(out.slice(0, 3).every((text) => text.startsWith('\r[was2] receiving from was1 [') && !text.includes('\n'))).toBe(true)
  expect(out[2]).toContain('100%')
  expect(out[3]).toBe('\n')
})

test('in a log: a line at each tenth of the way, however many updates come', () => {
  const out: string[] = []
  const printer = new ProgressPrinter({ write: (text) => out.push(text), tty: false })
  for (let sessions = 0; sessions <= 20_000; sessions += 500) printer.update(at(sessions))
  printer.done('was1')
  expect(out.map((line) => /(\d+)%/.exec(line)![1])).toEqual(['0', '10', '20', '30', '40', '50', '60', '70', '80', '90', '100'])
  expect(out.every((line) => line.endsWith('\n') && !line.includes('\r'))).toBe(true)
  // A later transfer from the same peer starts over.
  printer.update(at(20_000))
  expect(out.at(-1)).toContain('100%')
  expect(out).toHaveLength(12)
})

test('the bar never moves back while the expected total grows (the digest still streaming in)', () => {
  const out: string[] = []
  const printer = new ProgressPrinter({ write: (text) => out.push(text), tty: true })
  printer.update(at(900, 1000))
  printer.update(at(1000, 5000))
  printer.update(at(5000, 5000))
  expect(out.map((text) => /(\d+)%/.exec(text)![1])).toEqual(['90', '90', '100'])
})

import { canonicalHost } from '../../../lib/cluster/address.js'
import { HandshakeSlots } from '../../../lib/cluster/handshake-slots.js'

test('one host gets at most perHost slots, and a released slot can be taken again', () => {
  const slots = new HandshakeSlots({ shared: 10, perHost: 2 }, new Set())
  const first = slots.take('10.0.0.9')
  expect(slots.take('10.0.0.9')).toBeDefined()
  expect(slots.take('10.0.0.9')).toBeUndefined()
  expect(slots.take('10.0.0.8')).toBeDefined()
  first!()
  first!() // releasing twice gives back one slot, not two
  expect(slots.take('10.0.0.9')).toBeDefined()
  expect(slots.take('10.0.0.9')).toBeUndefined()
  expect(slots.pending).toBe(3)
})

test("strangers share the shared slots; a configured peer's host has its own on top", () => {
  const peers = new Set(['10.0.0.2'])
  const slots = new HandshakeSlots({ shared: 3, perHost: 2 }, peers)
  for (const host of ['10.0.0.7', '10.0.0.8', '10.0.0.9']) expect(slots.take(host)).toBeDefined()
  expect(slots.take('10.0.0.6')).toBeUndefined()
  expect(slots.take('10.0.0.2')).toBeDefined()
  expect(slots.take('10.0.0.2')).toBeDefined()
  expect(slots.take('10.0.0.2')).toBeUndefined() // the per-host limit holds for peers too
  // A peer host learned later (a name that resolved) gets its slots from then on.
  peers.add('10.0.0.3')
  expect(slots.take('10.0.0.3')).toBeDefined()
})

test('canonicalHost: IPv4-mapped IPv6 as IPv4, IPv6 in its short form, names unchanged', () => {
  expect(canonicalHost('::ffff:10.0.0.2')).toBe('10.0.0.2')
  expect(canonicalHost('::FFFF:127.0.3.1')).toBe('127.0.3.1')
  expect(canonicalHost('2001:DB8:0:0:0:0:0:1')).toBe('2001:db8::1')
  expect(canonicalHost('10.0.0.2')).toBe('10.0.0.2')
  expect(canonicalHost('node2')).toBe('node2')
})

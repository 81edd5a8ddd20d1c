import type { PeerCertificate } from 'node:tls'
import { certifiedNodeIds, splitSubjectAltNames } from '../../../lib/security/tls-identity.js'

/** The fields of a peer certificate the identity check reads. */
function certificate(cn: string | string[] | undefined, subjectaltname: string | undefined): PeerCertificate {
  return { subject: cn === undefined ? {} : { CN: cn }, subjectaltname } as unknown as PeerCertificate
}

describe("splitSubjectAltNames reads Node's subjectaltname the way tls.checkServerIdentity does", () => {
  test.each([
    ['DNS:was1', [['DNS', 'was1']]],
    [
      'DNS:was1, DNS:was1.example, IP Address:10.0.0.1',
      [
        ['DNS', 'was1'],
        ['DNS', 'was1.example'],
        ['IP Address', '10.0.0.1'],
      ],
    ],
    ['DNS:was2:x', [['DNS', 'was2:x']]],
    [
      'URI:spiffe://cluster/was2, IP Address:::1',
      [
        ['URI', 'spiffe://cluster/was2'],
        ['IP Address', '::1'],
      ],
    ],
    [
      'DNS:"a\\u002c DNS:was2", DNS:b',
      [
        ['DNS', 'a, DNS:was2'],
        ['DNS', 'b'],
      ],
    ],
    ['DNS:"a, DNS:was2"', [['DNS', 'a, DNS:was2']]],
    [
      'DNS:"quote\\" and backslash\\\\", DNS:c',
      [
        ['DNS', 'quote" and backslash\\'],
        ['DNS', 'c'],
      ],
    ],
  ])('%s', (text, entries) => {
    expect(splitSubjectAltNames(text)).toEqual(entries.map(([type, value]) => ({ type, value })))
  })

  test.each(['DNS:"unterminated', 'DNS:"bad \\x escape"', 'DNS:a,DNS:b', 'no-type'])('malformed %p: undefined', (text) => {
    expect(splitSubjectAltNames(text)).toBeUndefined()
  })
})

describe("certifiedNodeIds with 'cn-or-dns'", () => {
  test('the CN (or each CN) and every DNS SAN', () => {
    expect(certifiedNodeIds(certificate('was1', 'DNS:was1, DNS:alias'), 'cn-or-dns')).toEqual(['was1', 'was1', 'alias'])
    expect(certifiedNodeIds(certificate(['a', 'b'], undefined), 'cn-or-dns')).toEqual(['a', 'b'])
  })

  test('an entry only looking like a DNS name is not one: DNS:was2:x, a quoted comma, a URI', () => {
    const names = certifiedNodeIds(certificate('was3', 'DNS:was2:x, DNS:"a\\u002c DNS:was2", URI:spiffe://cluster/was2'), 'cn-or-dns')
    expect(names).toEqual(['was3', 'was2:x', 'a, DNS:was2'])
    expect(names).not.toContain('was2')
  })

  test('an unreadable SAN list names nobody but the CN', () => {
    expect(certifiedNodeIds(certificate('was3', 'DNS:"was2'), 'cn-or-dns')).toEqual(['was3'])
  })
})

describe('certifiedNodeIds with { uriPrefix }', () => {
  const identity = { uriPrefix: 'spiffe://cluster/' }

  test('the rest of each URI SAN that starts with the prefix; CN and DNS do not count', () => {
    expect(certifiedNodeIds(certificate('was1', 'DNS:was1, URI:spiffe://cluster/was1, URI:spiffe://other/was9'), identity)).toEqual([
      'was1',
    ])
  })

  test('a longer path is not a node id', () => {
    expect(certifiedNodeIds(certificate('was2', 'URI:spiffe://cluster/was2/extra'), identity)).toEqual(['was2/extra'])
  })
})

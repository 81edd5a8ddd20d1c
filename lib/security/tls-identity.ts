import type { PeerCertificate } from 'node:tls'
import { printable } from '../base/untrusted.js'

/**
 * How a peer's certificate names its node id (the `tls.identity` option):
 * - `'cn-or-dns'`: the subject's common name or a DNS subject alternative name is the node id;
 * - `{ uriPrefix }`: a URI subject alternative name `<uriPrefix><nodeId>` must be present (SPIFFE
 *   style, such as `spiffe://cluster/was1`), and nothing else counts.
 */
export type TlsIdentity = 'cn-or-dns' | { readonly uriPrefix: string }

/** One subject alternative name: `type` as Node prints it (`DNS`, `URI`, `IP Address`, ...). */
export interface AltName {
  readonly type: string
  readonly value: string
}

/** A JSON string literal, as Node quotes a name holding `,`, `"`, `\`, `'` or control characters. */
// eslint-disable-next-line no-control-regex -- the JSON string grammar: raw control characters are what it refuses
const JSON_STRING = /^"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/

/**
 * Node's `subjectaltname` text (`DNS:a, URI:spiffe://c/a, DNS:"x\u002c y"`) as its entries, read
 * the way `tls.checkServerIdentity` reads it: entries are separated by `, `, a quoted part is a JSON
 * string, and only the first `:` of an entry ends its type (`DNS:was2:x` is the name `was2:x`).
 * Undefined when the text cannot be read that way: then the certificate names nobody.
 *
 * @example
 * ```ts
 * splitSubjectAltNames('DNS:was2:x, DNS:"a\\u002c DNS:was2"')
 * // [{ type: 'DNS', value: 'was2:x' }, { type: 'DNS', value: 'a, DNS:was2' }]
 * ```
 */
export function splitSubjectAltNames(text: string): AltName[] | undefined {
  const entries: string[] = []
  let current = ''
  let offset = 0
  while (offset < text.length) {
    const comma = text.indexOf(',', offset)
    const quote = text.indexOf('"', offset)
    if (quote !== -1 && (comma === -1 || quote < comma)) {
      current += text.slice(offset, quote)
      const literal = JSON_STRING.exec(text.slice(quote))?.[0]
      if (literal === undefined) return undefined
      current += JSON.parse(literal) as string
      offset = quote + literal.length
    } else if (comma !== -1) {
      if (text[comma + 1] !== ' ') return undefined
      entries.push(current + text.slice(offset, comma))
      current = ''
      offset = comma + 2
    } else {
      current += text.slice(offset)
      offset = text.length
    }
  }
  entries.push(current)
  const names: AltName[] = []
  for (const entry of entries) {
    const colon = entry.indexOf(':')
    if (colon <= 0) return undefined
    names.push({ type: entry.slice(0, colon), value: entry.slice(colon + 1) })
  }
  return names
}

/**
 * The node ids a peer's certificate vouches for under `identity`. The caller checks that the id
 * the peer claims is one of them; the certificate itself has already been verified against `ca`.
 *
 * @example
 * ```ts
 * certifiedNodeIds(socket.getPeerCertificate(), { uriPrefix: 'spiffe://cluster/' }) // ['was2']
 * ```
 */
export function certifiedNodeIds(certificate: PeerCertificate, identity: TlsIdentity): string[] {
  const altNames = certificate.subjectaltname ? (splitSubjectAltNames(certificate.subjectaltname) ?? []) : []
  if (identity === 'cn-or-dns') {
    const cn: unknown = certificate.subject?.CN
    const commonNames =
      typeof cn === 'string' ? [cn] : Array.isArray(cn) ? cn.filter((name): name is string => typeof name === 'string') : []
    return [...commonNames, ...altNames.filter((name) => name.type === 'DNS').map((name) => name.value)]
  }
  return altNames
    .filter((name) => name.type === 'URI' && name.value.startsWith(identity.uriPrefix))
    .map((name) => name.value.slice(identity.uriPrefix.length))
}

/** For an error message: what the certificate names under `identity`, on one short line. */
export function describeCertificate(certificate: PeerCertificate | undefined, identity: TlsIdentity): string {
  if (!certificate) return 'no certificate'
  const names =
    identity === 'cn-or-dns'
      ? certifiedNodeIds(certificate, identity)
      : (splitSubjectAltNames(certificate.subjectaltname ?? '') ?? []).filter((name) => name.type === 'URI').map((name) => name.value)
  const kind = identity === 'cn-or-dns' ? 'CN or DNS name' : 'URI'
  return names.length === 0 ? `no ${kind}` : `${kind}s ${printable(names.map((name) => JSON.stringify(name)).join(', '), 120)}`
}

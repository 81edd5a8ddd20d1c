/**
 * Session data the benchmarks store: about 1 KB once encoded (a user, a small cart, a token and
 * some text). `notesLength` pads it; each benchmark keeps the padding its results were measured with.
 */
export function kilobyteSession(i: number, notesLength: number): Record<string, unknown> {
  return {
    cookie: { originalMaxAge: 3_600_000, expires: new Date(Date.now() + 3_600_000), httpOnly: true, path: '/' },
    user: { id: i, name: `user-${i}`, email: `user-${i}@example.com`, roles: ['reader'] },
    cart: [{ sku: `SKU-${i % 1000}`, qty: 1 }],
    csrf: 'c'.repeat(43),
    notes: 'n'.repeat(notesLength),
  }
}

import { inspect } from 'node:util'
import { InvalidOptionError } from '../../../lib/base/errors.js'
import { resolveOptions } from '../../../lib/peer-store/options.js'

const BASE = { nodeId: 'was1', listen: '127.0.3.250:0' }
const SHORT = 'hunter2-prod-pw'
const NUMERIC = 8675309421
const PEM_KEY = '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgQwErTy\n-----END PRIVATE KEY-----\n'

/** Every run of 4 characters of the secret: no part of it may appear in what an error prints. */
function partsOf(secret: string): string[] {
  return Array.from({ length: Math.max(1, secret.length - 3) }, (_, index) => secret.slice(index, index + 4))
}

function refusal(options: Record<string, unknown>): InvalidOptionError {
  try {
    resolveOptions(['127.0.3.251:4000'], { ...BASE, ...options })
  } catch (error) {
    if (error instanceof InvalidOptionError) return error
    throw error
  }
  throw new Error('the options were accepted')
}

test.each([
  ['a secret that is too short', { secret: SHORT }, 'secret', SHORT],
  ['a short secret in a rotation list', { secret: ['a perfectly long cluster secret', SHORT] }, 'secret[1]', SHORT],
  ['a three-character secret', { secret: 'Zx9' }, 'secret', 'Zx9'],
  ['a number as the secret', { secret: NUMERIC }, 'secret', String(NUMERIC)],
  ['a number in the secret list', { secret: [NUMERIC] }, 'secret[0]', String(NUMERIC)],
  [
    'a number as the TLS passphrase',
    { tls: { ca: 'ca', cert: 'cert', key: 'key', passphrase: NUMERIC } },
    'tls.passphrase',
    String(NUMERIC),
  ],
  ['a private key in place of the TLS options', { tls: PEM_KEY }, 'tls', PEM_KEY.slice(28, 80)],
  ['a number as the TLS key', { tls: { ca: 'ca', cert: 'cert', key: NUMERIC } }, 'tls.key', String(NUMERIC)],
])('%s is refused without printing any part of it', (_, options, option, secret) => {
  const error = refusal(options)
  expect(error.option).toBe(option)
  // Everything the error prints, but the stack frames (file paths of the test runner).
  const printed = [error.message, String(error.stack), inspect(error), JSON.stringify(error)]
    .join('\n')
    .split('\n')
    .filter((line) => !/^\s+at /.test(line))
    .join('\n')
  for (const part of partsOf(secret)) expect(printed).not.toContain(part)
})

test('the message still says what was received: the kind and length, not the value', () => {
  expect(refusal({ secret: SHORT }).message).toMatch(/expected a string of at least 16 characters.*received a string of 15 characters/)
  expect(refusal({ secret: NUMERIC }).message).toMatch(/received a number\./)
})

import createDebug from 'debug'

/**
 * Debug output per module, enabled with `DEBUG=connect-peer:*`. Session contents are never logged,
 * only ids, sizes and versions.
 */
export function debugFor(
  module: 'store' | 'replication' | 'transport' | 'membership' | 'persistence' | 'redis' | 'http',
): createDebug.Debugger {
  return createDebug(`connect-peer:${module}`)
}

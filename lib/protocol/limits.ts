/** Most items one message may carry (digest entries, fetched ids, expiry changes), whatever `syncChunkSize` a peer uses. */
export const MAX_BATCH = 10_000

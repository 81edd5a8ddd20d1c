/**
 * Waits until `check` returns true, asking again every `everyMs`, for a state that no single event
 * announces (copies counted across nodes, say); after `timeoutMs` rejects with what `explain` says
 * of the last state seen, so a failure shows how far it got.
 */
export async function settles(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  explain: () => string,
  everyMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return
    if (Date.now() > deadline) throw new Error(`not settled within ${timeoutMs} ms: ${explain()}`)
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}

import type { Member } from 'connect-peer'

export interface PageState {
  node: string
  count: number
  note: string | null
  /** Null while no session is stored (nothing written yet). */
  sessionId: string | null
  /** The id before a takeover, if this session was taken over. */
  previousSessionId: string | null
  routeCookie: string | null
  members: Member[]
}

const escape = (text: string) => text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`)

const STATE_COLOURS: Record<string, string> = { alive: 'ok', connecting: 'wait', suspect: 'warn', dead: 'bad' }

/** The node a session id routes to: its suffix after the last dot (`<random>.was2`). */
const routeOf = (sessionId: string) => sessionId.slice(sessionId.lastIndexOf('.') + 1)

/** The demo's one page: who served it, the session, and the cluster as this node sees it. */
export function page(state: PageState): string {
  const members = state.members
    .map(
      (member) =>
        `<tr><td>${escape(member.nodeId ?? '?')}</td><td>${escape(member.address)}</td><td><span class="state ${STATE_COLOURS[member.state]}">${member.state}</span></td></tr>`,
    )
    .join('')
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>connect-peer demo: ${escape(state.node)}</title>
  <link rel="icon" href="/favicon.ico">
  <link rel="stylesheet" href="/public/style.css">
  <script src="/public/app.js" defer></script>
</head>
<body>
  <header><img src="/public/logo.png" alt="" width="40" height="40"><h1>connect-peer demo</h1></header>
  <main>
    <section class="served">Served by <strong id="node">${escape(state.node)}</strong>${
      state.previousSessionId
        ? ` <span class="rebound" id="rebound">took this session over from ${escape(routeOf(state.previousSessionId))} (which was down)</span>`
        : ''
    }</section>
    <section>
      <h2>Your session</h2>
      <p class="count">Counter: <strong id="count">${state.count}</strong></p>
      <form method="post" action="/count"><button id="increment" type="submit">+1</button></form>
      <form method="post" action="/note" class="note">
        <label>Note: <input id="note-input" name="note" maxlength="200" value="${escape(state.note ?? '')}"></label>
        <button type="submit">Save</button>
      </form>
      <p>Saved note: <span id="note">${state.note === null ? '<em>none</em>' : escape(state.note)}</span></p>
      <dl>
        <dt>Session id</dt><dd>${
          state.sessionId === null
            ? '<em id="no-session">no session is stored yet: the first +1 or note creates one, and its id is chosen then (by whichever node serves that request)</em>'
            : `<code id="session-id">${escape(state.sessionId)}</code>`
        }</dd>${
          state.previousSessionId
            ? `<dt>Session id before the takeover</dt><dd><code id="previous-session-id">${escape(state.previousSessionId)}</code></dd>`
            : ''
        }
        <dt>Route cookie (as your browser sent it)</dt><dd><code id="route">${escape(state.routeCookie ?? '(none yet)')}</code></dd>
      </dl>
    </section>
    <section>
      <h2>Cluster, as ${escape(state.node)} sees it</h2>
      <table id="members"><thead><tr><th>peer</th><th>address</th><th>state</th></tr></thead><tbody>${members}</tbody></table>
      <p>More: <a href="/cluster">the status page</a> (lag, queues, transfers) and <a href="/metrics">the Prometheus metrics</a>.</p>
    </section>
    <section class="try">
      <h2>Try it</h2>
      <ol>
        <li>Press +1 a few times: the balancer keeps you on one node (the route cookie).</li>
        <li>Kill that node (press its number in the demo's terminal) and reload: the other node serves you, with the same counter.</li>
        <li>Restart it: it receives every session from its peer and is back in the table.</li>
      </ol>
    </section>
  </main>
</body>
</html>`
}

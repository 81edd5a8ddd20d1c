import type { Member, PrincipalSession } from 'connect-peer'
import { plural } from './plural.js'

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
  /** The name this session logged in with, if it did. */
  user: string | null
  /** Set right after "log out everywhere": how many sessions it ended. */
  loggedOut: number | null
}

export interface SessionsPageState {
  node: string
  /** Null when this browser is not logged in (or its session was ended elsewhere). */
  user: string | null
  /** The sessions of `user`, oldest first. */
  sessions: readonly PrincipalSession[]
  /** This request's session id: its row is marked "this device". */
  currentId: string
}

const escape = (text: string) => text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`)

const STATE_COLOURS: Record<string, string> = { alive: 'ok', connecting: 'wait', suspect: 'warn', dead: 'bad' }

/** The node a session id routes to: its suffix after the last dot (`<random>.was2`). */
const routeOf = (sessionId: string) => sessionId.slice(sessionId.lastIndexOf('.') + 1)

/**
 * How the sessions page shows another session's id: never whole (it is that device's credential),
 * only the last characters of its random part, enough to tell the rows apart.
 */
export const maskId = (sessionId: string) => {
  const dot = sessionId.lastIndexOf('.')
  return `…${(dot < 0 ? sessionId : sessionId.slice(0, dot)).slice(-6)}`
}

const time = (date: Date) => `<time datetime="${date.toISOString()}">${date.toISOString().slice(0, 19).replace('T', ' ')} UTC</time>`

/** The frame every page shares: head, header, and `main` around the sections. */
function layout(title: string, sections: string): string {
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${title}</title>
  <link rel="icon" href="/favicon.ico">
  <link rel="stylesheet" href="/public/style.css">
  <script src="/public/app.js" defer></script>
</head>
<body>
  <header><img src="/public/logo.png" alt="" width="40" height="40"><h1>connect-peer demo</h1></header>
  <main>
${sections}
  </main>
</body>
</html>`
}

/** Logged in: who, with links to the sessions page and a log out button; else the login form. */
function account(user: string | null): string {
  if (user === null) {
    return `<form method="post" action="/login" id="login-form" class="login">
        <label>Name: <input id="login-name" name="name" maxlength="64" required autocomplete="username"></label>
        <button type="submit" id="login">Log in</button>
      </form>
      <p class="hint">No password: any name will do. Log in with the same name in a second browser, then open your sessions.</p>`
  }
  return `<p>Logged in as <strong id="user">${escape(user)}</strong> · <a href="/sessions" id="sessions-link">your sessions</a></p>
      <form method="post" action="/logout"><button type="submit" id="logout">Log out</button></form>`
}

/** The demo's main page: who served it, the session, and the cluster as this node sees it. */
export function page(state: PageState): string {
  const members = state.members
    .map(
      (member) =>
        `<tr><td>${escape(member.nodeId ?? '?')}</td><td>${escape(member.address)}</td><td><span class="state ${STATE_COLOURS[member.state]}">${member.state}</span></td></tr>`,
    )
    .join('')
  return layout(
    `connect-peer demo: ${escape(state.node)}`,
    `    <section class="served">Served by <strong id="node">${escape(state.node)}</strong>${
      state.previousSessionId
        ? ` <span class="rebound" id="rebound">took this session over from ${escape(routeOf(state.previousSessionId))} (which was down)</span>`
        : ''
    }</section>${
      state.loggedOut === null
        ? ''
        : `
    <section class="notice" id="logged-out">Logged out everywhere: ${plural(state.loggedOut, 'session')} ended, on every node.</section>`
    }
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
    <section class="account">
      <h2>${state.user === null ? 'Log in' : 'You'}</h2>
      ${account(state.user)}
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
        <li>Log in with one name in two browsers, open your sessions, and log out everywhere: both are gone, on both nodes.</li>
      </ol>
    </section>`,
  )
}

/**
 * "Your sessions": every session of the logged-in name in the cluster, as the serving node's store
 * lists them, with the buttons that end them. Ids are masked (see `maskId`), this one included.
 */
export function sessionsPage(state: SessionsPageState): string {
  const title = `connect-peer demo: your sessions (${escape(state.node)})`
  const served = `    <section class="served">Served by <strong id="node">${escape(state.node)}</strong></section>`
  if (state.user === null) {
    return layout(
      title,
      `${served}
    <section class="account">
      <h2>Your sessions</h2>
      <p id="not-logged-in">You are not logged in: log in to see the sessions of your name.</p>
      ${account(null)}
      <p><a href="/">Back to the demo</a></p>
    </section>`,
    )
  }
  const rows = state.sessions
    .map((session) => {
      const current = session.id === state.currentId
      return `<tr class="session${current ? ' current' : ''}"><td><code class="sid">${escape(maskId(session.id))}</code>${
        current ? ' <span class="state ok this-device">this device</span>' : ''
      }</td><td>${time(session.createdAt)}</td><td>${time(session.lastAccess)}</td><td class="served-by">${escape(session.servedBy)}</td><td>${time(session.expiresAt)}</td></tr>`
    })
    .join('')
  return layout(
    title,
    `${served}
    <section>
      <h2>Your sessions</h2>
      <p>Logged in as <strong id="user">${escape(state.user)}</strong>: <span id="session-count">${plural(state.sessions.length, 'session')}</span> in the cluster.</p>
      <table id="sessions"><thead><tr><th>session</th><th>created</th><th>last access</th><th>served by</th><th>expires</th></tr></thead><tbody>${rows}</tbody></table>
      <p class="hint">Ids are shortened: a session id is the key to that session, so a page never shows another session's in full.</p>
      <form method="post" action="/sessions/logout-everywhere"><button type="submit" id="logout-everywhere">Log out everywhere</button></form>
      <form method="post" action="/sessions/logout-others"><button type="submit" id="logout-others" class="secondary">Log out other devices</button></form>
      <p><a href="/">Back to the demo</a></p>
    </section>`,
  )
}

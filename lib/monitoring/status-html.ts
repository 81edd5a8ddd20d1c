import { createHash } from 'node:crypto'
import type { ClusterStatus } from './status.js'

/**
 * The status page: one HTML document with its CSS and script inline, no external asset. The server
 * embeds the status as JSON; the script draws it, and every 2 s fetches it again from the same path
 * (`?format=json`). Everything is drawn with `textContent`: a node id or address a peer chose is
 * text, never markup.
 */
const SCRIPT = `
(function () {
  'use strict';
  var REFRESH_MS = 2000;
  var url = location.pathname + '?format=json';
  function $(id) { return document.getElementById(id); }
  function text(id, value) { $(id).textContent = value; }
  function bytes(n) {
    if (n === null || n === undefined) return '\\u2014';
    if (n < 1024) return n + ' B';
    if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
    return (n / 1048576).toFixed(1) + ' MiB';
  }
  function ago(iso, now) {
    var s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
    if (s < 120) return s + ' s ago';
    if (s < 7200) return Math.floor(s / 60) + ' min ago';
    return Math.floor(s / 3600) + ' h ago';
  }
  function count(n) { return n.toLocaleString('en-US'); }
  function cell(row, value, name) {
    var td = document.createElement('td');
    td.textContent = value;
    if (name) td.className = name;
    row.appendChild(td);
    return td;
  }
  function render(status) {
    var now = Date.parse(status.at);
    var node = status.node;
    text('node-id', node.nodeId === null ? '(single node)' : node.nodeId);
    document.title = (node.nodeId === null ? '' : node.nodeId + ': ') + 'connect-peer cluster';
    text('sessions', count(node.sessions));
    text('tombstones', count(node.tombstones));
    text('protocol', String(node.protocol));
    text('syncing', node.syncing ? 'receiving its state' : 'in sync');
    text('traffic', bytes(node.bytesIn) + ' in, ' + bytes(node.bytesOut) + ' out');
    text('errors', node.protocolErrors + ' protocol errors, ' + node.refusedHandshakes + ' refused handshakes, ' + node.queueOverflows + ' queue overflows');
    text('updated', 'updated ' + new Date(now).toLocaleTimeString('en-GB'));
    var body = $('members-body');
    body.replaceChildren();
    status.members.forEach(function (m) {
      var row = document.createElement('tr');
      row.setAttribute('data-peer', m.nodeId === null ? m.address : m.nodeId);
      cell(row, m.nodeId === null ? '?' : m.nodeId, 'peer');
      cell(row, m.address, 'address');
      cell(row, m.state, 'state state-' + m.state);
      cell(row, ago(m.since, now), 'since').title = m.since;
      cell(row, m.lagSeconds === null ? '\\u2014' : (m.lagSeconds * 1000).toFixed(1) + ' ms', 'lag');
      cell(row, bytes(m.queuedBytes), 'queue');
      cell(row, String(m.connections), 'connections');
      cell(row, m.protocol === null ? '\\u2014' : String(m.protocol), 'protocol');
      body.appendChild(row);
    });
    if (status.members.length === 0) {
      var none = document.createElement('tr');
      cell(none, 'no peers: this node replicates to nobody').colSpan = 8;
      body.appendChild(none);
    }
    var t = status.transfer;
    $('transfer').hidden = t === null;
    $('no-transfer').hidden = t !== null;
    if (t !== null) {
      text('transfer-peer', t.peer);
      text('transfer-state', t.state === 'running' ? 'running' : 'done in ' + t.durationMs + ' ms');
      var done = t.expectedSessions ? Math.min(1, t.sessions / t.expectedSessions) : (t.state === 'done' ? 1 : 0);
      $('transfer-bar').value = done;
      text('transfer-sessions', count(t.sessions) + (t.expectedSessions === null ? '' : ' of ' + count(t.expectedSessions)) + ' sessions');
      text('transfer-bytes', t.bytes === null ? '' : bytes(t.bytes) + (t.expectedBytes === null ? '' : ' of ' + bytes(t.expectedBytes)));
      text('transfer-started', 'started ' + ago(t.startedAt, now));
    }
  }
  function refresh() {
    fetch(url, { headers: { accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' })
      .then(function (response) {
        if (!response.ok) throw new Error('HTTP ' + response.status);
        return response.json();
      })
      .then(function (status) { render(status); text('problem', ''); },
            function (error) { text('problem', 'not updated: ' + error.message); })
      .then(function () { setTimeout(refresh, REFRESH_MS); });
  }
  render(JSON.parse($('status-data').textContent));
  setTimeout(refresh, REFRESH_MS);
})();
`

const STYLE = `
:root { color-scheme: light dark; --ok: #1a7f37; --warn: #b35900; --bad: #cf222e; --muted: #6e7781; }
body { font: 15px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; }
h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
h2 { font-size: 1.05rem; margin: 1.75rem 0 .5rem; }
.muted, #updated { color: var(--muted); }
#problem { color: var(--bad); }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1.25rem; margin: 1rem 0; }
dt { color: var(--muted); }
dd { margin: 0; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid color-mix(in srgb, currentColor 15%, transparent); }
th { font-weight: 600; font-size: .85rem; color: var(--muted); }
.state { font-weight: 600; }
.state-alive { color: var(--ok); }
.state-suspect, .state-connecting { color: var(--warn); }
.state-dead { color: var(--bad); }
progress { width: 20rem; max-width: 100%; vertical-align: middle; }
`

/** The Content-Security-Policy of the page: its own script (by hash) and style, fetches to itself, nothing else. */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `script-src 'sha256-${createHash('sha256').update(SCRIPT).digest('base64')}'`,
  `style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`,
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

export function renderStatusPage(status: ClusterStatus): string {
  // Inside a script element only `</script` could end it early: `<` is written as an escape.
  const data = JSON.stringify(status).replace(/</g, '\\u003c')
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>connect-peer cluster</title>
<style>${STYLE}</style>
</head>
<body>
<h1>connect-peer cluster: <span id="node-id"></span></h1>
<div><span id="updated"></span> <span class="muted">(refreshes every 2 s)</span> <span id="problem"></span></div>
<dl>
<dt>sessions</dt><dd id="sessions"></dd>
<dt>tombstones</dt><dd id="tombstones"></dd>
<dt>state</dt><dd id="syncing"></dd>
<dt>protocol</dt><dd id="protocol"></dd>
<dt>replication traffic</dt><dd id="traffic"></dd>
<dt>trouble</dt><dd id="errors"></dd>
</dl>
<h2>Members</h2>
<table id="members">
<thead><tr><th>peer</th><th>address</th><th>state</th><th>since</th><th>lag</th><th>queue</th><th>connections</th><th>protocol</th></tr></thead>
<tbody id="members-body"></tbody>
</table>
<h2>Last state transfer</h2>
<p id="no-transfer" class="muted">none yet</p>
<div id="transfer" hidden>
<p>from <strong id="transfer-peer"></strong>: <span id="transfer-state"></span>, <span id="transfer-started"></span></p>
<p><progress id="transfer-bar" max="1" value="0"></progress> <span id="transfer-sessions"></span> <span id="transfer-bytes" class="muted"></span></p>
</div>
<script type="application/json" id="status-data">${data}</script>
<script>${SCRIPT}</script>
</body>
</html>
`
}

#!/usr/bin/env node
// The worker's job with nothing but the DevTools protocol, over --remote-debugging-pipe and no
// library: a fresh context and tab, Page, lifecycle and Network events on, the worker's
// viewport and focus emulation, navigate, the load lifecycle event, fonts ready, printToPDF
// (A4, no margins, backgrounds), the context disposed; C jobs at a time, one warm browser.
// Page sessions are flat (FLAT=1, as Playwright's) or not (FLAT=0: every call inside
// Target.sendMessageToTarget and every event inside Target.receivedMessageFromTarget, as
// headless_chrome's); DISCOVER=1 turns target discovery on, as headless_chrome does; HOLD_MS=N
// keeps each page open N ms longer before its print. WS=1 talks to the browser over its
// DevTools websocket (--remote-debugging-port=0, as headless_chrome does) instead of the pipe
// (as Playwright does); it needs `node --experimental-websocket` on Node 20.
// Run next to render_loop with bench/cpupair.py, it shows what the engine costs on top of the
// protocol's bare minimum (docs/performance.md, session 10).
//
// ARGS_FILE: Chromium's command line, one argument a line, the executable first; to drive
// the worker's browser, copy the one render_loop launches:
//   RENDER_LOOP_PROXY=1 render_loop 8 4 URL & sleep 4; \
//     ps -eo args | grep -m1 '^/usr/lib/chromium/chromium.*remote-debugging' | tr ' ' '\n' > /tmp/chromium.args
// (its --remote-debugging-port, --user-data-dir and proxy flags are dropped or replaced).
//
// usage: ARGS_FILE=/tmp/chromium.args FLAT=0|1 DISCOVER=0|1 [WS=1] node [--experimental-websocket] bench/rawcdp.js N C URL...
const { spawn } = require('child_process');
const fs = require('fs');
const n = +process.argv[2], conc = +process.argv[3], urls = process.argv.slice(4);
const FLAT = process.env.FLAT === '1', DISCOVER = process.env.DISCOVER === '1', WS = process.env.WS === '1';
const HOLD_MS = +(process.env.HOLD_MS || 0);
const args = fs.readFileSync(process.env.ARGS_FILE, 'utf8').split('\n').filter(Boolean)
  .filter((a) => !/^--(remote-debugging-port|user-data-dir|proxy-server|proxy-bypass-list)=/.test(a));
const exe = args.shift();
const udd = fs.mkdtempSync(require('os').tmpdir() + '/rawcdp-');
const child = WS
  ? spawn(exe, [...args, '--remote-debugging-port=0', '--user-data-dir=' + udd], { stdio: ['ignore', 'ignore', 'pipe'] })
  : spawn(exe, [...args, '--remote-debugging-pipe', '--user-data-dir=' + udd], { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'] });
let id = 0; const pending = new Map(); const sessions = new Map();
let send, finishing = false;
// A browser that dies (or never starts) ends the run instead of leaving it waiting.
child.on('exit', (code, signal) => {
  if (!finishing) { console.error(`chromium exited (${code ?? signal}) before the run ended`); process.exit(1); }
});
// The websocket, once Chromium prints its address on stderr.
const connected = WS ? new Promise((resolve, reject) => {
  let err = '', opening = false;
  child.stderr.on('data', (d) => {
    if (opening) return; // drained, no longer read
    err += d;
    const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
    if (!m) return;
    opening = true;
    const ws = new WebSocket(m[1]);
    ws.onmessage = (e) => dispatch(JSON.parse(e.data));
    ws.onerror = (e) => reject(e.error || new Error('websocket error'));
    ws.onopen = () => { send = (obj) => ws.send(JSON.stringify(obj)); resolve(); };
  });
}) : Promise.resolve();
if (!WS) {
  const out = child.stdio[3], inp = child.stdio[4];
  send = (obj) => out.write(JSON.stringify(obj) + '\0');
  out.on('error', () => {}); // a browser gone: its exit, above, ends the run
  let buf = '';
  inp.on('data', (d) => { buf += d; let i; while ((i = buf.indexOf('\0')) >= 0) { const m = buf.slice(0, i); buf = buf.slice(i + 1); dispatch(JSON.parse(m)); } });
}
function dispatch(msg, sessionId) {
  if (msg.id !== undefined) { const p = pending.get(msg.id); if (p) { pending.delete(msg.id); msg.error ? p.rej(new Error(msg.error.message)) : p.res(msg.result); } return; }
  if (msg.method === 'Target.receivedMessageFromTarget') { dispatch(JSON.parse(msg.params.message), msg.params.sessionId); return; }
  const s = sessions.get(sessionId || msg.sessionId); if (s) s(msg);
}
function call(method, params = {}, sessionId) {
  const my = ++id;
  return new Promise((res, rej) => {
    pending.set(my, { res, rej });
    if (!sessionId) send({ id: my, method, params });
    else if (FLAT) send({ id: my, method, params, sessionId });
    else { const outer = ++id; pending.set(outer, { res: () => {}, rej }); send({ id: outer, method: 'Target.sendMessageToTarget', params: { sessionId, message: JSON.stringify({ id: my, method, params }) } }); }
  });
}
async function job(url) {
  const { browserContextId } = await call('Target.createBrowserContext', { disposeOnDetach: false });
  const { targetId } = await call('Target.createTarget', { url: 'about:blank', browserContextId });
  const { sessionId } = await call('Target.attachToTarget', { targetId, flatten: FLAT });
  // The load event of the navigation's own document: Page.enable also reports the lifecycle
  // of the blank page the tab opened with, whose 'load' must not count.
  const loads = new Set(); let waiting = null;
  sessions.set(sessionId, (m) => {
    if (m.method !== 'Page.lifecycleEvent' || m.params.name !== 'load') return;
    loads.add(m.params.loaderId);
    if (waiting && waiting.loaderId === m.params.loaderId) waiting.resolve();
  });
  const loadOf = (loaderId) => (loads.has(loaderId) ? Promise.resolve() : new Promise((resolve) => { waiting = { loaderId, resolve }; }));
  await call('Page.enable', {}, sessionId);
  await call('Page.setLifecycleEventsEnabled', { enabled: true }, sessionId);
  await call('Network.enable', {}, sessionId);
  await call('Emulation.setDeviceMetricsOverride', { width: 1920, height: 1080, deviceScaleFactor: 1, mobile: false }, sessionId);
  await call('Emulation.setFocusEmulationEnabled', { enabled: true }, sessionId);
  const nav = await call('Page.navigate', { url }, sessionId);
  await loadOf(nav.loaderId);
  await call('Runtime.evaluate', { expression: 'document.fonts.ready.then(() => true)', awaitPromise: true }, sessionId);
  // HOLD_MS: the page stays open this long before its print, as if each call took longer.
  if (HOLD_MS) await new Promise((r) => setTimeout(r, HOLD_MS));
  await call('Page.printToPDF', { paperWidth: 8.27, paperHeight: 11.69, marginTop: 0, marginBottom: 0, marginLeft: 0, marginRight: 0, printBackground: true, generateTaggedPDF: false }, sessionId);
  sessions.delete(sessionId);
  await call('Target.disposeBrowserContext', { browserContextId });
}
(async () => {
  await connected;
  if (DISCOVER) await call('Target.setDiscoverTargets', { discover: true });
  await job(urls[0]);
  let next = 0; const t0 = Date.now();
  async function lane() { for (;;) { const i = next++; if (i >= n) return; await job(urls[i % urls.length]); } }
  await Promise.all(Array.from({ length: conc }, lane));
  const secs = (Date.now() - t0) / 1000;
  console.log(JSON.stringify({ tool: 'rawcdp', flat: FLAT, ws: WS, n, conc, seconds: secs, per_second: +(n / secs).toFixed(3) }));
  finishing = true;
  const exited = new Promise((r) => child.on('exit', r));
  call('Browser.close').catch(() => {});
  await exited;
  fs.rmSync(udd, { recursive: true, force: true });
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });

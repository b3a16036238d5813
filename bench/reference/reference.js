#!/usr/bin/env node
// The reference `make bench` compares the service with: what one would write by hand with
// Playwright on the same Chromium. One warm browser, a fresh isolated context per job (as a
// multi-tenant service must), the page's load event, then the file; C jobs at a time.
// Prints one JSON line: pages per second, latency p50/p95.
//
// usage: node reference.js --kind pdf|png --n 200 --conc 4 URL [URL ...]
const { chromium } = require('playwright-core');

function parseArgs() {
  const a = { kind: 'pdf', n: 50, conc: 1, urls: [] };
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i++) {
    if (v[i] === '--kind') a.kind = v[++i];
    else if (v[i] === '--n') a.n = parseInt(v[++i], 10);
    else if (v[i] === '--conc') a.conc = parseInt(v[++i], 10);
    else a.urls.push(v[i]);
  }
  if (!a.urls.length) throw new Error('no URL given');
  return a;
}

// Playwright's own --disable-features list (playwright-core 1.65.1, as pinned in
// package.json; read from the browser's command line with `ps`).
const PLAYWRIGHT_DISABLED = ['AvoidUnnecessaryBeforeUnloadCheckSync', 'DestroyProfileOnBrowserClose',
  'HttpsUpgrades', 'HttpsFirstBalancedModeAutoEnable', 'LensOverlay', 'MediaRouter', 'PaintHolding',
  'ThirdPartyStoragePartitioning', 'AvoidCorsURLLoaderRestartOnRedirect', 'TcpPortRandomizationWin',
  'OptimizationHints', 'NetworkTimeServiceQuerying', 'AimEnabled', 'PreconnectToSearch',
  'msForceBrowserSignIn', 'msEdgeUpdateLaunchServicesPreferredVersion'];
// The worker's (its first two are headless_chrome's own, which the worker's list replaces).
const WORKER_DISABLED = ['TranslateUI', 'BlinkGenPropertyTrees', 'WebUIOmniboxPopup',
  'WebUIOmniboxAimPopup', 'WebUIOmniboxFullPopup'];

(async () => {
  const a = parseArgs();
  // The worker's own launch flags (crates/worker/src/browser.rs, FLAGS), so both drive the
  // same browser the same way. Its --disable-features (the browser's own UI: each context's
  // window builds a WebUI omnibox popup in a renderer of its own) is merged with
  // Playwright's: Chromium keeps the last --disable-features given, so passing it alone
  // would drop Playwright's list. REFERENCE_PLAIN=1 leaves Playwright's list as it is.
  // REFERENCE_FLAGS=baseline launches Chromium as ../shared/bench/baseline/baseline.js does,
  // the reference issue #7 names: only the switches this closed network needs, and
  // Playwright's own for the rest (what a user writing it by hand gets).
  const BASELINE = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'];
  const args = process.env.REFERENCE_FLAGS === 'baseline' ? BASELINE : BASELINE.concat([
    '--disable-dev-shm-usage',
    '--hide-scrollbars', '--mute-audio', '--font-render-hinting=none', '--disable-infobars',
    '--blink-settings=primaryHoverType=2,availableHoverTypes=2,primaryPointerType=4,availablePointerTypes=4',
    '--in-process-gpu']);
  if (process.env.REFERENCE_FLAGS !== 'baseline' && process.env.REFERENCE_PLAIN !== '1') {
    args.push('--disable-features=' + PLAYWRIGHT_DISABLED.concat(WORKER_DISABLED).join(','));
  }
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args,
  });
  // One unmeasured render, as the service is measured warm.
  {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(a.urls[0], { waitUntil: 'load' });
    await ctx.close();
  }
  const lat = [];
  let next = 0;
  let bytes = 0;
  const t0 = Date.now();
  async function lane() {
    for (;;) {
      const i = next++;
      if (i >= a.n) return;
      const url = a.urls[i % a.urls.length];
      const t = Date.now();
      const ctx = await browser.newContext({ viewport: { width: 1920, height: 1080 } });
      const page = await ctx.newPage();
      await page.goto(url, { waitUntil: 'load' });
      await page.evaluate(() => document.fonts.ready.then(() => true));
      const out = a.kind === 'pdf'
        ? await page.pdf({ format: 'A4', printBackground: true })
        : await page.screenshot({ fullPage: false });
      bytes += out.length;
      await ctx.close();
      lat.push(Date.now() - t);
    }
  }
  await Promise.all(Array.from({ length: a.conc }, lane));
  const secs = (Date.now() - t0) / 1000;
  lat.sort((x, y) => x - y);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))];
  console.log(JSON.stringify({
    tool: 'playwright-reference', kind: a.kind, n: a.n, conc: a.conc,
    seconds: +secs.toFixed(2), per_second: +(a.n / secs).toFixed(3), p50_ms: q(0.5), p95_ms: q(0.95),
    mean_output_bytes: Math.round(bytes / a.n),
  }));
  await browser.close();
})().catch((e) => { console.error(e); process.exit(1); });

//! Rendering one page to a PDF or an image (blocking: runs on a blocking thread).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use enconvert_domain::request::{Band, ImageFormat, OutputKind, RenderOptions};
use headless_chrome::Tab;
use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::protocol::cdp::{Emulation, Network, Page as CdpPage};
use headless_chrome::types::PrintToPdfOptions;

use crate::browser::{Handle, PREPARE_TIMEOUT, Page, set_metrics};

/// Why a render did not produce a file.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The page itself is the problem (HTTP error, DNS failure, refused connection,
    /// timeout): the job fails with this message.
    #[error("{0}")]
    Target(String),
    /// The browser failed: the job is retried on a fresh browser.
    #[error("browser failure: {0}")]
    Browser(String),
    /// The page's renderer process crashed (or was killed) during the render: the job is
    /// retried, on the same browser, until its delivery limit.
    #[error("The page's renderer crashed while rendering it")]
    Crashed,
}

type Result<T> = std::result::Result<T, RenderError>;

fn browser_err(e: impl std::fmt::Display) -> RenderError {
    RenderError::Browser(e.to_string())
}

/// The page a render is working on, published for the async side: it closes the tab on
/// timeout, and gives up at once when the renderer crashed, or when no page came in time (a
/// call to a tab whose renderer died is never answered).
pub struct Current {
    /// The page's tab and crash flag, once the render has its page.
    pub page: Option<(Arc<Tab>, Arc<AtomicBool>)>,
    /// The browser the page belongs to.
    pub browser: Handle,
    /// When the render asked for its page.
    since: Instant,
}

impl Current {
    pub fn crashed(&self) -> bool {
        self.page
            .as_ref()
            .is_some_and(|(_, crashed)| crashed.load(Ordering::SeqCst))
    }

    /// The render is still waiting for its page after [`PREPARE_TIMEOUT`].
    pub fn page_overdue(&self) -> bool {
        self.page.is_none() && self.since.elapsed() > PREPARE_TIMEOUT
    }
}

/// Where the render's page is published while it runs.
pub type TabSlot = Arc<Mutex<Option<Current>>>;

const AD_HOSTS: &[&str] = &[
    "*doubleclick.net*",
    "*googlesyndication.com*",
    "*googleadservices.com*",
    "*google-analytics.com*",
    "*googletagmanager.com*",
    "*adservice.google.*",
    "*amazon-adsystem.com*",
    "*adnxs.com*",
    "*taboola.com*",
    "*outbrain.com*",
    "*criteo.com*",
    "*criteo.net*",
    "*scorecardresearch.com*",
    "*hotjar.com*",
    "*connect.facebook.net*",
    "*ads.linkedin.com*",
    "*adsrvr.org*",
    "*pubmatic.com*",
    "*rubiconproject.com*",
    "*moatads.com*",
];
const IMAGE_PATTERNS: &[&str] = &[
    "*.png*", "*.jpg*", "*.jpeg*", "*.gif*", "*.webp*", "*.avif*", "*.svg*", "*.ico*", "*.bmp*",
];
const MEDIA_PATTERNS: &[&str] = &[
    "*.mp4*", "*.webm*", "*.ogg*", "*.ogv*", "*.mp3*", "*.wav*", "*.m4a*", "*.mov*", "*.m3u8*",
];

/// Scrolls the window and every inner scrolling pane so lazy content loads, then waits
/// (bounded) for the images that appeared. `loading="lazy"` images are made eager instead; a
/// page that fits its viewport, or where nothing loads on scroll (no intersection observer,
/// no scroll listener: `LAZY_PROBE_JS`), is not scrolled at all.
const SCROLL_JS: &str = r#"(async () => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  document.querySelectorAll('img[loading="lazy"]').forEach(i => { i.loading = 'eager'; });
  const step = Math.max(200, window.innerHeight);
  let guard = 0;
  let moved = false;
  // Nothing on the page loads on scroll (see LAZY_PROBE_JS; unknown counts as something).
  const lazy = window.__enconvertLazy !== 0 || !!document.querySelector('iframe[loading="lazy"]');
  if (lazy && document.documentElement.scrollHeight > window.innerHeight + 1) {
    moved = true;
    for (let y = 0; y < document.documentElement.scrollHeight && guard < 300; y += step, guard++) {
      window.scrollTo(0, y); await sleep(40);
    }
    window.scrollTo(0, document.documentElement.scrollHeight); await sleep(40);
  }
  const all = document.body ? document.body.getElementsByTagName('*') : [];
  let panes = 0;
  for (let i = 0; lazy && i < all.length && i < 20000 && panes < 50; i++) {
    const el = all[i];
    if (el.scrollHeight > el.clientHeight + 20) {
      const s = getComputedStyle(el).overflowY;
      if (s === 'auto' || s === 'scroll') {
        panes++; moved = true;
        for (let t = 0; t < el.scrollHeight && guard < 600; t += Math.max(100, el.clientHeight), guard++) {
          el.scrollTop = t; await sleep(30);
        }
        el.scrollTop = 0;
      }
    }
  }
  if (moved) {
    window.scrollTo(0, 0);
    await sleep(50);
  }
  const pending = Array.from(document.images).filter(i => !i.complete);
  await Promise.race([
    Promise.all(pending.map(i => new Promise(r => { i.addEventListener('load', r); i.addEventListener('error', r); }))),
    sleep(3000),
  ]);
  // Content that appeared may use fonts not loaded yet.
  if (document.fonts.status !== 'loaded') await document.fonts.ready;
  const nav = performance.getEntriesByType('navigation')[0];
  return nav && nav.responseStatus ? nav.responseStatus : 0;
})()"#;

/// Waits for the web fonts in use, then gives the document's HTTP status (0 when unknown).
/// (Awaiting `fonts.ready` when nothing is loading still waits for a frame, some 200 ms.)
const FONTS_STATUS_JS: &str = "(() => { const status = () => { const n = performance.getEntriesByType('navigation')[0]; return n && n.responseStatus ? n.responseStatus : 0; }; return document.fonts.status === 'loaded' ? status() : document.fonts.ready.then(status); })()";

/// Turns the page gray. A filter on the root element would leave the canvas background
/// (propagated from `html` or `body`) in colour, so the root gets an explicit gray
/// background and the body the filter.
const GRAYSCALE_JS: &str = r#"(() => {
  const gray = (c) => {
    const m = /rgba?\(([^)]+)\)/.exec(c);
    if (!m) return null;
    const [r, g, b, a] = m[1].split(',').map(Number);
    if (a === 0) return null;
    const y = Math.round(0.299 * r + 0.587 * g + 0.114 * b);
    return `rgb(${y}, ${y}, ${y})`;
  };
  const html = document.documentElement;
  const body = document.body;
  const canvas = gray(getComputedStyle(html).backgroundColor)
    || (body && gray(getComputedStyle(body).backgroundColor))
    || 'rgb(255, 255, 255)';
  html.style.setProperty('background', canvas, 'important');
  html.style.setProperty('-webkit-print-color-adjust', 'exact', 'important');
  if (body) body.style.setProperty('filter', 'grayscale(100%)', 'important');
  return true;
})()"#;

/// What a render may wait for and load.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// After `load` and web fonts, wait until no request was in flight for this long (at
    /// most [`NETWORK_QUIET_BUDGET`]); zero skips the wait.
    pub network_quiet: Duration,
    /// Decoded bytes one HTML document (of any frame) may have.
    pub max_document_bytes: u64,
    /// Decoded bytes the page may load in all.
    pub max_page_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            network_quiet: Duration::ZERO,
            max_document_bytes: 8 * 1024 * 1024,
            max_page_bytes: 128 * 1024 * 1024,
        }
    }
}

/// Bytes as a user reads them.
fn mib(bytes: u64) -> String {
    let m = bytes as f64 / (1024.0 * 1024.0);
    if m.fract() == 0.0 {
        format!("{m:.0} MiB")
    } else {
        format!("{m:.1} MiB")
    }
}

/// What the page's events told so far (filled by a listener on the tab's event thread).
#[derive(Default)]
struct Watch {
    /// Lifecycle events seen: (loader id, name).
    lifecycle: HashSet<(String, String)>,
    /// Network requests started and not yet finished or failed.
    in_flight: HashSet<String>,
    /// When a request last started or ended.
    last_activity: Option<Instant>,
    /// The egress proxy's verdicts on documents it did not fetch, by loader id.
    egress: HashMap<String, String>,
    /// The renderer crashed.
    crashed: bool,
    /// Requests for HTML documents (the page's and its frames'), with bytes received.
    documents: HashMap<String, u64>,
    /// Bytes received for every request of the page.
    received: u64,
    /// Set once a limit is passed: the message the job fails with.
    too_large: Option<String>,
}

impl Watch {
    /// A render's wait ends early on a crash or a size limit.
    fn interrupted(&self) -> Option<RenderError> {
        if self.crashed {
            Some(RenderError::Crashed)
        } else {
            self.too_large.clone().map(RenderError::Target)
        }
    }
}

/// The egress proxy's verdict header on a response, when the proxy answered it itself.
fn egress_verdict(headers: &Network::Headers) -> Option<String> {
    let map = headers.0.as_ref()?.as_object()?;
    map.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(enconvert_egress::proxy::verdict_header()))
        .and_then(|(_, v)| v.as_str())
        .map(str::to_string)
}

/// What a user reads when the proxy did not fetch the page.
fn egress_message(verdict: &str) -> String {
    match verdict {
        "blocked" => {
            "The address is private, loopback or reserved; it is not fetched (egress policy)"
                .to_string()
        }
        "refused" => "The connection was refused (net::ERR_CONNECTION_REFUSED)".to_string(),
        "timeout" => "The connection timed out (net::ERR_CONNECTION_TIMED_OUT)".to_string(),
        "unresolved" => {
            "The host name could not be resolved (net::ERR_NAME_NOT_RESOLVED)".to_string()
        }
        _ => "The site could not be reached".to_string(),
    }
}

type Watched = Arc<(Mutex<Watch>, Condvar)>;

fn watch(page: &mut Page, limits: Limits) -> Result<Watched> {
    let watched: Watched = Arc::new((Mutex::new(Watch::default()), Condvar::new()));
    let w = watched.clone();
    page.listen(Arc::new(move |event: &Event| {
        let (lock, changed) = &*w;
        let Ok(mut state) = lock.lock() else { return };
        match event {
            Event::PageLifecycleEvent(e) => {
                state
                    .lifecycle
                    .insert((e.params.loader_id.clone(), e.params.name.clone()));
            }
            Event::NetworkRequestWillBeSent(e) => {
                state.in_flight.insert(e.params.request_id.clone());
                state.last_activity = Some(Instant::now());
                if e.params.Type == Some(Network::ResourceType::Document) {
                    state
                        .documents
                        .entry(e.params.request_id.clone())
                        .or_default();
                }
            }
            Event::NetworkDataReceived(e) => {
                let bytes = u64::from(e.params.data_length);
                state.received = state.received.saturating_add(bytes);
                let document = state.documents.get_mut(&e.params.request_id).map(|d| {
                    *d = d.saturating_add(bytes);
                    *d
                });
                if state.too_large.is_none() {
                    if document.is_some_and(|d| d > limits.max_document_bytes) {
                        state.too_large = Some(format!(
                            "The page is too large: its HTML document passed the limit of {}",
                            mib(limits.max_document_bytes)
                        ));
                    } else if state.received > limits.max_page_bytes {
                        state.too_large = Some(format!(
                            "The page is too large: it loaded more than the limit of {}",
                            mib(limits.max_page_bytes)
                        ));
                    }
                }
                if state.too_large.is_none() {
                    return;
                }
            }
            Event::NetworkResponseReceived(e)
                if e.params.Type == Network::ResourceType::Document =>
            {
                if let Some(verdict) = egress_verdict(&e.params.response.headers) {
                    state.egress.insert(e.params.loader_id.clone(), verdict);
                }
            }
            Event::NetworkLoadingFinished(e) => {
                state.in_flight.remove(&e.params.request_id);
                state.last_activity = Some(Instant::now());
            }
            Event::NetworkLoadingFailed(e) => {
                state.in_flight.remove(&e.params.request_id);
                state.last_activity = Some(Instant::now());
            }
            Event::InspectorTargetCrashed(_) => state.crashed = true,
            _ => return,
        }
        changed.notify_all();
    }))
    .map_err(browser_err)?;
    // A crash before the listener was added was recorded on the page.
    if page.crashed()
        && let Ok(mut state) = watched.0.lock()
    {
        state.crashed = true;
    }
    Ok(watched)
}

/// How long the optional network-quiet wait may take at most.
const NETWORK_QUIET_BUDGET: Duration = Duration::from_secs(2);

/// Renders `url` with `options` on a ready page of its own browser context; the page (tab
/// and context) is closed afterwards.
pub fn render(
    browser: &Handle,
    url: &str,
    options: &RenderOptions,
    limits: Limits,
    deadline: Instant,
    slot: &TabSlot,
) -> Result<Vec<u8>> {
    let publish = |current: Option<Current>| {
        if let Ok(mut s) = slot.lock() {
            *s = current;
        }
    };
    publish(Some(Current {
        page: None,
        browser: browser.clone(),
        since: Instant::now(),
    }));
    let result = match browser.page() {
        Ok(mut page) => {
            if let Ok(mut s) = slot.lock()
                && let Some(current) = s.as_mut()
            {
                current.page = Some((page.tab.clone(), page.crash_flag()));
            }
            let mut result = render_in(&mut page, url, options, limits, deadline);
            // Whatever a call on a crashed page reported (a timeout, a closed session), the
            // cause is the crash.
            if result.is_err() && page.crashed() {
                result = Err(RenderError::Crashed);
            }
            browser.release(page);
            result
        }
        Err(e) => Err(RenderError::Browser(format!("{e:#}"))),
    };
    publish(None);
    result
}

fn remaining(deadline: Instant) -> Result<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| RenderError::Target("Page load timeout".to_string()))
}

fn render_in(
    page: &mut Page,
    url: &str,
    o: &RenderOptions,
    limits: Limits,
    deadline: Instant,
) -> Result<Vec<u8>> {
    let tab = page.tab.clone();
    tab.set_default_timeout(remaining(deadline)?);
    let scale = if o.kind == OutputKind::Screenshot {
        o.screenshot.device_scale_factor
    } else {
        1.0
    };
    let metrics = (o.viewport_width, o.viewport_height, scale);
    if page.metrics != metrics {
        set_metrics(&tab, metrics.0, metrics.1, metrics.2).map_err(browser_err)?;
        page.metrics = metrics;
    }

    let mut blocked: Vec<String> = Vec::new();
    if !o.load_media {
        blocked.extend(IMAGE_PATTERNS.iter().map(|s| s.to_string()));
    }
    if !o.load_media || o.block_media {
        blocked.extend(MEDIA_PATTERNS.iter().map(|s| s.to_string()));
    }
    if o.block_ads {
        blocked.extend(AD_HOSTS.iter().map(|s| s.to_string()));
    }
    // The network domain is on in every ready page.
    if !blocked.is_empty() {
        tab.call_method(Network::SetBlockedURLs { urls: blocked })
            .map_err(browser_err)?;
    }
    if !o.headers.is_empty() {
        let headers = o
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        tab.set_extra_http_headers(headers).map_err(browser_err)?;
    }
    if !o.cookies.is_empty() {
        let cookies = o
            .cookies
            .iter()
            .map(|c| Network::CookieParam {
                name: c.name.clone(),
                value: c.value.clone(),
                url: c.url.clone().or_else(|| {
                    if c.domain.is_none() {
                        Some(url.to_string())
                    } else {
                        None
                    }
                }),
                domain: c.domain.clone(),
                path: Some(c.path.clone()),
                secure: c.secure,
                http_only: c.http_only,
                same_site: c.same_site.as_deref().map(|s| match s {
                    "Strict" => Network::CookieSameSite::Strict,
                    "None" => Network::CookieSameSite::None,
                    _ => Network::CookieSameSite::Lax,
                }),
                expires: c.expires,
                priority: None,
                same_party: None,
                source_scheme: None,
                source_port: None,
                partition_key: None,
            })
            .collect();
        tab.call_method(Network::SetCookies { cookies })
            .map_err(browser_err)?;
    }
    if let Some(auth) = &o.auth {
        // Answer the site's Basic challenge; Chromium then sends the credentials itself.
        tab.authenticate(Some(auth.username.clone()), Some(auth.password.clone()))
            .map_err(browser_err)?;
        tab.enable_fetch(None, Some(true)).map_err(browser_err)?;
    }

    let watched = watch(page, limits)?;
    let t0 = Instant::now();
    let nav = tab
        .call_method(CdpPage::Navigate {
            url: url.to_string(),
            referrer: None,
            transition_Type: None,
            frame_id: None,
            referrer_policy: None,
        })
        .map_err(|e| {
            let text = e.to_string();
            if text.contains("net::") || text.contains("Navigation") {
                RenderError::Target(describe_net_error(&text))
            } else {
                browser_err(text)
            }
        })?;
    if let Some(error) = nav.error_text {
        // A renderer killed under a navigation aborts it; the crash is reported just after.
        if error.contains("ERR_ABORTED") && crashed_within(&watched, CRASH_REPORT_WAIT) {
            return Err(RenderError::Crashed);
        }
        return Err(RenderError::Target(describe_net_error(&error)));
    }
    // A navigation to the same document (a fragment) has no loader and no new load event.
    if let Some(loader) = &nav.loader_id {
        wait_event(&watched, loader, "load", deadline)?;
        let verdict = watched
            .0
            .lock()
            .ok()
            .and_then(|w| w.egress.get(loader).cloned());
        if let Some(verdict) = verdict {
            return Err(RenderError::Target(egress_message(&verdict)));
        }
    }

    let t_load = t0.elapsed();
    // One round trip: web fonts in use are there, and the document's HTTP status; with
    // scrolling on (and no selector to wait for first), the scroll script does both, after
    // scrolling, so that a job makes one call fewer.
    let scrolled = o.enable_scroll && o.wait_for_selector.is_none();
    let status = eval_f64(
        &tab,
        if scrolled { SCROLL_JS } else { FONTS_STATUS_JS },
        true,
    )?;
    if o.fail_on_http_error && status >= 400.0 {
        return Err(RenderError::Target(format!(
            "The page answered HTTP {}",
            status as u32
        )));
    }

    if let Some(selector) = &o.wait_for_selector {
        let wait = Duration::from_millis(u64::from(o.wait_for_selector_timeout_ms))
            .min(remaining(deadline)?);
        tab.wait_for_element_with_custom_timeout(selector, wait)
            .map_err(|_| {
                RenderError::Target(format!(
                    "The selector `{selector}` did not appear within {} ms",
                    wait.as_millis()
                ))
            })?;
    }
    if o.enable_scroll && !scrolled {
        tab.set_default_timeout(remaining(deadline)?);
        tab.evaluate(SCROLL_JS, true).map_err(browser_err)?;
    }
    if o.wait_for_selector.is_some() && !o.enable_scroll {
        // Content that appeared since may use fonts not loaded yet (the scroll script waits
        // for them itself).
        let _ = tab.evaluate(
            "document.fonts.status === 'loaded' || document.fonts.ready.then(() => true)",
            true,
        );
    }
    if !limits.network_quiet.is_zero() {
        wait_network_quiet(&watched, limits.network_quiet, deadline);
    }
    remaining(deadline)?;
    // What loaded after `load` (images the scroll revealed, late fetches) counts too.
    if let Some(error) = watched.0.lock().ok().and_then(|w| w.interrupted()) {
        return Err(error);
    }
    let t_ready = t0.elapsed();

    let file = match o.kind {
        OutputKind::Pdf => pdf(&tab, o),
        OutputKind::Screenshot => screenshot(&tab, o),
    };
    tracing::debug!(
        load_ms = t_load.as_millis(),
        ready_ms = t_ready.as_millis(),
        file_ms = (t0.elapsed() - t_ready).as_millis(),
        "render phases"
    );
    file
}

/// Waits for the lifecycle event `name` of the navigation `loader`.
fn wait_event(watched: &Watched, loader: &str, name: &str, deadline: Instant) -> Result<()> {
    let (lock, changed) = &**watched;
    let mut state = lock.lock().map_err(browser_err)?;
    let key = (loader.to_string(), name.to_string());
    while !state.lifecycle.contains(&key) {
        if let Some(error) = state.interrupted() {
            return Err(error);
        }
        let left = remaining(deadline)?;
        state = changed.wait_timeout(state, left).map_err(browser_err)?.0;
    }
    Ok(())
}

/// How long an aborted navigation waits for its renderer's crash to be reported.
const CRASH_REPORT_WAIT: Duration = Duration::from_secs(1);

/// Whether the page's renderer crashed, waiting up to `wait` for the report.
fn crashed_within(watched: &Watched, wait: Duration) -> bool {
    let (lock, changed) = &**watched;
    let Ok(state) = lock.lock() else { return false };
    changed
        .wait_timeout_while(state, wait, |s| !s.crashed)
        .is_ok_and(|(s, _)| s.crashed)
}

/// Waits (at most [`NETWORK_QUIET_BUDGET`]) until no request has been in flight for `quiet`.
fn wait_network_quiet(watched: &Watched, quiet: Duration, deadline: Instant) {
    let until = deadline.min(Instant::now() + NETWORK_QUIET_BUDGET);
    let (lock, changed) = &**watched;
    let Ok(mut state) = lock.lock() else { return };
    loop {
        let now = Instant::now();
        if now >= until || state.interrupted().is_some() {
            return;
        }
        let wait = if state.in_flight.is_empty() {
            let since = state
                .last_activity
                .map_or(quiet, |t| now.saturating_duration_since(t));
            if since >= quiet {
                return;
            }
            quiet - since
        } else {
            until - now
        };
        match changed.wait_timeout(state, wait.min(until - now)) {
            Ok((s, _)) => state = s,
            Err(_) => return,
        }
    }
}

fn eval_f64(tab: &Tab, js: &str, await_promise: bool) -> Result<f64> {
    let v = tab.evaluate(js, await_promise).map_err(browser_err)?;
    Ok(v.value.as_ref().and_then(|v| v.as_f64()).unwrap_or(0.0))
}

fn describe_net_error(text: &str) -> String {
    let code = text
        .split_whitespace()
        .find(|w| w.contains("net::"))
        .map(|w| w.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != ':' && c != '_'))
        .unwrap_or(text);
    let what = if code.contains("NAME_NOT_RESOLVED") {
        "The host name could not be resolved"
    } else if code.contains("CONNECTION_REFUSED") {
        "The connection was refused"
    } else if code.contains("TIMED_OUT") {
        "The connection timed out"
    } else if code.contains("AUTH_CREDENTIALS") {
        "The page requires authentication; credentials were missing or refused"
    } else if code.contains("TUNNEL_CONNECTION_FAILED") {
        "The site could not be reached, or its address is refused by the egress policy"
    } else if code.contains("BLOCKED") {
        "The request was blocked"
    } else if code.contains("CERT") || code.contains("SSL") {
        "The site's TLS certificate is not valid"
    } else {
        "The page could not be loaded"
    };
    format!("{what} ({code})")
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A header or footer template: the content, escaped, with `{page}` and `{total_pages}`
/// (also `{pages}`, `{total}`) replaced by Chromium's page counters.
fn band_template(band: Option<&Band>) -> String {
    match band {
        None => "<span></span>".to_string(),
        Some(b) => {
            let content = escape_html(&b.content)
                .replace("{page}", "<span class=\"pageNumber\"></span>")
                .replace("{total_pages}", "<span class=\"totalPages\"></span>")
                .replace("{pages}", "<span class=\"totalPages\"></span>")
                .replace("{total}", "<span class=\"totalPages\"></span>");
            format!(
                "<div style=\"font-size:10px;width:100%;text-align:center;padding:0 10mm;font-family:sans-serif;\">{content}</div>"
            )
        }
    }
}

const MM_PER_INCH: f64 = 25.4;

/// The tallest page Chromium prints: 65,535 points (a taller single page fails the print).
const MAX_PAGE_INCHES: f64 = 65_535.0 / 72.0 - 0.05;

fn pdf(tab: &Tab, o: &RenderOptions) -> Result<Vec<u8>> {
    let p = &o.pdf;
    if p.grayscale {
        tab.evaluate(GRAYSCALE_JS, false).map_err(browser_err)?;
    }
    let has_bands = p.header.is_some() || p.footer.is_some();
    let mut top = p.margin_top_mm;
    let mut bottom = p.margin_bottom_mm;
    if let Some(h) = &p.header {
        top = top.max(h.height);
    }
    if let Some(f) = &p.footer {
        bottom = bottom.max(f.height);
    }
    let inch = |mm: f64| mm / MM_PER_INCH;
    let mut options = PrintToPdfOptions {
        landscape: Some(p.landscape),
        display_header_footer: Some(has_bands),
        print_background: Some(p.print_background),
        scale: Some(p.scale),
        paper_width: Some(inch(p.width_mm)),
        paper_height: Some(inch(p.height_mm)),
        margin_top: Some(inch(top)),
        margin_bottom: Some(inch(bottom)),
        margin_left: Some(inch(p.margin_left_mm)),
        margin_right: Some(inch(p.margin_right_mm)),
        header_template: has_bands.then(|| band_template(p.header.as_ref())),
        footer_template: has_bands.then(|| band_template(p.footer.as_ref())),
        // Chromium tags PDFs by default now, which costs seconds on long pages (the structure
        // tree of a 1500-row table); the file looks the same and its text extracts the same.
        generate_tagged_pdf: Some(false),
        ..PrintToPdfOptions::default()
    };
    if p.single_page {
        // One page as wide as the viewport and as tall as the content, laid out as on screen.
        tab.call_method(Emulation::SetEmulatedMedia {
            media: Some("screen".to_string()),
            features: None,
        })
        .map_err(browser_err)?;
        let height_px = eval_f64(
            tab,
            "Math.max(document.documentElement.scrollHeight, document.body ? document.body.scrollHeight : 0)",
            false,
        )?
        .max(1.0);
        let width_in = f64::from(o.viewport_width) / 96.0 * p.scale;
        let height_in = height_px / 96.0 * p.scale;
        options.landscape = Some(false);
        options.paper_width = Some(width_in + inch(p.margin_left_mm + p.margin_right_mm));
        // A little slack so rounding never spills one line onto a second page.
        let height = height_in + inch(top + bottom) + 0.05;
        if height <= MAX_PAGE_INCHES {
            options.paper_height = Some(height);
            options.page_ranges = Some("1".to_string());
        } else {
            // Taller than a PDF page can be: as few pages as can hold it, each as tall as
            // allowed (Chromium fails the whole print otherwise).
            options.paper_height = Some(MAX_PAGE_INCHES);
        }
    }
    tab.print_to_pdf(Some(options)).map_err(|e| {
        let text = e.to_string();
        if text.contains("Printing failed") {
            // The page itself cannot be printed: another browser would fail the same way.
            RenderError::Target(format!("Chromium could not print the page ({text})"))
        } else {
            browser_err(text)
        }
    })
}

fn screenshot(tab: &Tab, o: &RenderOptions) -> Result<Vec<u8>> {
    let s = &o.screenshot;
    let format = match s.format {
        ImageFormat::Png => CdpPage::CaptureScreenshotFormatOption::Png,
        ImageFormat::Jpeg => CdpPage::CaptureScreenshotFormatOption::Jpeg,
        ImageFormat::Webp => CdpPage::CaptureScreenshotFormatOption::Webp,
    };
    let quality = if s.format == ImageFormat::Png {
        None
    } else {
        Some(u32::from(s.quality.unwrap_or(90)))
    };
    let clip = if s.full_page {
        let height = eval_f64(
            tab,
            "Math.max(document.documentElement.scrollHeight, document.body ? document.body.scrollHeight : 0)",
            false,
        )?
        .clamp(1.0, 16384.0);
        Some(CdpPage::Viewport {
            x: 0.0,
            y: 0.0,
            width: f64::from(o.viewport_width),
            height,
            scale: 1.0,
        })
    } else {
        None
    };
    let data = tab
        .call_method(CdpPage::CaptureScreenshot {
            format: Some(format),
            quality,
            clip,
            from_surface: Some(true),
            capture_beyond_viewport: Some(s.full_page),
            optimize_for_speed: None,
        })
        .map_err(browser_err)?
        .data;
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(browser_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_placeholders_and_escaping() {
        let t = band_template(Some(&Band {
            content: "<b>Page {page} of {total_pages}</b>".into(),
            height: 15.0,
        }));
        assert!(t.contains(
            "&lt;b&gt;Page <span class=\"pageNumber\"></span> of <span class=\"totalPages\"></span>"
        ));
        assert_eq!(band_template(None), "<span></span>");
    }

    #[test]
    fn network_errors_read_plainly() {
        assert_eq!(
            describe_net_error("Navigation failed: net::ERR_NAME_NOT_RESOLVED"),
            "The host name could not be resolved (net::ERR_NAME_NOT_RESOLVED)"
        );
        assert!(
            describe_net_error("net::ERR_CONNECTION_REFUSED")
                .starts_with("The connection was refused")
        );
    }
}

//! One warm Chromium per worker, relaunched when it dies and recycled after a number of jobs.
//!
//! headless_chrome makes a tab slowly (`new_tab` polls for the new target every 100 ms, then
//! attaches and enables domains), and its websocket reader holds the connection's lock while it
//! waits up to 100 ms for a message, so a call on a quiet connection can wait that long. The
//! browser therefore keeps a pool of ready pages (a fresh browser context with one tab, its
//! network domain and default viewport set) prepared ahead of need by a background thread, which
//! also closes finished pages off the jobs' path; and while jobs run, a pump keeps messages
//! flowing so no call waits for the reader's timeout.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use anyhow::Context;
use headless_chrome::browser::tab::EventListener;
use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::protocol::cdp::{Emulation, Inspector, Network, Page as CdpPage};

use crate::cdp::BrowserSession;
use headless_chrome::{Browser, LaunchOptions, Tab};

/// Flags every launch gets: no sandbox (containers run as root), nothing that would talk to
/// Google's services from a closed network, and none of the browser's own UI.
///
/// Each job's browser context gets a window of its own, and Chromium (156, as measured) builds
/// every window's omnibox popup as a WebUI page (`chrome://omnibox-popup.top-chrome/`, and an
/// AI-mode one) in a renderer of its own: some 0.3 CPU-seconds per job, more than a one-page
/// invoice's own render (docs/performance.md). Nobody types in a headless window, so those
/// features are off. This flag replaces headless_chrome's own `--disable-features` (Chromium
/// keeps the last one given), so its two features are listed here too.
pub const FLAGS: &[&str] = &[
    "--disable-features=TranslateUI,BlinkGenPropertyTrees,WebUIOmniboxPopup,WebUIOmniboxAimPopup,WebUIOmniboxFullPopup",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
    "--font-render-hinting=none",
    // headless_chrome passes --enable-automation, which gives every window (one per job's
    // context) an "automated software" infobar for the browser process to build and lay out:
    // some 0.014 CPU-s a page (docs/performance.md, engine item 11).
    "--disable-infobars",
    // A desktop's mouse: pages see `(hover: hover)` and `(pointer: fine)`, as in a desktop
    // browser, instead of headless Chromium's none/none; Playwright passes the same.
    "--blink-settings=primaryHoverType=2,availableHoverTypes=2,primaryPointerType=4,availablePointerTypes=4",
    // The compositor (software: the GPU is off) as a thread of the browser process instead of
    // a GPU process of its own: no frame crosses a process boundary, and one process fewer.
    // Some 2% of a page's CPU (docs/performance.md, engine item 13).
    "--in-process-gpu",
];

/// How long making a tab may take before the browser is given up as broken.
const NEW_TAB_TIMEOUT: Duration = Duration::from_secs(8);

/// How long preparing a page (a new tab, then a few calls to set it up) may take before the
/// browser is given up: some 0.5 s normally, [`NEW_TAB_TIMEOUT`] at worst for the tab itself.
/// Longer means a call to the tab is not going to be answered.
pub const PREPARE_TIMEOUT: Duration = Duration::from_secs(12);

/// Runs before every document's own scripts: counts what could load content only when it is
/// scrolled to (intersection observers, `scroll` and `wheel` listeners) in
/// `window.__enconvertLazy`, so that the render scrolls only pages that need it (a page with
/// none of them and no `loading="lazy"` element shows everything unscrolled).
pub const LAZY_PROBE_JS: &str = r#"(() => {
  const w = window;
  if (w.__enconvertLazy !== undefined) return;
  w.__enconvertLazy = 0;
  const IO = w.IntersectionObserver;
  if (IO) {
    w.IntersectionObserver = new Proxy(IO, {
      construct(target, args, newTarget) { w.__enconvertLazy++; return Reflect.construct(target, args, newTarget); },
    });
  }
  const add = EventTarget.prototype.addEventListener;
  EventTarget.prototype.addEventListener = new Proxy(add, {
    apply(target, self, args) {
      if (args[0] === 'scroll' || args[0] === 'wheel') w.__enconvertLazy++;
      return Reflect.apply(target, self, args);
    },
  });
  for (const o of [w, Document.prototype, HTMLElement.prototype]) {
    const d = Object.getOwnPropertyDescriptor(o, 'onscroll');
    if (d && d.set) {
      Object.defineProperty(o, 'onscroll', { ...d, set(v) { w.__enconvertLazy++; return d.set.call(this, v); } });
    }
  }
})()"#;

/// The viewport a ready page is prepared with (the API's default).
pub const DEFAULT_VIEWPORT: (u32, u32) = (1920, 1080);

/// A page of its own browser context, ready for one job.
pub struct Page {
    pub tab: Arc<Tab>,
    context_id: String,
    /// The device metrics the tab has now: width, height, scale factor.
    pub metrics: (u32, u32, f64),
    /// Set when the tab's renderer process crashed (or was killed), at any time after the
    /// page was prepared: a crashed page is never handed out, and a job on it fails at once.
    crashed: Arc<AtomicBool>,
    /// Our event listeners on the tab, removed when the page is closed: headless_chrome keeps
    /// a closed tab's event thread (and so its listeners) until the browser goes.
    listeners: Vec<Weak<Listener>>,
}

/// An event listener on a tab.
pub type Listener = dyn EventListener<Event> + Send + Sync;

impl Page {
    /// Whether the tab's renderer crashed.
    pub fn crashed(&self) -> bool {
        self.crashed.load(Ordering::SeqCst)
    }

    /// The flag [`Page::crashed`] reads, for a watcher on another thread.
    pub fn crash_flag(&self) -> Arc<AtomicBool> {
        self.crashed.clone()
    }

    /// Adds a listener to the tab's events, for as long as the page lives.
    pub fn listen(&mut self, listener: Arc<Listener>) -> anyhow::Result<()> {
        let added = self.tab.add_event_listener(listener)?;
        self.listeners.push(added);
        Ok(())
    }
}

#[derive(Default)]
struct PoolState {
    ready: VecDeque<Page>,
    /// Finished pages to close (tab and context).
    finished: Vec<Page>,
    /// Pages being prepared now, by when each started.
    preparing: HashMap<u64, Instant>,
    /// The key of the next page prepared.
    next_prepare: u64,
    /// A page's preparation outlasted [`PREPARE_TIMEOUT`]: a call to its tab will not be
    /// answered (its renderer died while the tab was being set up), so the browser is
    /// replaced, and killed once no job is on it, which frees the preparing thread.
    stuck: bool,
    /// Jobs holding a page of this browser now.
    active: usize,
    /// Jobs preparing a page of their own, none being ready: they wait on calls, not on CPU.
    waiting: usize,
    /// The browser was replaced: prepare nothing more.
    retired: bool,
    /// Preparing a page failed. headless_chrome stops handling the browser's events when it
    /// cannot attach to a new tab (a renderer killed while the tab was being made), after
    /// which no new tab ever appears: the browser is replaced before its next job.
    broken: bool,
    /// Jobs that gave up on a page while a call to it was still pending: such a call is never
    /// answered (headless_chrome waits for it as long as the browser lives), so once only
    /// those jobs are left on the browser it is killed, which fails the calls.
    abandoned: usize,
}

/// The ready and finished pages of one browser, shared with its background threads.
struct Pool {
    state: Mutex<PoolState>,
    changed: Condvar,
    /// Ready pages to keep.
    target: usize,
    /// Where jobs' contexts are disposed of.
    session: BrowserSession,
}

impl Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

struct Slot {
    browser: Arc<Browser>,
    control: Arc<Tab>,
    pool: Arc<Pool>,
    jobs: u64,
}

impl Slot {
    fn handle(&self) -> Handle {
        Handle {
            browser: self.browser.clone(),
            control: self.control.clone(),
            pool: self.pool.clone(),
        }
    }
}

/// A browser and its control tab (a page of the default context that lives as long as the
/// browser; the message pump runs on it).
#[derive(Clone)]
pub struct Handle {
    pub browser: Arc<Browser>,
    pub control: Arc<Tab>,
    pool: Arc<Pool>,
}

impl Handle {
    /// A ready page (made now if the pool is empty). Give it back with [`Handle::release`].
    /// Pages whose renderer died while they waited are closed, not handed out.
    pub fn page(&self) -> anyhow::Result<Page> {
        let ready = {
            let mut state = self.pool.lock();
            state.active += 1;
            let mut found = None;
            while let Some(page) = state.ready.pop_front() {
                if page.crashed() {
                    tracing::warn!("a ready page's renderer crashed; closing it");
                    state.finished.push(page);
                } else {
                    found = Some(page);
                    break;
                }
            }
            if found.is_none() {
                state.waiting += 1;
            }
            self.pool.changed.notify_all();
            found
        };
        if let Some(page) = ready {
            return Ok(page);
        }
        let prepared = prepare(&self.browser, &self.pool.session);
        {
            let mut state = self.pool.lock();
            state.waiting = state.waiting.saturating_sub(1);
            if prepared.is_err() {
                state.broken = true;
                state.active = state.active.saturating_sub(1);
            }
            self.pool.changed.notify_all();
        }
        prepared
    }

    /// Hands a finished page to the background thread, which closes its tab and disposes its
    /// context (with its cookies, storage and cache).
    pub fn release(&self, page: Page) {
        let mut state = self.pool.lock();
        state.finished.push(page);
        state.active = state.active.saturating_sub(1);
        self.pool.changed.notify_all();
    }

    /// A job gives up on its page while a call to it may still be pending (the renderer
    /// died, or the deadline passed with the browser not answering). The browser is replaced
    /// for the next jobs and killed once no other job is on it; that ends the pending call
    /// and frees the thread waiting for it.
    pub fn abandon(&self) {
        let mut state = self.pool.lock();
        state.abandoned += 1;
        state.retired = true;
        state.ready.clear();
        self.pool.changed.notify_all();
    }
}

/// A fresh context with one tab, network events on and the default viewport set.
fn prepare(browser: &Browser, session: &BrowserSession) -> anyhow::Result<Page> {
    let started = Instant::now();
    let context = browser.new_context()?;
    let context_id = context.get_id().to_string();
    let tab = match context.new_tab() {
        Ok(tab) => tab,
        Err(e) => {
            let _ = session.dispose_context(&context_id);
            return Err(e);
        }
    };
    let mut page = Page {
        tab,
        context_id,
        metrics: (DEFAULT_VIEWPORT.0, DEFAULT_VIEWPORT.1, 1.0),
        crashed: Arc::new(AtomicBool::new(false)),
        listeners: Vec::new(),
    };
    let flag = page.crashed.clone();
    let setup = page
        .listen(Arc::new(move |event: &Event| {
            if matches!(event, Event::InspectorTargetCrashed(_)) {
                flag.store(true, Ordering::SeqCst);
            }
        }))
        // The inspector domain reports the renderer's crash (`Inspector.targetCrashed`).
        .and_then(|_| page.tab.call_method(Inspector::Enable(None)).map(drop))
        .and_then(|_| {
            page.tab.call_method(Network::Enable {
                max_total_buffer_size: None,
                max_resource_buffer_size: None,
                max_post_data_size: None,
                report_direct_socket_traffic: None,
                enable_durable_messages: None,
            })
        })
        .and_then(|_| {
            page.tab
                .call_method(CdpPage::AddScriptToEvaluateOnNewDocument {
                    source: LAZY_PROBE_JS.to_string(),
                    world_name: None,
                    include_command_line_api: None,
                    run_immediately: None,
                })
                .map(drop)
        })
        .and_then(|_| set_metrics(&page.tab, DEFAULT_VIEWPORT.0, DEFAULT_VIEWPORT.1, 1.0))
        // A tab of a new context opens in the background, where Chromium throttles timers and
        // defers frames: pages would wait for their first frame (and fonts.ready) far longer.
        .and_then(|_| {
            page.tab
                .call_method(Emulation::SetFocusEmulationEnabled { enabled: true })
                .map(drop)
        });
    if let Err(e) = setup {
        close(session, page);
        return Err(e);
    }
    tracing::debug!(ms = started.elapsed().as_millis() as u64, "page prepared");
    Ok(page)
}

/// Sets the tab's viewport and device scale factor.
pub fn set_metrics(tab: &Tab, width: u32, height: u32, scale: f64) -> anyhow::Result<()> {
    tab.call_method(Emulation::SetDeviceMetricsOverride {
        width,
        height,
        device_scale_factor: scale,
        mobile: false,
        scale: None,
        screen_width: None,
        screen_height: None,
        position_x: None,
        position_y: None,
        dont_set_visible_size: None,
        screen_orientation: None,
        viewport: None,
        display_feature: None,
        device_posture: None,
    })
    .map(drop)
}

/// Disposes the page's context, which closes its tab and drops its cookies, storage and cache.
fn close(session: &BrowserSession, page: Page) {
    for listener in &page.listeners {
        let _ = page.tab.remove_event_listener(listener);
    }
    if let Err(e) = session.dispose_context(&page.context_id) {
        tracing::debug!(error = %e, "could not dispose a browser context");
        let _ = page.tab.close(false);
    }
}

/// Closes finished pages and keeps `target` pages ready, until the browser is gone. Pages are
/// prepared on threads of their own: each waits on headless_chrome's 100 ms polls, so several
/// at once keep up with several jobs at once.
fn keeper(browser: Weak<Browser>, pool: Arc<Pool>) {
    loop {
        let (finished, to_prepare) = {
            let mut state = pool.lock();
            let wanted = |s: &PoolState| {
                if s.retired {
                    0
                } else {
                    pool.target
                        .saturating_sub(s.ready.len() + s.preparing.len())
                }
            };
            while state.finished.is_empty() && wanted(&state) == 0 {
                if !state.stuck
                    && state
                        .preparing
                        .values()
                        .any(|started| started.elapsed() > PREPARE_TIMEOUT)
                {
                    tracing::warn!("a page's preparation is stuck; giving the browser up");
                    state.stuck = true;
                    state.retired = true;
                    state.ready.clear();
                }
                if state.retired
                    && (state.abandoned > 0 || state.stuck)
                    && state.active <= state.abandoned
                {
                    drop(state);
                    if let Some(b) = browser.upgrade() {
                        tracing::warn!("killing a Chromium with calls that will not be answered");
                        kill(&b);
                    }
                    return;
                }
                let (s, timeout) = pool
                    .changed
                    .wait_timeout(state, Duration::from_secs(1))
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                state = s;
                if timeout.timed_out() && browser.strong_count() == 0 {
                    return;
                }
            }
            let n = wanted(&state);
            let keys: Vec<u64> = (0..n)
                .map(|_| {
                    let key = state.next_prepare;
                    state.next_prepare += 1;
                    state.preparing.insert(key, Instant::now());
                    key
                })
                .collect();
            (std::mem::take(&mut state.finished), keys)
        };
        if browser.strong_count() == 0 {
            return;
        }
        for key in to_prepare {
            let (weak, shared) = (browser.clone(), pool.clone());
            let spawned = std::thread::Builder::new()
                .name("chromium-prepare".to_string())
                .spawn(move || {
                    let page = weak.upgrade().map(|b| prepare(&b, &shared.session));
                    let pool = shared;
                    let mut state = pool.lock();
                    state.preparing.remove(&key);
                    match page {
                        Some(Ok(page)) if !state.retired => state.ready.push_back(page),
                        Some(Ok(_)) | None => {}
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "could not prepare a page");
                            state.broken = true;
                            drop(state);
                            // Not at once again: the keeper retries after this pause.
                            std::thread::sleep(Duration::from_millis(500));
                            state = pool.lock();
                        }
                    }
                    pool.changed.notify_all();
                    drop(state);
                });
            if spawned.is_err() {
                pool.lock().preparing.remove(&key);
            }
        }
        for page in finished {
            // A call to a tab whose renderer died may go unanswered until the call timeout:
            // never on this thread, which keeps pages coming.
            let shared = pool.clone();
            if let Err(e) = std::thread::Builder::new()
                .name("chromium-close".to_string())
                .spawn(move || close(&shared.session, page))
            {
                tracing::warn!(error = %e, "could not start a thread to close a page");
            }
        }
    }
}

/// How long the pump goes on after the last job ended.
const PUMP_LINGER: Duration = Duration::from_secs(30);

/// Whether the pump should tick: while jobs run, unless there are more of them than cores (and
/// none waits for a page of its own), and while it lingers after the last one.
fn pump_wanted(active: usize, waiting: usize, cores: usize, lingering: bool) -> bool {
    (active > 0 && (active <= cores || waiting > 0)) || lingering
}

/// While jobs hold pages (and for [`PUMP_LINGER`] after), the control tab logs to the console every few milliseconds, so the
/// websocket reader receives a steady stream of small messages: it returns from each read and
/// the jobs' calls get the connection's lock, instead of waiting for its 100 ms read timeout.
/// (Calls from our side would not do: they wait for the same lock.)
///
/// The pump pauses while more jobs run than the machine has cores. It costs some 0.13 of a
/// core (the control tab's renderer, the browser process, our reader), and CPU is then what
/// limits throughput; a job waiting for the lock leaves its core to the others (4-18% more
/// pages a second in 4 of 5 alternating runs at 4 jobs on 2 cores, docs/performance.md). With as many jobs as
/// cores or fewer, a wait would leave a core idle, so it runs. It also runs while a job
/// prepares a page of its own (a fresh browser, no page ready yet): those jobs wait on a
/// string of calls, not on CPU, and without it a fresh browser's first pages took 1.4-3.7 s
/// each instead of ~0.5 s, the machine idle meanwhile.
fn pump(browser: Weak<Browser>, control: Arc<Tab>, pool: Arc<Pool>) {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    const START: &str = "window.__tick = window.__tick || setInterval(() => console.debug(''), 3)";
    const STOP: &str = "clearInterval(window.__tick); window.__tick = 0";
    // The control tab's renderer can die too (a page killing renderers); a call to it would
    // then never be answered, so the crash is watched and the tab navigated to get a new one.
    let crashed = Arc::new(AtomicBool::new(false));
    let flag = crashed.clone();
    if control
        .add_event_listener(Arc::new(move |event: &Event| {
            if matches!(event, Event::InspectorTargetCrashed(_)) {
                flag.store(true, Ordering::SeqCst);
            }
        }))
        .and_then(|_| control.call_method(Inspector::Enable(None)).map(drop))
        .and_then(|_| {
            control
                .call_method(Emulation::SetFocusEmulationEnabled { enabled: true })
                .map(drop)
        })
        .and_then(|_| control.enable_runtime().map(drop))
        .is_err()
    {
        return;
    }
    let mut ticking = false;
    // When the last job ended: the pump goes on for PUMP_LINGER, so that the next job (a
    // client's next sync call, say) does not start on a quiet connection.
    let mut idle_since: Option<Instant> = None;
    loop {
        let script = {
            let mut state = pool.lock();
            loop {
                let lingering = if state.active > 0 {
                    idle_since = None;
                    false
                } else {
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    since.elapsed() < PUMP_LINGER
                };
                let wanted = pump_wanted(state.active, state.waiting, cores, lingering);
                if wanted != ticking {
                    ticking = wanted;
                    tracing::debug!(
                        ticking,
                        active = state.active,
                        waiting = state.waiting,
                        "message pump"
                    );
                    break if ticking { START } else { STOP };
                }
                let wait = if lingering {
                    PUMP_LINGER.saturating_sub(idle_since.map_or(Duration::ZERO, |t| t.elapsed()))
                } else {
                    Duration::from_secs(1)
                };
                let (s, timeout) = pool
                    .changed
                    .wait_timeout(
                        state,
                        wait.clamp(Duration::from_millis(10), Duration::from_secs(1)),
                    )
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                state = s;
                if timeout.timed_out() && browser.strong_count() == 0 {
                    return;
                }
            }
        };
        if browser.strong_count() == 0 {
            return;
        }
        if crashed.swap(false, Ordering::SeqCst) {
            let revived = control.call_method(CdpPage::Navigate {
                url: "about:blank".to_string(),
                referrer: None,
                transition_Type: None,
                frame_id: None,
                referrer_policy: None,
            });
            if let Err(e) = revived {
                tracing::warn!(error = %e, "the browser's message pump stopped");
                return;
            }
            tracing::info!("the control tab's renderer was replaced");
        }
        if let Err(e) = control.evaluate(script, false) {
            tracing::warn!(error = %e, "the browser's message pump stopped");
            return;
        }
    }
}

/// Jobs one browser renders before it is replaced (`ENCONVERT_BROWSER_RECYCLE_AFTER`'s default
/// too). A launch with its control tab and ready pages costs a few CPU-seconds: replacing
/// the browser every 100 jobs cost 3-6% of a page's CPU against every 1000, side by side
/// (docs/performance.md, engine item 12). Until its browser goes, headless_chrome keeps a
/// thread and the network responses of every closed tab, ~120 KiB a job in the worker.
pub const DEFAULT_RECYCLE_AFTER: u64 = 500;

/// A shared, lazily (re)launched browser.
#[derive(Clone)]
pub struct Chrome {
    path: PathBuf,
    /// Ready pages to keep per browser.
    ready_pages: usize,
    /// Flags added to [`FLAGS`] (the egress proxy's).
    extra_args: Vec<String>,
    /// Jobs one browser renders before it is replaced, bounding leaks in long runs.
    recycle_after: u64,
    slot: Arc<Mutex<Slots>>,
}

/// The browser jobs get, and the one launched ahead to replace it at its recycle.
#[derive(Default)]
struct Slots {
    current: Option<Slot>,
    successor: Option<Successor>,
}

/// A browser being launched ahead of a recycle, on a thread of its own.
struct Successor {
    launching: std::thread::JoinHandle<anyhow::Result<Slot>>,
    /// Its process id, once it runs.
    pid: Arc<std::sync::OnceLock<u32>>,
}

/// How many jobs before its recycle a browser's successor is launched: enough for the
/// successor to start and prepare its pages (~1.5 s) while the old one still renders. Without
/// it, the jobs after a recycle waited for the launch and then prepared their own pages on a
/// fresh browser: 3-4 s with the machine idle, at every recycle (docs/performance.md).
fn successor_lead(ready_pages: usize) -> u64 {
    u64::try_from(ready_pages.saturating_mul(3)).unwrap_or(u64::MAX)
}

/// Whether a browser that has taken `jobs` jobs should have its successor launched now. Only
/// where the recycle is far enough apart that two browsers live at once for a small share of
/// the time.
fn successor_due(jobs: u64, recycle_after: u64, ready_pages: usize) -> bool {
    let lead = successor_lead(ready_pages);
    recycle_after >= lead.saturating_mul(4) && jobs + lead >= recycle_after
}

impl Chrome {
    /// `ready_pages`: pages kept prepared ahead of need (the worker's concurrency);
    /// `extra_args` are added to [`FLAGS`] (the egress proxy's flags).
    pub fn new(path: PathBuf, ready_pages: usize, extra_args: Vec<String>) -> Self {
        Chrome {
            path,
            ready_pages: ready_pages.max(1),
            extra_args,
            recycle_after: DEFAULT_RECYCLE_AFTER,
            slot: Arc::new(Mutex::new(Slots::default())),
        }
    }

    /// Replace the browser after `jobs` jobs (default [`DEFAULT_RECYCLE_AFTER`]).
    pub fn recycle_after(mut self, jobs: u64) -> Self {
        self.recycle_after = jobs.max(1);
        self
    }

    fn launch(&self) -> anyhow::Result<Browser> {
        let args: Vec<&OsStr> = FLAGS
            .iter()
            .map(OsStr::new)
            .chain(self.extra_args.iter().map(OsStr::new))
            .collect();
        let options = LaunchOptions {
            headless: true,
            sandbox: false,
            path: Some(self.path.clone()),
            args,
            // headless_chrome waits this long for the answer to any call, and ends its
            // handling of the browser's events (for good: a later event then closes the
            // connection) after as long without one, so it cannot be short. Calls that are
            // never answered (a tab whose renderer died) are ended by killing the browser
            // (see `Handle::abandon`).
            idle_browser_timeout: Duration::from_secs(24 * 3600),
            // No window size: each page gets its viewport by emulation (`set_metrics`), and
            // a window as large as the viewport (headless_chrome's `--window-size`) cost the
            // GPU process some 0.04 CPU-s a page more, 4.5-5.5% of a page's CPU in all
            // (docs/performance.md, engine item 10). Chromium's headless default (800x600)
            // is what Playwright and Puppeteer run with.
            window_size: None,
            // headless_chrome passes --ignore-certificate-errors unless told not to: a page
            // behind an invalid certificate (expired, self-signed, another host's, or a
            // man in the middle's) must fail, as it does in a browser, not render.
            ignore_certificate_errors: false,
            ..LaunchOptions::default()
        };
        let browser = Browser::new(options)
            .with_context(|| format!("failed to launch Chromium at {}", self.path.display()))?;
        // Bounds the wait for a new tab (some 0.4 s normally): a browser whose event handling
        // stopped is noticed in seconds, not after headless_chrome's default of 20.
        browser.set_default_timeout(NEW_TAB_TIMEOUT);
        tracing::info!(pid = ?browser.get_process_id(), "Chromium launched");
        enconvert_metrics::browser_launched();
        Ok(browser)
    }

    /// The current browser, launched if there is none (blocking: call from a blocking thread).
    pub fn get(&self) -> anyhow::Result<Handle> {
        let mut slots = self
            .slot
            .lock()
            .map_err(|_| anyhow::anyhow!("browser lock poisoned"))?;
        if let Some(s) = slots.current.as_mut() {
            let (broken, retired) = {
                let state = s.pool.lock();
                (state.broken, state.retired)
            };
            if retired {
                tracing::info!("replacing a Chromium given up by a job");
                enconvert_metrics::browser_restarted("failed");
            } else if broken {
                tracing::warn!("replacing a Chromium that could not prepare a page");
                enconvert_metrics::browser_restarted("failed");
                retire(&s.pool);
            } else if s.jobs < self.recycle_after {
                s.jobs += 1;
                let (jobs, handle) = (s.jobs, s.handle());
                if slots.successor.is_none()
                    && successor_due(jobs, self.recycle_after, self.ready_pages)
                {
                    slots.successor = self.launch_successor();
                }
                return Ok(handle);
            } else {
                tracing::info!(jobs = s.jobs, "recycling Chromium");
                enconvert_metrics::browser_restarted("recycled");
                retire(&s.pool);
            }
        }
        // The old browser (if any) is killed when the last job holding it drops its handle.
        let launched_ahead =
            slots
                .successor
                .take()
                .and_then(|successor| match successor.launching.join() {
                    Ok(Ok(slot)) => Some(slot),
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "the successor Chromium failed to start");
                        None
                    }
                    Err(_) => None,
                });
        let mut slot = match launched_ahead {
            Some(slot) => slot,
            None => self.start()?,
        };
        slot.jobs = 1;
        let handle = slot.handle();
        slots.current = Some(slot);
        Ok(handle)
    }

    /// Starts launching the browser that will replace the current one at its recycle.
    fn launch_successor(&self) -> Option<Successor> {
        let chrome = self.clone();
        let pid = Arc::new(std::sync::OnceLock::new());
        let noted = pid.clone();
        let spawned = std::thread::Builder::new()
            .name("chromium-successor".to_string())
            .spawn(move || {
                let slot = chrome.start()?;
                if let Some(p) = slot.browser.get_process_id() {
                    let _ = noted.set(p);
                }
                Ok(slot)
            });
        match spawned {
            Ok(launching) => Some(Successor { launching, pid }),
            Err(e) => {
                tracing::warn!(error = %e, "could not start a thread to launch a successor");
                None
            }
        }
    }

    /// Launches a browser with its control tab, and starts its page keeper and pump.
    fn start(&self) -> anyhow::Result<Slot> {
        let browser = Arc::new(self.launch()?);
        let started = Instant::now();
        let control = browser
            .new_tab()
            .context("failed to open the control tab")?;
        tracing::debug!(
            ms = started.elapsed().as_millis() as u64,
            "control tab opened"
        );
        let pool = Arc::new(Pool {
            state: Mutex::new(PoolState::default()),
            changed: Condvar::new(),
            target: self.ready_pages,
            session: BrowserSession::new(browser.get_ws_url()),
        });
        let (weak, shared) = (Arc::downgrade(&browser), pool.clone());
        std::thread::Builder::new()
            .name("chromium-pages".to_string())
            .spawn(move || keeper(weak, shared))
            .context("failed to start a browser thread")?;
        let (weak, tab, shared) = (Arc::downgrade(&browser), control.clone(), pool.clone());
        std::thread::Builder::new()
            .name("chromium-pump".to_string())
            .spawn(move || pump(weak, tab, shared))
            .context("failed to start a browser thread")?;
        Ok(Slot {
            browser,
            control,
            pool,
            jobs: 0,
        })
    }

    /// The process ids of the current browser and of its successor, if launched and started.
    pub fn browser_pids(&self) -> (Option<u32>, Option<u32>) {
        let Ok(slots) = self.slot.lock() else {
            return (None, None);
        };
        let current = slots
            .current
            .as_ref()
            .and_then(|s| s.browser.get_process_id());
        let successor = slots.successor.as_ref().and_then(|s| s.pid.get().copied());
        (current, successor)
    }

    /// Lets the current browser go at shutdown: Chromium is killed when the last job still
    /// holding it finishes (at once when none does), instead of outliving the worker.
    pub fn shutdown(&self) {
        let (current, successor) = match self.slot.lock() {
            Ok(mut slots) => (slots.current.take(), slots.successor.take()),
            Err(_) => return,
        };
        // A successor still starting is waited for (a launch takes about a second), then
        // stopped with the rest.
        let successor = successor.and_then(|s| s.launching.join().ok()?.ok());
        for s in current.into_iter().chain(successor) {
            retire(&s.pool);
            let browser = s.browser.clone();
            drop(s);
            // A page being prepared (or a job past its grace) may still hold the browser, and
            // the process may exit before it lets go: kill Chromium now. Holding `browser`
            // keeps the child unreaped, so the pid cannot have been reused.
            if Arc::strong_count(&browser) > 1 {
                kill(&browser);
            }
            drop(browser);
            tracing::info!("Chromium stopped");
        }
    }

    /// Forgets a browser that failed, so the next job launches a fresh one.
    pub fn discard(&self, failed: &Handle) {
        if let Ok(mut slots) = self.slot.lock()
            && slots
                .current
                .as_ref()
                .is_some_and(|s| Arc::ptr_eq(&s.browser, &failed.browser))
        {
            tracing::warn!("discarding a failed Chromium");
            enconvert_metrics::browser_restarted("failed");
            if let Some(s) = slots.current.take() {
                retire(&s.pool);
            }
        }
    }

    /// Launches the browser now, so the first job does not pay for it.
    pub fn warm_up(&self) -> anyhow::Result<()> {
        self.get().map(drop)
    }
}

/// SIGKILL to the browser process. Holding `browser` keeps the child unreaped, so the pid
/// cannot have been reused.
fn kill(browser: &Browser) {
    if let Some(pid) = browser
        .get_process_id()
        .and_then(|p| i32::try_from(p).ok())
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

/// Stops preparing pages for a replaced browser; those ready die with it.
fn retire(pool: &Pool) {
    let mut state = pool.lock();
    state.retired = true;
    state.ready.clear();
    pool.changed.notify_all();
}

#[cfg(test)]
mod tests {
    use super::{DEFAULT_RECYCLE_AFTER, pump_wanted, successor_due};

    #[test]
    fn the_engine_and_the_configuration_agree_on_the_recycle() {
        let configured = enconvert_config::VARIABLES
            .iter()
            .find(|(name, _)| *name == "ENCONVERT_BROWSER_RECYCLE_AFTER")
            .map(|(_, default)| default.parse::<u64>());
        assert_eq!(configured, Some(Ok(DEFAULT_RECYCLE_AFTER)));
    }

    #[test]
    fn the_successor_is_due_a_few_jobs_before_the_recycle() {
        // Four ready pages: launched 12 jobs ahead of a recycle after 100.
        assert!(!successor_due(87, 100, 4));
        assert!(successor_due(88, 100, 4));
        assert!(successor_due(99, 100, 4));
        // Recycles closer together than four leads: no browser launched ahead (two browsers
        // would live at once much of the time).
        assert!(!successor_due(39, 40, 4));
        assert!(successor_due(9, 12, 1));
    }

    #[test]
    fn the_pump_pauses_only_while_jobs_outnumber_cores() {
        // Idle and done lingering: off; lingering after the last job: on.
        assert!(!pump_wanted(0, 0, 2, false));
        assert!(pump_wanted(0, 0, 2, true));
        // As many jobs as cores or fewer: on (a wait for the lock would idle a core).
        assert!(pump_wanted(1, 0, 2, false));
        assert!(pump_wanted(2, 0, 2, false));
        // More jobs than cores: CPU is the limit, the pump pauses...
        assert!(!pump_wanted(3, 0, 2, false));
        assert!(!pump_wanted(4, 0, 2, false));
        assert!(pump_wanted(4, 0, 4, false));
        // ...unless a job waits for a page of its own (a fresh browser): it waits on calls.
        assert!(pump_wanted(4, 1, 2, false));
        assert!(pump_wanted(3, 3, 2, false));
    }
}

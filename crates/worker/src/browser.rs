//! One warm Chromium per worker, relaunched when it dies and recycled after a number of jobs.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use headless_chrome::{Browser, LaunchOptions, Tab};

/// Flags every launch gets: no sandbox (containers run as root), and nothing that would talk
/// to Google's services from a closed network.
pub const FLAGS: &[&str] = &[
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
];

/// Jobs one browser renders before it is replaced, bounding leaks in long runs.
const RECYCLE_AFTER: u64 = 500;

struct Slot {
    browser: Arc<Browser>,
    control: Arc<Tab>,
    jobs: u64,
}

/// A browser and its control tab (a page of the default context that lives as long as the
/// browser; browser-level calls such as disposing a job's context go through it).
#[derive(Clone)]
pub struct Handle {
    pub browser: Arc<Browser>,
    pub control: Arc<Tab>,
}

/// A shared, lazily (re)launched browser.
#[derive(Clone)]
pub struct Chrome {
    path: PathBuf,
    slot: Arc<Mutex<Option<Slot>>>,
}

impl Chrome {
    pub fn new(path: PathBuf) -> Self {
        Chrome {
            path,
            slot: Arc::new(Mutex::new(None)),
        }
    }

    fn launch(&self) -> anyhow::Result<Browser> {
        let args: Vec<&OsStr> = FLAGS.iter().map(OsStr::new).collect();
        let options = LaunchOptions {
            headless: true,
            sandbox: false,
            path: Some(self.path.clone()),
            args,
            // Our own waits bound every job; a quiet browser is not a dead one.
            idle_browser_timeout: Duration::from_secs(24 * 3600),
            window_size: Some((1920, 1080)),
            ..LaunchOptions::default()
        };
        let browser = Browser::new(options)
            .with_context(|| format!("failed to launch Chromium at {}", self.path.display()))?;
        tracing::info!(pid = ?browser.get_process_id(), "Chromium launched");
        enconvert_metrics::browser_launched();
        Ok(browser)
    }

    /// The current browser, launched if there is none (blocking: call from a blocking thread).
    pub fn get(&self) -> anyhow::Result<Handle> {
        let mut slot = self
            .slot
            .lock()
            .map_err(|_| anyhow::anyhow!("browser lock poisoned"))?;
        if let Some(s) = slot.as_mut() {
            if s.jobs < RECYCLE_AFTER {
                s.jobs += 1;
                return Ok(Handle {
                    browser: s.browser.clone(),
                    control: s.control.clone(),
                });
            }
            tracing::info!(jobs = s.jobs, "recycling Chromium");
            enconvert_metrics::browser_restarted("recycled");
        }
        // The old browser (if any) is killed when the last job holding it drops its handle.
        let browser = Arc::new(self.launch()?);
        let control = browser
            .new_tab()
            .context("failed to open the control tab")?;
        *slot = Some(Slot {
            browser: browser.clone(),
            control: control.clone(),
            jobs: 1,
        });
        Ok(Handle { browser, control })
    }

    /// Forgets a browser that failed, so the next job launches a fresh one.
    pub fn discard(&self, failed: &Handle) {
        if let Ok(mut slot) = self.slot.lock()
            && slot
                .as_ref()
                .is_some_and(|s| Arc::ptr_eq(&s.browser, &failed.browser))
        {
            tracing::warn!("discarding a failed Chromium");
            enconvert_metrics::browser_restarted("failed");
            *slot = None;
        }
    }

    /// Launches the browser now, so the first job does not pay for it.
    pub fn warm_up(&self) -> anyhow::Result<()> {
        self.get().map(drop)
    }
}

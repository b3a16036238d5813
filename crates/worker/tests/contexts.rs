//! Every job gets a fresh browser context, and a finished job's context is disposed of (with
//! its cookies, storage and cache), not left in the browser until it is replaced. (It was:
//! the disposal went through a page's session, which Chromium refuses.) Real Chromium, real
//! loopback HTTP server.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::time::{Duration, Instant};

use enconvert_worker::browser::Chrome;
use enconvert_worker::cdp::BrowserSession;

mod common;
use common::{Stop, chromium, chromium_processes, render_pdf, small_site};

/// Renders `jobs` pages of a fresh loopback site, one after another; each must be a PDF.
async fn render_jobs(chrome: &Chrome, jobs: usize) {
    let base = small_site();
    for i in 0..jobs {
        render_pdf(chrome, &format!("{base}/{i}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_jobs_leave_no_browser_context_behind() {
    const READY: usize = 2;
    let chrome = Chrome::new(chromium(), READY, Vec::new());
    let _stop = Stop(chrome.clone());
    render_jobs(&chrome, 8).await;
    let handle = chrome.get().unwrap();
    let session = BrowserSession::new(handle.browser.get_ws_url());
    // Finished pages are closed by a background thread: give it a moment.
    let since = Instant::now();
    let mut contexts = session.browser_contexts().unwrap();
    while contexts.len() > READY && since.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
        contexts = session.browser_contexts().unwrap();
    }
    assert!(
        contexts.len() <= READY,
        "{} contexts after 8 jobs (the {READY} ready pages' at most)",
        contexts.len()
    );
}

/// Each job's context gets a window of its own, and Chromium builds a window's omnibox popup
/// as WebUI pages in a renderer of their own (some 0.3 CPU-seconds a job, more than a small
/// page's render). The worker's flags turn that UI off: no `browser_ui` target may exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_build_none_of_the_browsers_own_ui() {
    const READY: usize = 2;
    let chrome = Chrome::new(chromium(), READY, Vec::new());
    let _stop = Stop(chrome.clone());
    render_jobs(&chrome, 3).await;
    let handle = chrome.get().unwrap();
    let session = BrowserSession::new(handle.browser.get_ws_url());
    let targets = session.targets().unwrap();
    // The ready pages' tabs are there: the listing itself works.
    assert!(
        targets.iter().filter(|(kind, _)| kind == "page").count() >= READY,
        "{targets:?}"
    );
    let ui: Vec<_> = targets
        .iter()
        .filter(|(kind, url)| kind == "browser_ui" || url.contains(".top-chrome"))
        .collect();
    assert!(ui.is_empty(), "the browser built its own UI: {ui:?}");
}

/// The compositor runs as a thread of the browser process (`--in-process-gpu`), not in a GPU
/// process of its own: frames no longer cross a process boundary, some 2% of a page's CPU
/// (docs/performance.md, engine item 13).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_runs_no_gpu_process() {
    let chrome = Chrome::new(chromium(), 1, Vec::new());
    let _stop = Stop(chrome.clone());
    render_jobs(&chrome, 2).await;
    let (browser, _) = chrome.browser_pids();
    let kinds: Vec<String> = chromium_processes(browser.unwrap())
        .into_iter()
        .map(|(_, kind)| kind)
        .collect();
    // The listing sees Chromium's processes: the ready page's renderer is one.
    assert!(kinds.iter().any(|k| k == "renderer"), "{kinds:?}");
    assert!(!kinds.iter().any(|k| k == "gpu-process"), "{kinds:?}");
}

//! Every job gets a fresh browser context, and a finished job's context is disposed of (with
//! its cookies, storage and cache), not left in the browser until it is replaced. (It was:
//! the disposal went through a page's session, which Chromium refuses.) Real Chromium, real
//! loopback HTTP server.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::time::{Duration, Instant};

use enconvert_worker::browser::Chrome;
use enconvert_worker::cdp::BrowserSession;

mod common;
use common::{Stop, chromium, render_pdf, small_site};

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

/// The `--type=` of every live process descending from `root` (Chromium's zygotes, renderers,
/// utilities...).
fn descendant_kinds(root: u32) -> Vec<String> {
    let mut procs = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let path = entry.path();
        let Some(pid) = path
            .file_name()
            .and_then(|n| n.to_str()?.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        // The fields after the command name, which may hold spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let Some(ppid) = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        // Chromium's children rewrite their command line as one string (spaces, not NULs).
        let cmdline = std::fs::read(path.join("cmdline")).unwrap_or_default();
        let kind = cmdline
            .split(|b| *b == 0 || *b == b' ')
            .filter_map(|arg| std::str::from_utf8(arg).ok())
            .find_map(|arg| arg.strip_prefix("--type="))
            .unwrap_or("")
            .to_string();
        procs.push((pid, ppid, kind));
    }
    let mut family = vec![root];
    let mut kinds = Vec::new();
    while let Some(parent) = family.pop() {
        for (pid, _, kind) in procs.iter().filter(|(_, ppid, _)| *ppid == parent) {
            family.push(*pid);
            kinds.push(kind.clone());
        }
    }
    kinds
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
    let kinds = descendant_kinds(browser.unwrap());
    // The listing sees Chromium's processes: the ready page's renderer is one.
    assert!(kinds.iter().any(|k| k == "renderer"), "{kinds:?}");
    assert!(!kinds.iter().any(|k| k == "gpu-process"), "{kinds:?}");
}

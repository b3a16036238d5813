//! A browser is recycled after a number of jobs, and its successor is launched a few jobs
//! ahead, so that the jobs after the recycle find a started browser with pages ready instead
//! of waiting for a launch (which left the machine idle for 3-4 s at every recycle). Real
//! Chromium, real loopback HTTP server.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::time::{Duration, Instant};

use enconvert_worker::browser::Chrome;

mod common;
use common::{Stop, chromium, render_pdf, small_site};

async fn render(chrome: &Chrome, base: &str, i: usize) {
    render_pdf(chrome, &format!("{base}/{i}")).await;
}

/// Whether the process runs (a zombie does not).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let since = Instant::now();
    while !done() {
        assert!(
            since.elapsed() < Duration::from_secs(20),
            "timed out waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Recycling after 12 jobs with one ready page: the successor is launched at the 9th job
/// (three jobs ahead), takes over at the 13th, and the old browser goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_successor_is_launched_ahead_and_takes_over_at_the_recycle() {
    let chrome = Chrome::new(chromium(), 1, Vec::new()).recycle_after(12);
    let _stop = Stop(chrome.clone());
    let base = small_site();
    for i in 1..=8 {
        render(&chrome, &base, i).await;
    }
    let (first, successor) = chrome.browser_pids();
    let first = first.unwrap();
    assert_eq!(successor, None, "a successor launched before it was due");
    render(&chrome, &base, 9).await;
    let mut next = None;
    wait_until("the successor runs", || {
        next = chrome.browser_pids().1;
        next.is_some()
    });
    let next = next.unwrap();
    assert_ne!(next, first);
    for i in 10..=12 {
        render(&chrome, &base, i).await;
        assert_eq!(
            chrome.browser_pids(),
            (Some(first), Some(next)),
            "job {i} is still the first browser's"
        );
    }
    render(&chrome, &base, 13).await;
    assert_eq!(chrome.browser_pids(), (Some(next), None));
    wait_until("the recycled browser exits", || !running(first));
    assert!(running(next));
}

/// A worker stopping while a successor runs stops both browsers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_a_launched_successor_too() {
    let chrome = Chrome::new(chromium(), 1, Vec::new()).recycle_after(12);
    let base = small_site();
    for i in 1..=9 {
        render(&chrome, &base, i).await;
    }
    let mut pids = (None, None);
    wait_until("the successor runs", || {
        pids = chrome.browser_pids();
        pids.1.is_some()
    });
    let (Some(current), Some(successor)) = pids else {
        unreachable!()
    };
    chrome.shutdown();
    wait_until("both browsers exit", || {
        !running(current) && !running(successor)
    });
    assert_eq!(chrome.browser_pids(), (None, None));
}

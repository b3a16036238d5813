//! The render engine alone, without queue, database or storage: `N` renders of the given URLs,
//! `C` at a time, on one browser. Used to profile the engine against the reference renderer
//! (docs/performance.md).
//!
//! `cargo run --release -p enconvert-worker --example render_loop -- N C URL...`
//! (`RENDER_LOOP_ARGS="--flag ..."` adds Chromium flags; `RENDER_LOOP_PROXY=1` runs Chromium
//! behind the egress guard proxy, as the worker does; `RENDER_LOOP_GAP_MS=N` pauses N ms
//! between one lane's renders, as a client making one call after another does;
//! `RENDER_LOOP_BODY='{"enable_scroll": false}'` changes the request's fields;
//! `RENDER_LOOP_RECYCLE=N` replaces the browser after N jobs, as
//! `ENCONVERT_BROWSER_RECYCLE_AFTER` does in the worker; `RENDER_LOOP_READY=N` keeps N pages
//! ready instead of `C`.)

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use enconvert_domain::request::{Endpoint, RawConvertRequest};
use enconvert_worker::browser::Chrome;
use enconvert_worker::render::{self, TabSlot};

fn main() -> anyhow::Result<()> {
    // RUST_LOG=enconvert_worker=debug shows each render's phases.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.first().map_or(Ok(40), |s| s.parse())?;
    let c: usize = args.get(1).map_or(Ok(4), |s| s.parse())?;
    let urls: Vec<String> = args.iter().skip(2).cloned().collect();
    anyhow::ensure!(!urls.is_empty(), "usage: render_loop N C URL...");
    let mut body = serde_json::json!({
        "url": urls[0],
        "single_page": false,
        "pdf_options": {"page_size": "A4", "margins": {"top": 0, "bottom": 0, "left": 0, "right": 0}},
    });
    // RENDER_LOOP_BODY: request fields to add or change, as JSON ({"enable_scroll": false}).
    if let Ok(extra) = std::env::var("RENDER_LOOP_BODY") {
        let extra: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&extra)?;
        if let Some(fields) = body.as_object_mut() {
            fields.extend(extra);
        }
    }
    let raw: RawConvertRequest = serde_json::from_value(body)?;
    let allow = enconvert_domain::AllowList::parse("127.0.0.1").map_err(anyhow::Error::msg)?;
    let options = raw
        .validate(Endpoint::UrlToPdf, &allow)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?
        .options;
    // RENDER_LOOP_ARGS: extra Chromium flags, space-separated (to try one).
    let extra: Vec<String> = std::env::var("RENDER_LOOP_ARGS")
        .map(|v| v.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    // RENDER_LOOP_PROXY=1: behind the egress guard proxy, as the worker runs it.
    let runtime = tokio::runtime::Runtime::new()?;
    let mut extra = extra;
    if std::env::var_os("RENDER_LOOP_PROXY").is_some() {
        let proxy = runtime.block_on(enconvert_egress::proxy::GuardProxy::start(
            allow.clone(),
            tokio_util::sync::CancellationToken::new(),
        ))?;
        extra.extend(proxy.chromium_flags());
    }
    // RENDER_LOOP_READY=N: pages kept ready (the worker keeps its concurrency's worth).
    let ready = env_number("RENDER_LOOP_READY")?.unwrap_or(c);
    let mut chrome = Chrome::new("/usr/bin/chromium".into(), ready, extra);
    if let Some(jobs) = env_number("RENDER_LOOP_RECYCLE")? {
        chrome = chrome.recycle_after(jobs);
    }
    chrome.warm_up()?;
    std::thread::sleep(Duration::from_secs(1));
    let next = Arc::new(AtomicUsize::new(0));
    let bytes = Arc::new(AtomicUsize::new(0));
    let gap = Duration::from_millis(env_number("RENDER_LOOP_GAP_MS")?.unwrap_or(0));
    let started = Instant::now();
    let lanes: Vec<_> = (0..c)
        .map(|_| {
            let (chrome, next, bytes, urls, options) = (
                chrome.clone(),
                next.clone(),
                bytes.clone(),
                urls.clone(),
                options.clone(),
            );
            std::thread::spawn(move || -> anyhow::Result<Vec<u128>> {
                let mut lat = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= n {
                        return Ok(lat);
                    }
                    if i > 0 {
                        std::thread::sleep(gap);
                    }
                    let t = Instant::now();
                    let handle = chrome.get()?;
                    let slot: TabSlot = Arc::default();
                    let deadline = t + Duration::from_secs(60);
                    let file = render::render(
                        &handle,
                        &urls[i % urls.len()],
                        &options,
                        render::Limits::default(),
                        deadline,
                        &slot,
                    )
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                    bytes.fetch_add(file.len(), Ordering::SeqCst);
                    lat.push(t.elapsed().as_millis());
                    if std::env::var_os("RENDER_LOOP_VERBOSE").is_some() {
                        eprintln!("{} ms {}", t.elapsed().as_millis(), urls[i % urls.len()]);
                    }
                }
            })
        })
        .collect();
    let mut lat = Vec::new();
    for lane in lanes {
        lat.extend(
            lane.join()
                .map_err(|_| anyhow::anyhow!("a lane panicked"))??,
        );
    }
    let secs = started.elapsed().as_secs_f64();
    chrome.shutdown();
    lat.sort_unstable();
    let q = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "{{\"n\": {n}, \"conc\": {c}, \"seconds\": {secs:.2}, \"per_second\": {:.3}, \"p50_ms\": {}, \"p95_ms\": {}, \"mean_output_bytes\": {}}}",
        n as f64 / secs,
        q(0.5),
        q(0.95),
        bytes.load(Ordering::SeqCst) / n.max(1)
    );
    Ok(())
}

/// A number from the environment: `None` when unset; an error when set to something else, so
/// that a mistyped setting is not measured as the default.
fn env_number<T: std::str::FromStr>(name: &str) -> anyhow::Result<Option<T>> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| anyhow::anyhow!("{name}={v:?} is not a number")),
        Err(_) => Ok(None),
    }
}

//! A page past the size limits fails at once with a clear error, instead of loading on until
//! the render's deadline (or Chromium's memory runs out): an HTML document over
//! `max_document_bytes`, or a page loading more than `max_page_bytes` in all. Pages within the
//! limits render. Real Chromium, real loopback HTTP server.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use enconvert_worker::browser::Chrome;
use enconvert_worker::render::{Limits, RenderError};
use enconvert_worker::render_page;

mod common;
use common::{Stop, chromium, options};

const KIB: usize = 1024;

/// A loopback site:
/// - `/endless`: an HTML comment sent in 64 KiB chunks, forever (nothing to lay out, so
///   Chromium reads it as fast as it comes even on a loaded machine; a growing table is read
///   ever more slowly);
/// - `/table/N`: an HTML table of about N KiB;
/// - `/scripts/N`: a small document with N scripts of 256 KiB each (`/js/i`; a script is read
///   to its end, where an image that does not decode may be cut short).
fn site() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let n = stream.read(&mut buf).unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let rows = |kib: usize| {
                    let row = "<tr><td>row</td><td>of a table that never ends</td></tr>\n";
                    row.repeat(kib * KIB / row.len())
                };
                if path == "/endless" {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n<!doctype html><h1>Endless</h1><!--"
                    );
                    let chunk = "a comment that never ends\n".repeat(64 * KIB / 26);
                    while stream.write_all(chunk.as_bytes()).is_ok() {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    return;
                }
                let (kind, body): (&str, Vec<u8>) = if let Some(kib) = path.strip_prefix("/table/")
                {
                    let kib = kib.parse().unwrap_or(1);
                    let html = format!(
                        "<!doctype html><title>t</title><table>{}</table>",
                        rows(kib)
                    );
                    ("text/html", html.into_bytes())
                } else if let Some(n) = path.strip_prefix("/scripts/") {
                    let n: usize = n.parse().unwrap_or(1);
                    let scripts: String = (0..n)
                        .map(|i| format!("<script src=\"/js/{i}\"></script>"))
                        .collect();
                    let html = format!("<!doctype html><title>s</title><h1>Scripts</h1>{scripts}");
                    ("text/html", html.into_bytes())
                } else {
                    // A comment as long as a big library.
                    let mut js = b"/*".to_vec();
                    js.resize(256 * KIB - 2, b' ');
                    js.extend_from_slice(b"*/");
                    ("text/javascript", js)
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(&body);
            });
        }
    });
    format!("http://{addr}")
}

fn limits(document_kib: usize, page_kib: usize) -> Limits {
    Limits {
        max_document_bytes: (document_kib * KIB) as u64,
        max_page_bytes: (page_kib * KIB) as u64,
        ..Limits::default()
    }
}

async fn render(
    chrome: &Chrome,
    url: &str,
    limits: Limits,
    within: Duration,
) -> Result<Vec<u8>, RenderError> {
    render_page(chrome, url, &options(), limits, within).await
}

fn too_large(result: &Result<Vec<u8>, RenderError>, what: &str) -> bool {
    matches!(result, Err(RenderError::Target(m)) if m.starts_with("The page is too large") && m.contains(what))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_that_never_ends_fails_as_too_large_long_before_its_deadline() {
    let chrome = Chrome::new(chromium(), 1, Vec::new());
    let _stop = Stop(chrome.clone());
    let base = site();
    let deadline = Duration::from_secs(60);
    let started = Instant::now();
    let result = render(
        &chrome,
        &format!("{base}/endless"),
        limits(2048, 1 << 20),
        deadline,
    )
    .await;
    assert!(
        too_large(&result, "HTML document passed the limit of 2 MiB"),
        "{:?}",
        result.map(|f| f.len())
    );
    assert!(started.elapsed() < deadline / 4, "{:?}", started.elapsed());
    // The browser goes on with the next page.
    let pdf = render(
        &chrome,
        &format!("{base}/table/20"),
        Limits::default(),
        deadline,
    )
    .await
    .unwrap();
    assert!(pdf.starts_with(b"%PDF"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_limit_fails_only_the_pages_past_it() {
    let chrome = Chrome::new(chromium(), 2, Vec::new());
    let _stop = Stop(chrome.clone());
    let base = site();
    let within = Duration::from_secs(40);
    // A 600 KiB document: over a 512 KiB document limit, within 1 MiB.
    let table = format!("{base}/table/600");
    let result = render(&chrome, &table, limits(512, 1 << 20), within).await;
    assert!(
        too_large(&result, "HTML document passed the limit of 0.5 MiB"),
        "{:?}",
        result.map(|f| f.len())
    );
    let pdf = render(&chrome, &table, limits(1024, 1 << 20), within)
        .await
        .unwrap();
    assert!(pdf.starts_with(b"%PDF"));

    // Eight scripts of 256 KiB: 2 MiB in all, each response small, the document tiny.
    let scripts = format!("{base}/scripts/8");
    let result = render(&chrome, &scripts, limits(512, 1024), within).await;
    assert!(
        too_large(&result, "loaded more than the limit of 1 MiB"),
        "{:?}",
        result.map(|f| f.len())
    );
    let pdf = render(&chrome, &scripts, limits(512, 4096), within)
        .await
        .unwrap();
    assert!(pdf.starts_with(b"%PDF"));
}

//! What the worker's Chromium tests share.
#![allow(dead_code, reason = "each test file uses part of it")]
#![expect(clippy::unwrap_used, reason = "tests")]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use enconvert_domain::address::AllowList;
use enconvert_domain::request::{Endpoint, RenderOptions, parse_body};
use enconvert_worker::browser::Chrome;
use enconvert_worker::render::Limits;
use enconvert_worker::render_page;

/// The Chromium the tests launch (`ENCONVERT_CHROMIUM_PATH`, else Debian's).
pub fn chromium() -> PathBuf {
    std::env::var_os("ENCONVERT_CHROMIUM_PATH")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// The API's defaults for a PDF of a loopback page.
pub fn options() -> RenderOptions {
    let allow = AllowList::parse("127.0.0.1").unwrap();
    parse_body(br#"{"url": "http://127.0.0.1/"}"#)
        .unwrap()
        .validate(Endpoint::UrlToPdf, &allow)
        .unwrap()
        .options
}

/// The processes under `root` (transitively: renderers are the zygote's children), each as
/// its pid and its `--type=` (`renderer`, `zygote`, `gpu-process`...; empty when none).
pub fn chromium_processes(root: u32) -> Vec<(u32, String)> {
    let mut procs = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: the command may hold spaces and parentheses.
        let Some(ppid) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        procs.push((pid, ppid));
    }
    let mut family = vec![root];
    let mut found = Vec::new();
    while let Some(parent) = family.pop() {
        for &(pid, _) in procs.iter().filter(|(_, ppid)| *ppid == parent) {
            family.push(pid);
            // Chromium's children rewrite their command line as one string (spaces, not NULs).
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let kind = String::from_utf8_lossy(&cmdline)
                .split(['\0', ' '])
                .find_map(|arg| arg.strip_prefix("--type="))
                .unwrap_or("")
                .to_string();
            found.push((pid, kind));
        }
    }
    found
}

/// Stops Chromium when a test ends, even by a panic.
pub struct Stop(pub Chrome);

impl Drop for Stop {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}

/// A loopback server answering every request with a small page; its base URL.
pub fn small_site() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let body = "<!doctype html><title>p</title><h1>A page</h1>";
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

/// Renders `url` with the API's defaults (30 s at most); it must make a PDF.
pub async fn render_pdf(chrome: &Chrome, url: &str) -> Vec<u8> {
    let pdf = render_page(
        chrome,
        url,
        &options(),
        Limits::default(),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert!(pdf.starts_with(b"%PDF"), "{url} made no PDF");
    pdf
}

//! A page behind an invalid TLS certificate fails with a clear error instead of rendering.
//! headless_chrome launches Chromium with --ignore-certificate-errors unless told otherwise,
//! and did here until this test. Real Chromium; a real TLS server (openssl s_server, on
//! loopback) with a self-signed certificate.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use enconvert_worker::browser::Chrome;
use enconvert_worker::render::{Limits, RenderError};
use enconvert_worker::render_page;

mod common;
use common::{Stop, chromium, options};

/// `openssl s_server` on a free loopback port, killed when dropped.
struct TlsServer {
    child: Child,
    port: u16,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serves `openssl s_server -www` (a status page for any GET) with a fresh self-signed
/// certificate for 127.0.0.1.
fn self_signed_server(dir: &Path) -> TlsServer {
    let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(made.success(), "openssl could not make a certificate");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = TlsServer { child, port };
    let since = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "openssl s_server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_behind_an_invalid_certificate_fails_and_is_not_rendered() {
    let dir = std::env::temp_dir().join(format!("enconvert-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let server = self_signed_server(&dir);
    let chrome = Chrome::new(chromium(), 1, Vec::new());
    let _stop = Stop(chrome.clone());
    let rendered = render_page(
        &chrome,
        &format!("https://127.0.0.1:{}/", server.port),
        &options(),
        Limits::default(),
        Duration::from_secs(30),
    )
    .await;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    match rendered {
        Err(RenderError::Target(message)) => assert!(
            message.contains("TLS certificate is not valid") && message.contains("CERT"),
            "{message}"
        ),
        Err(other) => panic!("failed, but not as the page's own error: {other}"),
        Ok(pdf) => panic!(
            "a page behind a self-signed certificate rendered ({} bytes)",
            pdf.len()
        ),
    }
}

//! A guarding forward proxy for Chromium.
//!
//! The worker launches Chromium with `--proxy-server` pointing here and
//! `--proxy-bypass-list=<-loopback>`, so every request a page makes (the document, its
//! redirects, images, iframes, fetches, workers, WebSockets, meta refreshes) comes through
//! this proxy, loopback included. Each request's host is resolved here, the addresses are
//! judged by the same rules as the submit-time check ([`AllowList::permits`]), and the proxy
//! connects to exactly an address it judged, so a name that rebinds cannot slip a private
//! address in between the check and the connection. Refused requests get `403`, which
//! Chromium reports as a failed load.
//!
//! Plain HTTP requests are forwarded one per connection (`Connection: close` upstream), so a
//! reused client connection cannot carry a request for one host to another.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use enconvert_domain::address::AllowList;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// The largest request head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// How long a client may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Header fields that concern the hop to the proxy, not the origin.
const HOP_HEADERS: &[&str] = &[
    "proxy-connection",
    "proxy-authorization",
    "connection",
    "keep-alive",
];

/// A running proxy.
pub struct GuardProxy {
    pub addr: SocketAddr,
    pub task: tokio::task::JoinHandle<()>,
}

impl GuardProxy {
    /// Listens on `127.0.0.1` (an ephemeral port) until `cancel` fires.
    pub async fn start(allow: AllowList, cancel: CancellationToken) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = cancel.cancelled() => break,
                    accepted = listener.accept() => accepted,
                };
                match accepted {
                    Ok((client, _)) => {
                        let allow = allow.clone();
                        tokio::spawn(async move {
                            if let Err(e) = serve(client, &allow).await {
                                tracing::debug!(error = %e, "proxy connection ended");
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "proxy accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        tracing::info!(%addr, "egress guard proxy listening");
        Ok(GuardProxy { addr, task })
    }

    /// The Chromium flags that send every request through this proxy.
    pub fn chromium_flags(&self) -> Vec<String> {
        vec![
            format!("--proxy-server=http://{}", self.addr),
            // Chromium bypasses proxies for loopback unless told not to.
            "--proxy-bypass-list=<-loopback>".to_string(),
        ]
    }
}

/// One parsed request head.
struct Head {
    method: String,
    target: String,
    headers: Vec<(String, Vec<u8>)>,
    /// Bytes read past the head (the start of a body, or a tunnel's first bytes).
    rest: Vec<u8>,
}

async fn read_head(client: &mut TcpStream) -> std::io::Result<Option<Head>> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut fields = [httparse::EMPTY_HEADER; 128];
        let mut req = httparse::Request::new(&mut fields);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let head = Head {
                    method: req.method.unwrap_or_default().to_string(),
                    target: req.path.unwrap_or_default().to_string(),
                    headers: req
                        .headers
                        .iter()
                        .map(|h| (h.name.to_string(), h.value.to_vec()))
                        .collect(),
                    rest: buf[len..].to_vec(),
                };
                return Ok(Some(head));
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Ok(None),
        }
    }
}

/// The header that marks the proxy's own answers, so the renderer can tell "the proxy refused
/// or could not connect" from an answer of the site: `blocked`, `refused`, `timeout`,
/// `unresolved` or `unreachable`. Its name carries a random part chosen once per process, so
/// a site cannot forge a verdict by sending the header itself.
pub fn verdict_header() -> &'static str {
    static NAME: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        use std::hash::BuildHasher;
        let random = std::collections::hash_map::RandomState::new().hash_one(0u8);
        format!("X-Enconvert-Egress-{random:016x}")
    });
    &NAME
}

async fn answer(client: &mut TcpStream, status: &str, verdict: &str) -> std::io::Result<()> {
    let resp = format!(
        "HTTP/1.1 {status}\r\n{}: {verdict}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{verdict}",
        verdict_header(),
        verdict.len()
    );
    client.write_all(resp.as_bytes()).await?;
    client.shutdown().await
}

async fn serve(mut client: TcpStream, allow: &AllowList) -> std::io::Result<()> {
    let head = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut client)).await {
        Ok(Ok(Some(head))) => head,
        Ok(Ok(None)) | Err(_) => {
            return answer(&mut client, "400 Bad Request", "bad request").await;
        }
        Ok(Err(e)) => return Err(e),
    };
    let tunnel = head.method.eq_ignore_ascii_case("CONNECT");
    let target = if tunnel {
        authority(&head.target, 443)
    } else {
        url::Url::parse(&head.target)
            .ok()
            .filter(|u| u.scheme() == "http")
            .and_then(|u| {
                let host = u.host_str()?.trim_matches(['[', ']']).to_string();
                let port = u.port_or_known_default()?;
                let mut path = u.path().to_string();
                if let Some(q) = u.query() {
                    path.push('?');
                    path.push_str(q);
                }
                Some((host, port, path))
            })
            .map(|(h, p, path)| (h, p, Some(path)))
    };
    let Some((host, port, path)) = target else {
        return answer(&mut client, "400 Bad Request", "unsupported").await;
    };
    let mut upstream = match connect_checked(&host, port, allow).await {
        Ok(stream) => stream,
        Err(Unreached::Blocked) => {
            tracing::info!(host = %host, port, "egress proxy refused a private address");
            return answer(&mut client, "403 Forbidden", "blocked").await;
        }
        Err(Unreached::Failed(verdict)) => {
            return answer(&mut client, "502 Bad Gateway", verdict).await;
        }
    };
    if tunnel {
        client
            .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .await?;
    } else {
        let mut out =
            format!("{} {} HTTP/1.1\r\n", head.method, path.unwrap_or_default()).into_bytes();
        for (name, value) in &head.headers {
            if HOP_HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h)) {
                continue;
            }
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"Connection: close\r\n\r\n");
        upstream.write_all(&out).await?;
    }
    if !head.rest.is_empty() {
        upstream.write_all(&head.rest).await?;
    }
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

/// `host:port` (or `[v6]:port`) of a CONNECT request.
fn authority(target: &str, default_port: u16) -> Option<(String, u16, Option<String>)> {
    let url = url::Url::parse(&format!("http://{target}/")).ok()?;
    let host = url.host_str()?.trim_matches(['[', ']']).to_string();
    Some((host, url.port().unwrap_or(default_port), None))
}

/// Why no upstream connection was made.
enum Unreached {
    /// Every address is one the rules refuse.
    Blocked,
    /// `unresolved`, `refused`, `timeout` or `unreachable`.
    Failed(&'static str),
}

/// Resolves `host`, keeps the addresses the rules permit, and connects to one of them.
async fn connect_checked(host: &str, port: u16, allow: &AllowList) -> Result<TcpStream, Unreached> {
    let candidates: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| Unreached::Failed("unresolved"))?
            .collect(),
    };
    let host_allowed = allow.allows_host(host);
    let permitted: Vec<SocketAddr> = candidates
        .into_iter()
        .filter(|a| host_allowed || allow.permits(a.ip()))
        .collect();
    if permitted.is_empty() {
        return Err(Unreached::Blocked);
    }
    let mut failure = "unreachable";
    for addr in permitted {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => failure = "refused",
            Ok(Err(_)) => {}
            Err(_) => failure = "timeout",
        }
    }
    Err(Unreached::Failed(failure))
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A server that counts its connections and answers one fixed response.
    async fn server(ip: &str, body: &'static str) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let seen = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                seen.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.write_all(resp.as_bytes()).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        (addr, hits)
    }

    async fn raw(proxy: SocketAddr, request: &str) -> String {
        let mut s = TcpStream::connect(proxy).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
            .await
            .unwrap()
            .unwrap();
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn forwards_to_allowed_addresses_and_refuses_the_rest() {
        // Only 127.0.0.1 is allowed; the canary listens on 127.0.0.2, another loopback address.
        let (site, site_hits) = server("127.0.0.1", "SITE").await;
        let (canary, canary_hits) = server("127.0.0.2", "CANARY").await;
        let cancel = CancellationToken::new();
        let proxy = GuardProxy::start(AllowList::parse("127.0.0.1").unwrap(), cancel.clone())
            .await
            .unwrap();

        let ok = raw(
            proxy.addr,
            &format!("GET http://{site}/a?b=1 HTTP/1.1\r\nHost: {site}\r\nProxy-Connection: keep-alive\r\n\r\n"),
        )
        .await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(ok.ends_with("SITE"), "{ok}");

        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let refused = raw(
            proxy.addr,
            &format!("GET http://{closed}/ HTTP/1.1\r\n\r\n"),
        )
        .await;
        assert!(refused.starts_with("HTTP/1.1 502"), "{refused}");
        assert!(
            refused.contains(&format!("{}: refused", verdict_header())),
            "{refused}"
        );

        for request in [
            format!("GET http://{canary}/ HTTP/1.1\r\nHost: {canary}\r\n\r\n"),
            format!("CONNECT {canary} HTTP/1.1\r\nHost: {canary}\r\n\r\n"),
            // The same address in the IPv4-mapped IPv6 form.
            format!(
                "GET http://[::ffff:127.0.0.2]:{}/ HTTP/1.1\r\n\r\n",
                canary.port()
            ),
        ] {
            let refused = raw(proxy.addr, &request).await;
            assert!(refused.starts_with("HTTP/1.1 403"), "{request}: {refused}");
            assert!(
                refused.contains(&format!("{}: blocked", verdict_header())),
                "{refused}"
            );
        }
        // A tunnel to the allowed site works.
        let tunnel = raw(
            proxy.addr,
            &format!("CONNECT {site} HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        )
        .await;
        assert!(
            tunnel.starts_with("HTTP/1.1 200 Connection Established"),
            "{tunnel}"
        );
        assert!(tunnel.ends_with("SITE"), "{tunnel}");
        // Garbage is answered, not hung on.
        assert!(
            raw(proxy.addr, "NOT HTTP\r\n\r\n")
                .await
                .starts_with("HTTP/1.1 400")
        );

        assert_eq!(
            canary_hits.load(Ordering::SeqCst),
            0,
            "the canary saw a connection"
        );
        assert_eq!(site_hits.load(Ordering::SeqCst), 2);
        cancel.cancel();
    }
}

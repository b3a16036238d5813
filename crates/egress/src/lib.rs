#![doc = include_str!("../README.md")]

pub mod proxy;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use enconvert_domain::address::{AllowList, SourceUrl, UrlError};
use futures_util::StreamExt;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// How names become addresses: the system resolver, or a test's own.
type Lookup = Arc<
    dyn Fn(String) -> futures_util::future::BoxFuture<'static, std::io::Result<Vec<SocketAddr>>>
        + Send
        + Sync,
>;

fn system_lookup() -> Lookup {
    Arc::new(|host: String| {
        Box::pin(async move { Ok(tokio::net::lookup_host((host.as_str(), 0)).await?.collect()) })
    })
}

/// Resolves names and keeps only the addresses the allow rules permit; a name with none
/// left fails to resolve. The client connects to exactly the addresses returned here (one
/// lookup per connection), so a name that rebinds between the check and the connection
/// cannot slip a private address in.
#[derive(Clone)]
struct GuardedResolver {
    allow: AllowList,
    lookup: Lookup,
}

#[derive(Debug, thiserror::Error)]
#[error("{0} resolves only to private, loopback or reserved addresses")]
struct Refused(String);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow.clone();
        let lookup = self.lookup.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = lookup(host.clone()).await?;
            let host_allowed = allow.allows_host(&host);
            let kept: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| host_allowed || allow.permits(a.ip()))
                .collect();
            if kept.is_empty() {
                return Err(Box::new(Refused(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

/// An HTTP client for user-supplied URLs.
#[derive(Clone, Debug)]
pub struct Egress {
    client: reqwest::Client,
    allow: AllowList,
    max_body: usize,
}

/// What came back.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    /// At most the configured cap; `truncated` says whether more was sent.
    pub body: Bytes,
    pub truncated: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error("refused URL: {0}")]
    Refused(#[from] UrlError),
    #[error("timed out")]
    Timeout,
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("request failed: {0}")]
    Other(String),
}

impl EgressError {
    fn from_reqwest(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            EgressError::Timeout
        } else if e.is_connect() {
            // Includes a name that resolved only to refused addresses.
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg = s.to_string();
                src = s.source();
            }
            EgressError::Connect(msg)
        } else {
            EgressError::Other(e.to_string())
        }
    }
}

impl Egress {
    /// `timeout` bounds a whole request; `max_body` caps how much of a response is read.
    pub fn new(
        allow: AllowList,
        timeout: Duration,
        max_body: usize,
        user_agent: &str,
    ) -> Result<Self, EgressError> {
        Self::with_lookup(allow, timeout, max_body, user_agent, system_lookup())
    }

    fn with_lookup(
        allow: AllowList,
        timeout: Duration,
        max_body: usize,
        user_agent: &str,
        lookup: Lookup,
    ) -> Result<Self, EgressError> {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver {
                allow: allow.clone(),
                lookup,
            }))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(user_agent)
            .no_proxy()
            .build()
            .map_err(|e| EgressError::Other(e.to_string()))?;
        Ok(Egress {
            client,
            allow,
            max_body,
        })
    }

    /// POSTs a JSON body to `url`.
    pub async fn post_json(
        &self,
        url: &str,
        body: Vec<u8>,
        headers: &[(String, String)],
    ) -> Result<Reply, EgressError> {
        // IP literals never reach the resolver: check them here.
        let url = SourceUrl::parse(url, &self.allow)?;
        let mut req = self
            .client
            .post(url.as_url().clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = req.send().await.map_err(EgressError::from_reqwest)?;
        self.read(resp).await
    }

    /// GETs `url`.
    pub async fn get(&self, url: &str) -> Result<Reply, EgressError> {
        let url = SourceUrl::parse(url, &self.allow)?;
        let resp = self
            .client
            .get(url.as_url().clone())
            .send()
            .await
            .map_err(EgressError::from_reqwest)?;
        self.read(resp).await
    }

    async fn read(&self, resp: reqwest::Response) -> Result<Reply, EgressError> {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let mut body = Vec::new();
        let mut truncated = false;
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(EgressError::from_reqwest)?;
            let room = self.max_body.saturating_sub(body.len());
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Reply {
            status,
            headers,
            body: Bytes::from(body),
            truncated,
        })
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]

    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// An allowed server on 127.0.0.1 and a canary on 127.0.0.2, on the same port.
    async fn listeners() -> (TcpListener, TcpListener, u16) {
        loop {
            let allowed = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = allowed.local_addr().unwrap().port();
            if let Ok(canary) = TcpListener::bind(("127.0.0.2", port)).await {
                return (allowed, canary, port);
            }
        }
    }

    /// Case 13 of the fault suite (docs/reliability.md): DNS rebinding. The name answers an
    /// allowed address, then a private one. The first request reaches the allowed server;
    /// the second is refused, and the canary behind the private address never sees a
    /// connection, because the address checked is the address connected to.
    #[tokio::test]
    async fn a_rebinding_name_cannot_reach_a_refused_address() {
        let (allowed, canary, port) = listeners().await;
        let served = Arc::new(AtomicUsize::new(0));
        let s = served.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = allowed.accept().await {
                s.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 2048];
                let _ = sock.read(&mut buf).await;
                let _ = sock
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
            }
        });
        let canary_hits = Arc::new(AtomicUsize::new(0));
        let c = canary_hits.clone();
        tokio::spawn(async move {
            while let Ok((_sock, _)) = canary.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
            }
        });
        let lookups = Arc::new(AtomicUsize::new(0));
        let l = lookups.clone();
        let rebinding: Lookup = Arc::new(move |_host: String| {
            let n = l.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                let ip = if n == 0 {
                    Ipv4Addr::new(127, 0, 0, 1)
                } else {
                    Ipv4Addr::new(127, 0, 0, 2)
                };
                Ok(vec![SocketAddr::new(IpAddr::V4(ip), 0)])
            })
        });
        let egress = Egress::with_lookup(
            AllowList::parse("127.0.0.1").unwrap(),
            Duration::from_secs(10),
            1024,
            "test",
            rebinding,
        )
        .unwrap();
        let url = format!("http://rebind.example:{port}/");
        let first = egress.get(&url).await.unwrap();
        assert_eq!(first.status, 200);
        let second = egress.get(&url).await;
        assert!(
            matches!(second, Err(EgressError::Connect(_))),
            "the rebound name was reached: {second:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(served.load(Ordering::SeqCst), 1);
        assert_eq!(
            canary_hits.load(Ordering::SeqCst),
            0,
            "the canary saw a connection"
        );
        assert_eq!(
            lookups.load(Ordering::SeqCst),
            2,
            "one lookup per connection"
        );
    }
}

#![doc = include_str!("../README.md")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use enconvert_domain::address::{AllowList, SourceUrl, UrlError};
use futures_util::StreamExt;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Resolves names and keeps only the addresses the allow rules permit; a name with none
/// left fails to resolve.
#[derive(Debug, Clone)]
struct GuardedResolver {
    allow: AllowList,
}

#[derive(Debug, thiserror::Error)]
#[error("{0} resolves only to private, loopback or reserved addresses")]
struct Refused(String);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
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
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver {
                allow: allow.clone(),
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

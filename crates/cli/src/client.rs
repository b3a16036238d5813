//! The HTTP API: requests with the key, the API's errors, the typed answers.

use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::InFlight;
use crate::args::Global;

/// How long to wait for a TCP connection to the service or a download host.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long submitting an async batch may take at least (a website submit waits for page
/// discovery on the server's side).
pub const SUBMIT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long one status poll may take.
const POLL_TIMEOUT: Duration = Duration::from_secs(30);
/// Refused for being too fast or a dependency down: retried this many times at most.
const RETRIES: u32 = 3;
/// Never sleep longer than this for one `Retry-After`.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The API refused a request: its status and the `detail` it gave.
#[derive(Debug, thiserror::Error)]
#[error("{detail} (HTTP {status})")]
pub struct ApiError {
    pub status: StatusCode,
    /// The API's stable code (`invalid_api_key`, `conversion_failed`...), when it sent one.
    pub code: Option<String>,
    pub detail: String,
}

impl ApiError {
    /// Reads the API's error body, or says plainly that there was none.
    pub async fn from_response(resp: Response) -> ApiError {
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        #[derive(Deserialize)]
        struct Body {
            detail: Option<Value>,
            code: Option<String>,
        }
        let parsed: Option<Body> = serde_json::from_str(&text).ok();
        let (detail, code) = match parsed {
            Some(Body {
                detail: Some(Value::String(d)),
                code,
            }) => (d, code),
            Some(Body {
                detail: Some(other),
                code,
            }) => (other.to_string(), code),
            _ => (
                format!(
                    "the service answered {status} without an error detail (is the base URL that of an Enconvert API?)"
                ),
                None,
            ),
        };
        ApiError {
            status,
            code,
            detail,
        }
    }
}

/// The service could not be reached or its answer was cut off: worth retrying while waiting.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Unreachable {
    message: String,
    /// No connection was made: the request certainly did nothing.
    pub no_connection: bool,
}

/// The HTTP client and what every request needs.
pub struct Client {
    pub http: reqwest::Client,
    base: Url,
    key: Option<SecretString>,
    pub in_flight: InFlight,
    /// Past this, waiting for conversions gives up.
    deadline: Instant,
    pub timeout: Duration,
    pub quiet: bool,
}

impl Client {
    pub fn new(global: &Global, in_flight: InFlight) -> anyhow::Result<Client> {
        let base_url = global.base_url();
        let mut base = Url::parse(&base_url).map_err(|e| {
            anyhow!(
                "the base URL `{base_url}` is not a URL ({e}); pass --base-url or set ENCONVERT_BASE_URL"
            )
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            bail!(
                "the base URL `{base_url}` is not an http(s) URL; pass --base-url or set ENCONVERT_BASE_URL"
            );
        }
        // `join` keeps a path prefix only when it ends with a slash.
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("enconvert-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("failed to set up the HTTP client")?;
        let timeout = Duration::from_secs(global.timeout);
        Ok(Client {
            http,
            base,
            key: global.api_key().map(SecretString::from),
            in_flight,
            deadline: Instant::now() + timeout,
            timeout,
            quiet: global.quiet,
        })
    }

    /// Time left before `--timeout`.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// How long an async submit may take: `--timeout` bounds the wait for conversions, and a
    /// batch accepted after it would only be lost to the user.
    pub fn submit_timeout(&self) -> Duration {
        self.remaining().max(SUBMIT_TIMEOUT)
    }

    fn url(&self, path: &str) -> anyhow::Result<Url> {
        self.base
            .join(path.trim_start_matches('/'))
            .with_context(|| format!("failed to build the URL of {path}"))
    }

    fn key_headers(&self) -> anyhow::Result<HeaderMap> {
        let Some(key) = &self.key else {
            bail!("no API key: pass --api-key or set ENCONVERT_API_KEY");
        };
        let mut value = HeaderValue::from_str(key.expose_secret())
            .map_err(|_| anyhow!("the API key holds characters that cannot be sent"))?;
        // Keeps the key out of reqwest's debug output.
        value.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert("X-API-Key", value);
        Ok(headers)
    }

    /// Prints a message on stderr unless `--quiet`.
    pub fn info(&self, message: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("{message}");
        }
    }

    /// POSTs a JSON body; a `429` or `503` is retried after its `Retry-After` while time is
    /// left (the request was refused, not done). Any other answer is returned as it is.
    pub async fn post(
        &self,
        path: &str,
        body: &Value,
        timeout: Duration,
    ) -> anyhow::Result<Response> {
        let url = self.url(path)?;
        let headers = self.key_headers()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let resp = self
                .http
                .post(url.clone())
                .headers(headers.clone())
                .json(body)
                .timeout(timeout.max(Duration::from_secs(1)))
                .send()
                .await
                .map_err(|e| self.transport_error(e))?;
            match self.retry_delay(&resp, attempt) {
                Some(delay) => {
                    self.info(format!(
                        "the service is busy ({}); retrying in {} s",
                        resp.status(),
                        delay.as_secs()
                    ));
                    tokio::time::sleep(delay).await;
                }
                None => return Ok(resp),
            }
        }
    }

    /// GETs a JSON document; its text when the API answered 2xx, else the API's error.
    pub async fn get_text(&self, path: &str) -> anyhow::Result<String> {
        let url = self.url(path)?;
        let headers = self.key_headers()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let resp = self
                .http
                .get(url.clone())
                .headers(headers.clone())
                .timeout(POLL_TIMEOUT)
                .send()
                .await
                .map_err(|e| self.transport_error(e))?;
            if let Some(delay) = self.retry_delay(&resp, attempt) {
                tokio::time::sleep(delay).await;
                continue;
            }
            if !resp.status().is_success() {
                return Err(ApiError::from_response(resp).await.into());
            }
            return resp.text().await.map_err(|e| {
                Unreachable {
                    message: format!("failed to read the answer of {path}: {e}"),
                    no_connection: false,
                }
                .into()
            });
        }
    }

    /// GETs and parses a JSON document.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let text = self.get_text(path).await?;
        serde_json::from_str(&text)
            .with_context(|| format!("the answer of {path} is not what this client expects"))
    }

    fn retry_delay(&self, resp: &Response, attempt: u32) -> Option<Duration> {
        if !matches!(
            resp.status(),
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        ) || attempt > RETRIES
        {
            return None;
        }
        let delay = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(Duration::from_secs(2), Duration::from_secs)
            .clamp(Duration::from_secs(1), MAX_RETRY_AFTER);
        (delay < self.remaining()).then_some(delay)
    }

    fn transport_error(&self, e: reqwest::Error) -> anyhow::Error {
        let base = self.base.as_str().trim_end_matches('/');
        let message = if e.is_connect() {
            format!("could not connect to the service at {base} (is it running? see --base-url)")
        } else if e.is_timeout() {
            format!("the service at {base} did not answer in time")
        } else {
            format!("the request to {base} failed: {e}")
        };
        Unreachable {
            message,
            no_connection: e.is_connect(),
        }
        .into()
    }
}

/// `202` of a batch or website request.
#[derive(Debug, Deserialize)]
pub struct Accepted {
    pub status: String,
    pub batch_id: String,
    pub url_count: Option<u64>,
    pub total_discovered: Option<u64>,
    pub discovery_method: Option<String>,
    pub error: Option<String>,
}

/// `GET /v1/convert/batch/{id}`.
#[derive(Debug, Deserialize)]
pub struct BatchStatus {
    pub batch_id: String,
    pub status: String,
    pub total: u64,
    pub completed: u64,
    pub failed: u64,
    pub in_progress: u64,
    pub output_mode: String,
    pub zip_download_url: Option<String>,
    #[serde(default)]
    pub items: Vec<BatchItem>,
    pub discovery: Option<String>,
    pub discovery_method: Option<String>,
    pub total_discovered: Option<u64>,
    pub error: Option<String>,
}

impl BatchStatus {
    pub fn is_final(&self) -> bool {
        self.status != "processing"
    }
}

#[derive(Debug, Deserialize)]
pub struct BatchItem {
    pub source_url: String,
    pub status: String,
    pub download_url: Option<String>,
    pub output_file_size: Option<i64>,
    pub duration: Option<String>,
    pub error: Option<String>,
}

/// `GET /v1/convert/status/{job_id}`.
#[derive(Debug, Deserialize)]
pub struct JobStatus {
    pub job_id: String,
    pub batch_id: Option<String>,
    pub status: String,
    pub presigned_url: Option<String>,
    pub filename: Option<String>,
    pub file_size: Option<i64>,
    pub error: Option<String>,
}

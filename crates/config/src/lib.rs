#![doc = include_str!("../README.md")]

pub mod telemetry;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use enconvert_domain::AllowList;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

/// Every environment variable the processes read, with its default (empty: unset).
/// `.env.example` documents each; a test keeps the two in step.
pub const VARIABLES: &[(&str, &str)] = &[
    (
        "DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/enconvert",
    ),
    ("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"),
    ("SMTP_URL", ""),
    ("RUST_LOG", "info,headless_chrome=warn"),
    ("ENCONVERT_LOG_FORMAT", "text"),
    ("ENCONVERT_ENV", "dev"),
    ("ENCONVERT_API_ADDR", "127.0.0.1:8080"),
    ("ENCONVERT_API_OPS_ADDR", "127.0.0.1:9181"),
    ("ENCONVERT_WORKER_OPS_ADDR", "127.0.0.1:9182"),
    ("ENCONVERT_NOTIFIER_OPS_ADDR", "127.0.0.1:9183"),
    ("ENCONVERT_PUBLIC_URL", ""),
    ("ENCONVERT_DEV_API_KEY", ""),
    ("ENCONVERT_ALLOW_PRIVATE_TARGETS", ""),
    ("ENCONVERT_SIGNING_SECRET", ""),
    ("ENCONVERT_LINK_TTL_SECS", "900"),
    ("ENCONVERT_MAX_BODY_BYTES", "1048576"),
    ("ENCONVERT_SYNC_TIMEOUT_SECS", "90"),
    ("ENCONVERT_DISCOVERY_WAIT_SECS", "20"),
    ("ENCONVERT_SESSION_TTL_SECS", "43200"),
    ("ENCONVERT_DB_POOL_SIZE", "10"),
    ("ENCONVERT_STORAGE_DIR", "./data/files"),
    ("ENCONVERT_STORAGE_URL", ""),
    ("ENCONVERT_CHROMIUM_PATH", "/usr/bin/chromium"),
    ("ENCONVERT_WORKER_CONCURRENCY", "4"),
    ("ENCONVERT_RENDER_TIMEOUT_SECS", "60"),
    ("ENCONVERT_NETWORK_QUIET_MS", "0"),
    ("ENCONVERT_MAX_DOCUMENT_MB", "8"),
    ("ENCONVERT_MAX_PAGE_MB", "128"),
    ("ENCONVERT_BROWSER_RECYCLE_AFTER", "500"),
    ("ENCONVERT_DELIVERY_LIMIT", "5"),
    ("ENCONVERT_RETENTION_SWEEP_SECS", "300"),
    ("ENCONVERT_DISCOVERY_BUDGET_SECS", "60"),
    ("ENCONVERT_MAIL_DIR", "./data/mail"),
    (
        "ENCONVERT_MAIL_FROM",
        "Enconvert <noreply@enconvert.localhost>",
    ),
    ("ENCONVERT_DASHBOARD_URL", ""),
    ("ENCONVERT_WEBHOOK_TIMEOUT_SECS", "30"),
    (
        "ENCONVERT_WEBHOOK_RETRY_SCHEDULE",
        enconvert_domain::webhook::DEFAULT_RETRY_SCHEDULE,
    ),
    ("ENCONVERT_NOTIFIER_CONCURRENCY", "16"),
    ("ENCONVERT_FAILPOINT", ""),
];

/// A configuration value that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {problem}")]
pub struct ConfigError {
    pub name: &'static str,
    pub problem: String,
}

/// Settings shared by every process.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: SecretString,
    pub amqp_url: SecretString,
    pub log_json: bool,
    /// First segment of every object key (`{env}/files/...`).
    pub env: String,
    pub db_pool_size: usize,
    pub allow_private: AllowList,
    pub storage_dir: PathBuf,
    /// `s3://bucket`: store files in a bucket instead of `storage_dir`.
    pub storage_url: Option<String>,
    /// object_store S3 settings applied over the `AWS_*` environment (tests set these).
    pub storage_options: Vec<(String, String)>,
    pub delivery_limit: u32,
    pub api: ApiSettings,
    pub worker: WorkerSettings,
    pub notifier: NotifierSettings,
}

#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub addr: SocketAddr,
    /// Health and metrics listener (`/healthz`, `/readyz`, `/metrics`); `None`: off.
    pub ops_addr: Option<SocketAddr>,
    /// Base of the links the api hands out, e.g. `https://convert.example.com`;
    /// `None`: `http://` and the address the api listens on.
    pub public_url: Option<String>,
    pub signing_secret: SecretString,
    pub link_ttl: Duration,
    pub max_body_bytes: usize,
    /// How long a sync request waits for its result before answering `504`.
    pub sync_timeout: Duration,
    /// How long a website submit waits for discovery before answering without the counts.
    pub discovery_wait: Duration,
    pub dev_api_key: Option<SecretString>,
    /// How long a dashboard sign-in lasts.
    pub session_ttl: Duration,
    /// Dashboard cookies get `Secure` (the public URL is `https://`).
    pub secure_cookies: bool,
}

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Health and metrics listener; `None`: off.
    pub ops_addr: Option<SocketAddr>,
    pub chromium_path: PathBuf,
    pub concurrency: usize,
    pub render_timeout: Duration,
    /// After `load` and web fonts, wait until the page made no network request for this long
    /// (bounded by a short budget); zero skips the wait.
    pub network_quiet: Duration,
    /// A page whose HTML document (any frame's) passes this many bytes fails as too large.
    pub max_document_bytes: u64,
    /// A page that loads more than this many bytes in all (document, images, scripts...)
    /// fails as too large.
    pub max_page_bytes: u64,
    /// Jobs one Chromium renders before it is replaced (bounds slow leaks, and what
    /// headless_chrome keeps of every closed tab).
    pub browser_recycle_after: u64,
    /// How often the worker deletes files past their plan's retention.
    pub retention_sweep: Duration,
    /// The most time one website discovery may take; what was found by then is rendered.
    pub discovery_budget: Duration,
}

#[derive(Debug, Clone)]
pub struct NotifierSettings {
    /// Health and metrics listener; `None`: off.
    pub ops_addr: Option<SocketAddr>,
    pub smtp_url: Option<SecretString>,
    pub mail_dir: PathBuf,
    pub mail_from: String,
    pub dashboard_url: String,
    pub webhook_timeout: Duration,
    /// Delays before each retry of a webhook (and of an email that failed transiently);
    /// its length is the number of retries.
    pub retry_schedule: Vec<Duration>,
    pub concurrency: usize,
}

/// Reads a variable: its value, else the default from [`VARIABLES`]; empty counts as unset.
fn get(name: &'static str) -> Option<String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Some(v.trim().to_string()),
        _ => VARIABLES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, d)| d.to_string())
            .filter(|d| !d.is_empty()),
    }
}

fn parsed<T: std::str::FromStr>(name: &'static str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    let raw = get(name).ok_or_else(|| ConfigError {
        name,
        problem: "is required".into(),
    })?;
    raw.parse().map_err(|e: T::Err| ConfigError {
        name,
        problem: format!("`{raw}` is not valid: {e}"),
    })
}

/// A listen address, or `off` for none.
fn ops_addr(name: &'static str) -> Result<Option<SocketAddr>, ConfigError> {
    match get(name) {
        Some(v) if v.eq_ignore_ascii_case("off") => Ok(None),
        _ => parsed(name).map(Some),
    }
}

/// Bytes in a mebibyte (the unit of the size limits).
const MIB: u64 = 1024 * 1024;

fn positive(name: &'static str) -> Result<u64, ConfigError> {
    let v: u64 = parsed(name)?;
    if v == 0 {
        return Err(ConfigError {
            name,
            problem: "must be greater than 0".into(),
        });
    }
    Ok(v)
}

impl Settings {
    /// Reads every setting from the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let addr: SocketAddr = parsed("ENCONVERT_API_ADDR")?;
        let public_url = get("ENCONVERT_PUBLIC_URL").map(|u| u.trim_end_matches('/').to_string());
        let secure_cookies = public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"));
        let signing_secret = match get("ENCONVERT_SIGNING_SECRET") {
            Some(s) => SecretString::from(s),
            None => {
                // Links then only verify in this process; fine for one api, logged at start.
                let bytes: [u8; 32] = rand::random();
                SecretString::from(hex::encode(bytes))
            }
        };
        let allow_private = AllowList::parse(
            &get("ENCONVERT_ALLOW_PRIVATE_TARGETS").unwrap_or_default(),
        )
        .map_err(|problem| ConfigError {
            name: "ENCONVERT_ALLOW_PRIVATE_TARGETS",
            problem,
        })?;
        let dashboard_url = get("ENCONVERT_DASHBOARD_URL").unwrap_or_else(|| {
            format!(
                "{}/dashboard",
                public_url
                    .clone()
                    .unwrap_or_else(|| format!("http://{addr}"))
            )
        });
        Ok(Settings {
            database_url: SecretString::from(parsed::<String>("DATABASE_URL")?),
            amqp_url: SecretString::from(parsed::<String>("AMQP_URL")?),
            log_json: match get("ENCONVERT_LOG_FORMAT").as_deref() {
                Some("json") => true,
                Some("text") | None => false,
                Some(other) => {
                    return Err(ConfigError {
                        name: "ENCONVERT_LOG_FORMAT",
                        problem: format!("`{other}` is not `text` or `json`"),
                    });
                }
            },
            env: parsed("ENCONVERT_ENV")?,
            db_pool_size: positive("ENCONVERT_DB_POOL_SIZE")? as usize,
            allow_private,
            storage_dir: parsed("ENCONVERT_STORAGE_DIR")?,
            storage_url: get("ENCONVERT_STORAGE_URL"),
            storage_options: Vec::new(),
            delivery_limit: positive("ENCONVERT_DELIVERY_LIMIT")? as u32,
            api: ApiSettings {
                addr,
                ops_addr: ops_addr("ENCONVERT_API_OPS_ADDR")?,
                public_url,
                signing_secret,
                link_ttl: Duration::from_secs(positive("ENCONVERT_LINK_TTL_SECS")?),
                max_body_bytes: positive("ENCONVERT_MAX_BODY_BYTES")? as usize,
                sync_timeout: Duration::from_secs(positive("ENCONVERT_SYNC_TIMEOUT_SECS")?),
                discovery_wait: Duration::from_secs(parsed("ENCONVERT_DISCOVERY_WAIT_SECS")?),
                dev_api_key: get("ENCONVERT_DEV_API_KEY").map(SecretString::from),
                session_ttl: Duration::from_secs(positive("ENCONVERT_SESSION_TTL_SECS")?),
                secure_cookies,
            },
            worker: WorkerSettings {
                ops_addr: ops_addr("ENCONVERT_WORKER_OPS_ADDR")?,
                chromium_path: parsed("ENCONVERT_CHROMIUM_PATH")?,
                concurrency: positive("ENCONVERT_WORKER_CONCURRENCY")? as usize,
                render_timeout: Duration::from_secs(positive("ENCONVERT_RENDER_TIMEOUT_SECS")?),
                network_quiet: Duration::from_millis(parsed("ENCONVERT_NETWORK_QUIET_MS")?),
                max_document_bytes: positive("ENCONVERT_MAX_DOCUMENT_MB")?.saturating_mul(MIB),
                max_page_bytes: positive("ENCONVERT_MAX_PAGE_MB")?.saturating_mul(MIB),
                browser_recycle_after: positive("ENCONVERT_BROWSER_RECYCLE_AFTER")?,
                retention_sweep: Duration::from_secs(positive("ENCONVERT_RETENTION_SWEEP_SECS")?),
                discovery_budget: Duration::from_secs(positive("ENCONVERT_DISCOVERY_BUDGET_SECS")?),
            },
            notifier: NotifierSettings {
                ops_addr: ops_addr("ENCONVERT_NOTIFIER_OPS_ADDR")?,
                smtp_url: get("SMTP_URL").map(SecretString::from),
                mail_dir: parsed("ENCONVERT_MAIL_DIR")?,
                mail_from: parsed("ENCONVERT_MAIL_FROM")?,
                dashboard_url,
                webhook_timeout: Duration::from_secs(positive("ENCONVERT_WEBHOOK_TIMEOUT_SECS")?),
                retry_schedule: enconvert_domain::webhook::parse_retry_schedule(
                    &get("ENCONVERT_WEBHOOK_RETRY_SCHEDULE").unwrap_or_default(),
                )
                .map_err(|problem| ConfigError {
                    name: "ENCONVERT_WEBHOOK_RETRY_SCHEDULE",
                    problem,
                })?,
                concurrency: positive("ENCONVERT_NOTIFIER_CONCURRENCY")? as usize,
            },
        })
    }
}

/// A fault-injection point of the fault suite (docs/reliability.md). In debug builds a process
/// whose `ENCONVERT_FAILPOINT` (comma-separated) names `point` aborts there, as a crash
/// would; release builds ignore the variable.
pub fn failpoint(point: &str) {
    if cfg!(debug_assertions)
        && std::env::var("ENCONVERT_FAILPOINT")
            .is_ok_and(|v| v.split(',').any(|p| p.trim() == point))
    {
        tracing::error!(point, "failpoint reached: aborting the process");
        std::process::abort();
    }
}

/// A token cancelled on SIGINT or SIGTERM: every process drains its work when it fires.
pub fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = ctrl_c => {},
                        _ = term.recv() => {},
                    }
                }
                Err(_) => {
                    let _ = ctrl_c.await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
        tracing::info!("shutdown requested");
        t.cancel();
    });
    token
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variable_is_documented_in_env_example() {
        let example = include_str!("../../../.env.example");
        for (name, default) in VARIABLES {
            let line = example
                .lines()
                .find(|l| l.trim_start_matches("# ").starts_with(&format!("{name}=")))
                .unwrap_or_else(|| panic!("{name} is read but not in .env.example"));
            let documented = line
                .trim_start_matches("# ")
                .split_once('=')
                .map(|(_, v)| v)
                .unwrap_or("");
            assert_eq!(
                documented, *default,
                "{name}: .env.example and the code disagree on the default"
            );
        }
    }

    #[test]
    fn every_variable_is_documented_in_the_operations_guide() {
        let guide = include_str!("../../../docs/operations.md");
        for (name, _) in VARIABLES {
            assert!(
                guide.contains(&format!("| `{name}` |")),
                "{name} is not in docs/operations.md"
            );
        }
    }

    #[test]
    fn every_variable_read_in_the_source_is_listed() {
        // Any `"ENCONVERT_..."` or well-known name used in this crate must be in VARIABLES.
        let src = include_str!("lib.rs");
        for (i, _) in src.match_indices("get(\"") {
            let rest = &src[i + 5..];
            let name = &rest[..rest.find('"').unwrap_or(0)];
            assert!(
                VARIABLES.iter().any(|(n, _)| *n == name),
                "{name} is read but not listed"
            );
        }
        for (i, _) in src
            .match_indices("parsed(\"")
            .chain(src.match_indices("positive(\""))
            .chain(src.match_indices("ops_addr(\""))
        {
            let rest = &src[src[i..].find('"').map_or(0, |j| i + j + 1)..];
            let name = &rest[..rest.find('"').unwrap_or(0)];
            assert!(
                VARIABLES.iter().any(|(n, _)| *n == name),
                "{name} is read but not listed"
            );
        }
    }
}

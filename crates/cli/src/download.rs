//! Writing files: through a temporary file beside the target, so an interrupted or failed
//! download never leaves a half-written file under the final name.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow};
use reqwest::Response;
use tempfile::NamedTempFile;

use crate::client::{ApiError, Client};

/// How long one read of a download may stall.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a file goes.
pub enum Sink {
    /// A temporary file, renamed to `path` once complete (removed when dropped before).
    File {
        tmp: NamedTempFile,
        path: PathBuf,
    },
    Stdout,
}

impl Sink {
    /// Opens the temporary file now, so a directory that is missing or not writable is
    /// reported before any conversion is asked for.
    pub fn create(path: &Path) -> anyhow::Result<Sink> {
        if path.as_os_str() == "-" {
            return Ok(Sink::Stdout);
        }
        if path.is_dir() {
            return Err(anyhow!("{} is a directory; name a file", path.display()));
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".enconvert-")
            .suffix(".part")
            .tempfile_in(&dir)
            .with_context(|| format!("cannot write a file in {}", dir.display()))?;
        Ok(Sink::File {
            tmp,
            path: path.to_path_buf(),
        })
    }

    /// Streams a response's body into the sink and finishes it; the number of bytes.
    pub async fn fill(self, mut resp: Response) -> anyhow::Result<u64> {
        let mut written = 0_u64;
        match self {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                while let Some(chunk) = next_chunk(&mut resp).await? {
                    out.write_all(&chunk).context("failed to write to stdout")?;
                    written += chunk.len() as u64;
                }
                out.flush().context("failed to write to stdout")?;
            }
            Sink::File { mut tmp, path } => {
                while let Some(chunk) = next_chunk(&mut resp).await? {
                    tmp.write_all(&chunk)
                        .with_context(|| format!("failed to write {}", path.display()))?;
                    written += chunk.len() as u64;
                }
                tmp.flush()
                    .with_context(|| format!("failed to write {}", path.display()))?;
                tmp.persist(&path)
                    .map_err(|e| anyhow!("failed to write {}: {}", path.display(), e.error))?;
            }
        }
        Ok(written)
    }

    /// Where the file goes, for messages.
    pub fn describe(&self) -> String {
        match self {
            Sink::Stdout => "stdout".to_string(),
            Sink::File { path, .. } => path.display().to_string(),
        }
    }
}

async fn next_chunk(resp: &mut Response) -> anyhow::Result<Option<bytes::Bytes>> {
    match tokio::time::timeout(READ_TIMEOUT, resp.chunk()).await {
        Err(_) => Err(anyhow!(
            "the download stalled for {} s",
            READ_TIMEOUT.as_secs()
        )),
        Ok(Err(e)) => Err(anyhow!("the download broke off: {e}")),
        Ok(Ok(chunk)) => Ok(chunk),
    }
}

/// Downloads a signed link into `path`.
pub async fn link_to_file(client: &Client, link: &str, path: &Path) -> anyhow::Result<u64> {
    link_to_sink(client, link, Sink::create(path)?).await
}

/// Downloads a signed link into a sink. The API key is not sent: the link carries its own
/// signature, and it may point at an object store that must never see the key.
pub async fn link_to_sink(client: &Client, link: &str, sink: Sink) -> anyhow::Result<u64> {
    let target = sink.describe();
    let resp = client
        .http
        .get(link)
        .send()
        .await
        .map_err(|e| anyhow!("could not download {target}: {e}"))?;
    if !resp.status().is_success() {
        let e = ApiError::from_response(resp).await;
        return Err(anyhow!("could not download {target}: {e}"));
    }
    sink.fill(resp).await
}

/// `12.3 KiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

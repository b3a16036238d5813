//! `enconvert status`: a batch's (or a job's) status for people, or the API's JSON.

use std::fmt::Write as _;

use anyhow::Context;

use crate::Outcome;
use crate::args::StatusArgs;
use crate::client::{BatchStatus, Client, JobStatus};
use crate::download::human_size;

pub async fn run(client: &Client, a: StatusArgs) -> anyhow::Result<Outcome> {
    let id = a.id.trim();
    if id.is_empty() || id.contains(['/', '?', '#']) {
        anyhow::bail!("`{}` is not a batch or job id", a.id);
    }
    let path = if a.job {
        format!("/v1/convert/status/{id}")
    } else {
        format!("/v1/convert/batch/{id}")
    };
    let text = client.get_text(&path).await?;
    let (report, outcome) = if a.job {
        let job: JobStatus = serde_json::from_str(&text)
            .context("the service's answer is not what this client expects")?;
        let failed = job.status == "failed";
        (render_job(&job), failed)
    } else {
        let batch: BatchStatus = serde_json::from_str(&text)
            .context("the service's answer is not what this client expects")?;
        let failed = matches!(batch.status.as_str(), "partial" | "failed");
        (render_batch(&batch), failed)
    };
    let shown = if a.json { text } else { report };
    crate::out(shown.trim_end())?;
    Ok(if outcome {
        Outcome::SomeFailed
    } else {
        Outcome::AllSucceeded
    })
}

fn render_batch(b: &BatchStatus) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "batch {}: {}", b.batch_id, b.status);
    let _ = writeln!(
        s,
        "{} output, {} item(s): {} succeeded, {} failed, {} in progress",
        b.output_mode, b.total, b.completed, b.failed, b.in_progress
    );
    if let Some(d) = &b.discovery {
        let mut line = format!("discovery: {d}");
        if let Some(m) = &b.discovery_method {
            line.push_str(&format!(" ({m})"));
        }
        if let Some(n) = b.total_discovered {
            line.push_str(&format!(", {n} page(s) found"));
        }
        let _ = writeln!(s, "{line}");
    }
    if let Some(e) = &b.error {
        let _ = writeln!(s, "error: {e}");
    }
    if let Some(z) = &b.zip_download_url {
        let _ = writeln!(s, "zip: {z}");
    }
    if !b.items.is_empty() {
        let _ = writeln!(s);
    }
    for i in &b.items {
        let duration = i
            .duration
            .as_deref()
            .map_or(String::new(), |d| format!("{d} s"));
        let size = i
            .output_file_size
            .and_then(|n| u64::try_from(n).ok())
            .map_or(String::new(), human_size);
        let _ = writeln!(
            s,
            "  {:<11} {:>8} {:>10}  {}",
            i.status, duration, size, i.source_url
        );
        if let Some(e) = &i.error {
            let _ = writeln!(s, "      error: {e}");
        }
        if let Some(link) = &i.download_url {
            let _ = writeln!(s, "      download: {link}");
        }
    }
    s
}

fn render_job(j: &JobStatus) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "job {}: {}", j.job_id, j.status);
    if let Some(b) = &j.batch_id {
        let _ = writeln!(s, "batch: {b}");
    }
    if let Some(f) = &j.filename {
        let size = j
            .file_size
            .and_then(|n| u64::try_from(n).ok())
            .map_or(String::new(), |n| format!(" ({})", human_size(n)));
        let _ = writeln!(s, "file: {f}{size}");
    }
    if let Some(e) = &j.error {
        let _ = writeln!(s, "error: {e}");
    }
    if let Some(link) = &j.presigned_url {
        let _ = writeln!(s, "download: {link}");
    }
    s
}

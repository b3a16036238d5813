//! `enconvert batch`: a list of URLs in one async batch.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::Outcome;
use crate::args::{BatchArgs, Kind};
use crate::client::{Accepted, ApiError, BatchStatus, Client};
use crate::download::{human_size, link_to_file};
use crate::names::{self, Unique};
use crate::progress::wait_batch;
use crate::request::{image_extension, kind_fields, notify_fields, page_url, render_fields};

/// How many bad lines to list before saying "and N more".
const SHOWN_BAD_LINES: usize = 10;

pub async fn run(client: &Client, a: BatchArgs) -> anyhow::Result<Outcome> {
    let urls = read_urls(&a.file)?;
    if a.zip && urls.len() < 2 {
        bail!(
            "--zip needs at least two URLs; {} has one",
            a.file.display()
        );
    }
    let Some(first) = urls.first() else {
        bail!("{} holds no URL", a.file.display());
    };
    let mut body = render_fields(&a.render, first)?;
    kind_fields(a.kind, &a.pdf, &a.shot, &mut body)?;
    notify_fields(&a.notify, &mut body);
    body.insert(
        "url".into(),
        Value::Array(urls.iter().map(|u| json!(u.as_str())).collect()),
    );
    body.insert("async_mode".into(), json!(true));
    body.insert(
        "output_format".into(),
        json!(if a.zip { "zip" } else { "individual" }),
    );
    if a.wait {
        std::fs::create_dir_all(&a.output)
            .with_context(|| format!("cannot create the directory {}", a.output.display()))?;
    }

    let endpoint = match a.kind {
        Kind::Pdf => "/v1/convert/url-to-pdf",
        Kind::Screenshot => "/v1/convert/url-to-screenshot",
    };
    let resp = client
        .post(endpoint, &Value::Object(body), client.submit_timeout())
        .await?;
    if !resp.status().is_success() {
        return Err(ApiError::from_response(resp).await.into());
    }
    let accepted: Accepted = resp
        .json()
        .await
        .context("the service's answer is not what this client expects")?;
    let id = accepted.batch_id;
    if !a.wait {
        crate::out(&id)?;
        client.info(format!(
            "batch {id} accepted ({} URLs); follow it with `enconvert status {id}`",
            accepted.url_count.unwrap_or(urls.len() as u64)
        ));
        return Ok(Outcome::AllSucceeded);
    }
    client.in_flight.set(format!(
        "batch {id} goes on at the server: `enconvert status {id}`"
    ));
    client.info(format!("batch {id}: {} URLs", urls.len()));
    let status = wait_batch(client, &id).await?;
    let default_ext = match a.kind {
        Kind::Pdf => "pdf",
        Kind::Screenshot => image_extension(a.shot.format),
    };
    save(client, &status, &a.output, default_ext).await
}

/// Downloads what a final batch holds into `dir` and reports its failures.
pub async fn save(
    client: &Client,
    status: &BatchStatus,
    dir: &Path,
    default_ext: &str,
) -> anyhow::Result<Outcome> {
    let mut all_ok = status.status == "completed";
    for item in status.items.iter().filter(|i| i.status == "Failed") {
        eprintln!(
            "failed: {}: {}",
            item.source_url,
            item.error.as_deref().unwrap_or("no reason given")
        );
    }
    if let Some(error) = &status.error {
        eprintln!("failed: batch {}: {error}", status.batch_id);
    }
    let mut saved = 0_usize;
    if status.output_mode == "zip" {
        if let Some(link) = &status.zip_download_url {
            let path = dir.join(format!("batch-{}.zip", status.batch_id));
            match link_to_file(client, link, &path).await {
                Ok(size) => {
                    saved += 1;
                    client.info(format!("saved {} ({})", path.display(), human_size(size)));
                }
                Err(e) => {
                    all_ok = false;
                    eprintln!("failed: {e}");
                }
            }
        } else if status.completed > 0 {
            all_ok = false;
            eprintln!("failed: batch {} has no ZIP to download", status.batch_id);
        }
    } else {
        let mut unique = Unique::default();
        for item in status.items.iter().filter(|i| i.status == "Success") {
            let Some(link) = &item.download_url else {
                all_ok = false;
                eprintln!(
                    "failed: {}: converted, but no download link (past its retention?)",
                    item.source_url
                );
                continue;
            };
            let ext = names::extension_of_link(link).unwrap_or_else(|| default_ext.to_string());
            let name = unique.name(&names::stem_for(&item.source_url), &ext);
            let path = dir.join(name);
            match link_to_file(client, link, &path).await {
                Ok(size) => {
                    saved += 1;
                    client.info(format!("saved {} ({})", path.display(), human_size(size)));
                }
                Err(e) => {
                    all_ok = false;
                    eprintln!("failed: {}: {e}", item.source_url);
                }
            }
        }
    }
    client.info(format!(
        "batch {}: {}; {} of {} converted, {} failed; {saved} file(s) saved",
        status.batch_id, status.status, status.completed, status.total, status.failed
    ));
    Ok(if all_ok {
        Outcome::AllSucceeded
    } else {
        Outcome::SomeFailed
    })
}

/// The URLs of a file (or stdin for `-`), one a line; blank lines and `#` comments skipped.
/// Every bad line is reported at once, with its number.
fn read_urls(file: &Path) -> anyhow::Result<Vec<url::Url>> {
    let text = if file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read the URLs from stdin")?;
        s
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    let mut urls = Vec::new();
    let mut bad = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match page_url(line) {
            Ok(u) => urls.push(u),
            Err(e) => bad.push(format!("  line {}: {e}", n + 1)),
        }
    }
    if !bad.is_empty() {
        let more = bad.len().saturating_sub(SHOWN_BAD_LINES);
        let mut list = bad
            .into_iter()
            .take(SHOWN_BAD_LINES)
            .collect::<Vec<_>>()
            .join("\n");
        if more > 0 {
            list.push_str(&format!("\n  and {more} more"));
        }
        bail!(
            "{} has lines that are not http(s) URLs:\n{list}",
            file.display()
        );
    }
    if urls.is_empty() {
        bail!("{} holds no URL", file.display());
    }
    Ok(urls)
}

//! `enconvert website`: find a site's pages, convert each, one ZIP.

use std::path::PathBuf;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::Outcome;
use crate::args::{CrawlMode, Kind, WebsiteArgs};
use crate::client::{Accepted, ApiError, Client};
use crate::download::{Sink, human_size, link_to_file};
use crate::names;
use crate::progress::wait_batch;
use crate::request::{kind_fields, notify_fields, page_url, render_fields};

pub async fn run(client: &Client, a: WebsiteArgs) -> anyhow::Result<Outcome> {
    let url = page_url(&a.url)?;
    if a.output.is_some() && !a.wait {
        bail!("-o/--output needs --wait (without it the command only starts the conversion)");
    }
    let mut body = render_fields(&a.render, &url)?;
    kind_fields(a.kind, &a.pdf, &a.shot, &mut body)?;
    notify_fields(&a.notify, &mut body);
    body.insert("url".into(), json!(url.as_str()));
    let mode = match a.mode {
        CrawlMode::Auto => "auto",
        CrawlMode::Sitemap => "sitemap",
        CrawlMode::Full => "full",
    };
    body.insert("crawl_mode".into(), json!(mode));
    if !a.include.is_empty() {
        body.insert("include_patterns".into(), json!(a.include));
    }
    if !a.exclude.is_empty() {
        body.insert("exclude_patterns".into(), json!(a.exclude));
    }
    let output = a.output.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "{}.zip",
            names::clean(url.host_str().unwrap_or("website"))
        ))
    });
    if output.as_os_str() == "-" {
        bail!("the ZIP cannot go to stdout; name a file with -o");
    }
    // Checked now so a long conversion never ends in an unwritable directory.
    if a.wait {
        drop(Sink::create(&output)?);
    }

    let endpoint = match a.kind {
        Kind::Pdf => "/v1/convert/website-to-pdf",
        Kind::Screenshot => "/v1/convert/website-to-screenshot",
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
    let id = accepted.batch_id.clone();
    let method = accepted.discovery_method.as_deref().unwrap_or("discovery");
    match (accepted.url_count, accepted.total_discovered) {
        (Some(n), Some(found)) if found > n => client.info(format!(
            "batch {id}: {found} pages found ({method}), the first {n} will be converted (your plan's limit)"
        )),
        (Some(n), _) => client.info(format!("batch {id}: {n} pages found ({method})")),
        _ => client.info(format!("batch {id}: still finding pages ({method})")),
    }
    if accepted.status == "failed" {
        eprintln!(
            "failed: {url}: {}",
            accepted.error.as_deref().unwrap_or("no page was found")
        );
        return Ok(Outcome::SomeFailed);
    }
    if !a.wait {
        crate::out(&id)?;
        client.info(format!("follow it with `enconvert status {id}`"));
        return Ok(Outcome::AllSucceeded);
    }
    client.in_flight.set(format!(
        "batch {id} goes on at the server: `enconvert status {id}`"
    ));
    let status = wait_batch(client, &id).await?;
    for item in status.items.iter().filter(|i| i.status == "Failed") {
        eprintln!(
            "failed: {}: {}",
            item.source_url,
            item.error.as_deref().unwrap_or("no reason given")
        );
    }
    if let Some(error) = &status.error {
        eprintln!("failed: {url}: {error}");
    }
    let Some(link) = &status.zip_download_url else {
        if status.status != "failed" {
            eprintln!(
                "failed: batch {id} is {} but has no ZIP to download",
                status.status
            );
        }
        return Ok(Outcome::SomeFailed);
    };
    let size = link_to_file(client, link, &output).await?;
    client.info(format!(
        "saved {} ({}): {} of {} pages converted, {} failed",
        output.display(),
        human_size(size),
        status.completed,
        status.total,
        status.failed
    ));
    Ok(if status.status == "completed" {
        Outcome::AllSucceeded
    } else {
        Outcome::SomeFailed
    })
}

//! `enconvert pdf` and `enconvert screenshot`: one page, sync.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use reqwest::StatusCode;
use serde_json::{Map, Value, json};
use url::Url;
use uuid::Uuid;

use crate::Outcome;
use crate::args::{PdfCommand, ScreenshotCommand, Target};
use crate::client::{ApiError, Client, JobStatus, Unreachable};
use crate::download::{Sink, human_size, link_to_sink};
use crate::names;
use crate::request::{image_extension, page_url, pdf_fields, render_fields, shot_fields};

pub async fn pdf(client: &Client, a: PdfCommand) -> anyhow::Result<Outcome> {
    let url = page_url(&a.target.url)?;
    let mut body = render_fields(&a.render, &url)?;
    pdf_fields(&a.pdf, &mut body);
    convert(client, "/v1/convert/url-to-pdf", url, a.target, body, "pdf").await
}

pub async fn screenshot(client: &Client, a: ScreenshotCommand) -> anyhow::Result<Outcome> {
    let url = page_url(&a.target.url)?;
    let mut body = render_fields(&a.render, &url)?;
    shot_fields(&a.shot, &mut body);
    let ext = image_extension(a.shot.format);
    convert(
        client,
        "/v1/convert/url-to-screenshot",
        url,
        a.target,
        body,
        ext,
    )
    .await
}

async fn convert(
    client: &Client,
    endpoint: &str,
    url: Url,
    target: Target,
    mut body: Map<String, Value>,
    ext: &str,
) -> anyhow::Result<Outcome> {
    // Our own job id makes the job pollable when the service stops waiting for it (504).
    let job_id = target
        .job_id
        .clone()
        .unwrap_or_else(|| format!("cli-{}", Uuid::new_v4().simple()));
    body.insert("url".into(), json!(url.as_str()));
    body.insert("direct_download".into(), json!(true));
    body.insert("job_id".into(), json!(job_id));
    // A named output is checked before the conversion is asked for.
    let mut sink = target.output.as_deref().map(Sink::create).transpose()?;

    client.in_flight.set(format!(
        "the conversion may go on at the server: `enconvert status --job {job_id}`"
    ));
    let resp = client
        .post(endpoint, &Value::Object(body), client.remaining())
        .await
        .map_err(|e| {
            if e
                .downcast_ref::<Unreachable>()
                .is_some_and(|u| !u.no_connection)
            {
                e.context(format!(
                    "no answer for job {job_id}; it may go on at the server: `enconvert status --job {job_id}`"
                ))
            } else {
                e
            }
        })?;
    if resp.status().is_success() {
        let sink = match sink.take() {
            Some(s) => s,
            None => Sink::create(&default_path(&resp, url.as_str(), ext))?,
        };
        let seconds = header(&resp, "x-conversion-time");
        let where_to = sink.describe();
        let size = sink.fill(resp).await?;
        client.info(format!(
            "saved {where_to} ({}{})",
            human_size(size),
            seconds.map_or(String::new(), |s| format!(", converted in {s} s"))
        ));
        return Ok(Outcome::AllSucceeded);
    }
    let e = ApiError::from_response(resp).await;
    match e.status {
        StatusCode::UNPROCESSABLE_ENTITY => {
            eprintln!("failed: {url}: {}", e.detail);
            Ok(Outcome::SomeFailed)
        }
        StatusCode::GATEWAY_TIMEOUT => {
            client.info(format!(
                "the service stopped waiting, the conversion goes on; waiting for job {job_id}"
            ));
            let job = wait_job(client, &job_id).await?;
            match (job.status.as_str(), &job.presigned_url) {
                ("success", Some(link)) => {
                    let sink = match sink {
                        Some(s) => s,
                        None => Sink::create(&PathBuf::from(
                            job.filename
                                .as_deref()
                                .and_then(names::safe_file_name)
                                .unwrap_or_else(|| {
                                    format!("{}.{ext}", names::stem_for(url.as_str()))
                                }),
                        ))?,
                    };
                    let where_to = sink.describe();
                    let size = link_to_sink(client, link, sink).await?;
                    client.info(format!("saved {where_to} ({})", human_size(size)));
                    Ok(Outcome::AllSucceeded)
                }
                _ => {
                    eprintln!(
                        "failed: {url}: {}",
                        job.error.as_deref().unwrap_or("the conversion failed")
                    );
                    Ok(Outcome::SomeFailed)
                }
            }
        }
        _ => Err(e.into()),
    }
}

/// Polls a job until it is final or `--timeout` is reached.
async fn wait_job(client: &Client, job_id: &str) -> anyhow::Result<JobStatus> {
    let path = format!("/v1/convert/status/{job_id}");
    loop {
        match client.get_json::<JobStatus>(&path).await {
            Ok(job) if job.status != "processing" => return Ok(job),
            Ok(_) => {}
            Err(e) if e.downcast_ref::<Unreachable>().is_none() => return Err(e),
            Err(_) => {}
        }
        if client.remaining() <= Duration::from_secs(1) {
            bail!(
                "job {job_id} is still processing after {} s (see --timeout); it goes on at the server: `enconvert status --job {job_id}`",
                client.timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Without `-o`: the name the service gave the file, else one made from the page's URL.
fn default_path(resp: &reqwest::Response, page: &str, ext: &str) -> PathBuf {
    PathBuf::from(
        header(resp, "x-filename")
            .as_deref()
            .and_then(names::safe_file_name)
            .unwrap_or_else(|| format!("{}.{ext}", names::stem_for(page))),
    )
}

//! `POST /v1/convert/url-to-pdf` and `/v1/convert/url-to-screenshot`.

use std::time::{Duration, Instant};

use crate::responses::{Accepted, SyncResult};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use enconvert_db::batches::{self, CreateError};
use enconvert_db::models::{Batch, Job};
use enconvert_db::projects::Caller;
use enconvert_domain::JobStatus;
use enconvert_domain::events::RenderJob;
use enconvert_domain::request::{ConvertRequest, Endpoint};
use enconvert_queue::messages;
use uuid::Uuid;

use crate::body::submit;
use crate::error::ApiError;
use crate::state::AppState;

/// Convert one URL or a list of URLs to PDF.
///
/// Sync by default (answers with a link, or the bytes with `direct_download`); `async_mode`
/// or several URLs answer `202` with a `batch_id` to poll.
#[utoipa::path(
    post,
    path = "/v1/convert/url-to-pdf",
    request_body = enconvert_domain::request::RawConvertRequest,
    responses(
        (status = 200, description = "Sync result", body = SyncResult),
        (status = 202, description = "Accepted for async processing", body = Accepted),
        (status = 400, description = "Invalid input", body = crate::responses::ErrorBody),
        (status = 401, description = "Missing, unknown or revoked key", body = crate::responses::ErrorBody),
        (status = 403, description = "Key kind or plan does not allow it", body = crate::responses::ErrorBody),
        (status = 409, description = "job_id already in use", body = crate::responses::ErrorBody),
        (status = 413, description = "Body too large", body = crate::responses::ErrorBody),
        (status = 422, description = "The conversion failed (sync)", body = crate::responses::ErrorBody),
        (status = 429, description = "Rate limit exceeded", body = crate::responses::ErrorBody),
        (status = 503, description = "A dependency is down", body = crate::responses::ErrorBody),
        (status = 504, description = "Sync conversion past its time; it goes on", body = crate::responses::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn url_to_pdf(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    submit(
        &state,
        &req,
        payload,
        Endpoint::UrlToPdf,
        |caller, request, _plan| accept(&state, caller, request),
    )
    .await
}

/// Convert one URL or a list of URLs to screenshots (PNG by default).
#[utoipa::path(
    post,
    path = "/v1/convert/url-to-screenshot",
    request_body = enconvert_domain::request::RawConvertRequest,
    responses(
        (status = 200, description = "Sync result", body = SyncResult),
        (status = 202, description = "Accepted for async processing", body = Accepted),
        (status = 400, description = "Invalid input", body = crate::responses::ErrorBody),
        (status = 401, description = "Missing, unknown or revoked key", body = crate::responses::ErrorBody),
        (status = 403, description = "Key kind or plan does not allow it", body = crate::responses::ErrorBody),
        (status = 429, description = "Rate limit exceeded", body = crate::responses::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn url_to_screenshot(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    submit(
        &state,
        &req,
        payload,
        Endpoint::UrlToScreenshot,
        |caller, request, _plan| accept(&state, caller, request),
    )
    .await
}

async fn accept(
    state: &AppState,
    caller: Caller,
    request: ConvertRequest,
) -> Result<HttpResponse, ApiError> {
    let project_id = caller.project.id;
    let (batch, jobs) = rows(project_id, &request);
    let sync = !request.async_mode;
    let outbox: Vec<_> = jobs
        .iter()
        .map(|j| {
            messages::render(
                &RenderJob {
                    job_id: j.id,
                    batch_id: batch.id,
                },
                sync,
            )
        })
        .collect();

    // Listen before the job exists, so its announcement cannot be missed.
    let finished = sync.then(|| state.finished.subscribe());
    let mut conn = state.db.conn().await?;
    match batches::create(&mut conn, &batch, &jobs, &outbox).await {
        Ok(()) => {}
        Err(CreateError::JobIdTaken) => return Err(ApiError::JobIdTaken),
        Err(CreateError::Db(e)) => return Err(e.into()),
    }
    drop(conn);
    // A crash here leaves committed outbox rows that any process's relay publishes.
    enconvert_config::failpoint("api.after_commit");
    state.relay_wake.notify_one();
    tracing::info!(batch.id = %batch.id, urls = jobs.len(), endpoint = request.endpoint.as_str(), sync, "batch accepted");

    if let Some(finished) = finished {
        let job = jobs
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("sync batch without a job")))?;
        return wait_for_sync(state, job, finished, request.direct_download).await;
    }
    Ok(HttpResponse::Accepted().json(Accepted {
        status: "processing",
        batch_id: batch.id,
        url_count: jobs.len(),
        output_format: request.output_mode.as_str(),
    }))
}

/// The batch and job rows of a validated request.
fn rows(project_id: Uuid, request: &ConvertRequest) -> (Batch, Vec<Job>) {
    let batch = batch_row(project_id, request);
    let batch_id = batch.id;
    let jobs = request
        .urls
        .iter()
        .enumerate()
        .map(|(i, url)| {
            // A client-chosen job_id names the single job of the request.
            let client_id = if request.urls.len() == 1 {
                request.job_id.clone()
            } else {
                None
            };
            Job::new_queued(
                batch_id,
                project_id,
                client_id,
                i32::try_from(i).unwrap_or(i32::MAX),
                url.to_string(),
            )
        })
        .collect();
    (batch, jobs)
}

/// The batch row of a validated request (`total` counts its URLs; website batches set it
/// when discovery lands).
pub(crate) fn batch_row(project_id: Uuid, request: &ConvertRequest) -> Batch {
    Batch {
        id: Uuid::now_v7(),
        project_id,
        endpoint: request.endpoint.as_str().to_string(),
        output_mode: request.output_mode.as_str().to_string(),
        is_async: request.async_mode,
        total: i32::try_from(request.urls.len()).unwrap_or(i32::MAX),
        succeeded: 0,
        failed: 0,
        options: serde_json::to_value(&request.options).unwrap_or_default(),
        output_filename: request.output_filename.clone(),
        notification_email: request
            .notification_email
            .clone()
            .filter(|_| request.async_mode),
        callback_url: request
            .callback_url
            .as_ref()
            .filter(|_| request.async_mode)
            .map(|u| u.to_string()),
        archive_status: None,
        archive_key: None,
        archive_filename: None,
        archive_size: None,
        created_at: Utc::now(),
        completed_at: None,
        archive_expired_at: None,
        discovery_status: None,
        discovery_method: None,
        total_discovered: None,
        discovery_request: None,
        discovery_error: None,
        archive_error: None,
    }
}

/// Waits for a sync job's outcome, bounded by the configured limit: woken by the job's
/// `NOTIFY`, with a slow poll as a safety net (a fast one while notifications are down).
async fn wait_for_sync(
    state: &AppState,
    job: Job,
    mut finished: tokio::sync::broadcast::Receiver<Uuid>,
    direct: bool,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let deadline = started + state.sync_timeout;
    let mut delay = Duration::from_millis(10);
    let done = loop {
        let poll = if state.finished.connected() {
            Duration::from_secs(1)
        } else {
            delay = (delay * 2).min(Duration::from_millis(50));
            delay
        };
        let wait = poll.min(deadline.saturating_duration_since(Instant::now()));
        let _ = tokio::time::timeout(wait, async {
            loop {
                match finished.recv().await {
                    Ok(id) if id == job.id => return,
                    Ok(_) => {}
                    // Missed some: look at the row.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        std::future::pending::<()>().await
                    }
                }
            }
        })
        .await;
        let mut conn = state.db.conn().await?;
        let current = enconvert_db::jobs::get(&mut conn, job.id).await?;
        if let Some(j) = current.filter(|j| j.status().is_final()) {
            break j;
        }
        if Instant::now() >= deadline {
            return Err(ApiError::SyncTimeout(
                state.sync_timeout.as_secs(),
                job.public_id(),
            ));
        }
    };
    match done.status() {
        JobStatus::Success => {}
        _ => {
            return Err(ApiError::ConversionFailed(
                done.error
                    .clone()
                    .unwrap_or_else(|| "unknown error".to_string()),
            ));
        }
    }
    let key = done.object_key.clone().unwrap_or_default();
    let filename = done.filename.clone().unwrap_or_default();
    let seconds = done.duration_text().unwrap_or_else(|| "0.00".to_string());
    if direct {
        let data = state.storage.get(&key).await.map_err(ApiError::internal)?;
        let content_type = content_type_of(&filename);
        return Ok(HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, content_type))
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ))
            .insert_header(("X-Object-Key", key.clone()))
            .insert_header(("X-File-Size", data.len().to_string()))
            .insert_header(("X-Conversion-Time", seconds))
            .insert_header(("X-Filename", filename))
            .insert_header(("X-Job-Id", done.public_id()))
            .body(data));
    }
    Ok(HttpResponse::Ok().json(SyncResult {
        job_id: done.public_id(),
        presigned_url: state.link(&key).await?,
        object_key: key,
        filename,
        file_size: done.file_size,
        conversion_time_seconds: done.duration_ms.map(|ms| f64::from(ms) / 1000.0),
    }))
}

pub fn content_type_of(filename: &str) -> &'static str {
    match filename.rsplit('.').next() {
        Some("pdf") => "application/pdf",
        Some("png") => "image/png",
        Some("jpg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("zip") => "application/zip",
        _ => "application/octet-stream",
    }
}

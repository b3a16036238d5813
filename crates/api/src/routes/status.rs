//! Polling: `GET /v1/convert/batch/{batch_id}` and `GET /v1/convert/status/{job_id}`.

use crate::responses::{BatchItem, BatchStatusBody, JobStatusBody};
use actix_web::{HttpRequest, HttpResponse, web};
use enconvert_db::{batches, projects};
use enconvert_domain::plan::Feature;
use enconvert_domain::request::KeyKind;
use enconvert_domain::{JobStatus, OutputMode};
use uuid::Uuid;

use crate::auth;
use crate::error::ApiError;
use crate::state::AppState;

const BATCH_NOT_FOUND: &str = "Batch not found.";
const JOB_NOT_FOUND: &str = "Job not found.";

/// A batch's status, progress counts and download links (private keys, plans with polling).
#[utoipa::path(
    get,
    path = "/v1/convert/batch/{batch_id}",
    params(("batch_id" = String, Path, description = "The batch_id of the 202 answer")),
    responses(
        (status = 200, description = "The batch", body = BatchStatusBody),
        (status = 401, description = "Missing, unknown or revoked key", body = crate::responses::ErrorBody),
        (status = 403, description = "Public key, or a plan without polling", body = crate::responses::ErrorBody),
        (status = 404, description = "Unknown batch (also another project's)", body = crate::responses::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn batch(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    // The key, the batch and its jobs in one round trip; refusals keep their order.
    let key_hash = auth::key_hash(&req)?;
    let batch_id = Uuid::parse_str(&path).ok();
    let mut conn = state.db.conn().await?;
    let (caller, batch, jobs) = match batch_id {
        Some(id) => batches::status_for_key(&mut conn, &key_hash, id).await?,
        None => (
            projects::authenticate(&mut conn, &key_hash).await?,
            None,
            Vec::new(),
        ),
    };
    drop(conn);
    let caller = caller.ok_or(ApiError::Unauthorized)?;
    if auth::key_kind(&caller) == KeyKind::Public {
        return Err(ApiError::Forbidden(
            "Batch status polling is not allowed with a public key; use a private key (sk_live_...) from your server".into(),
        ));
    }
    let plan = caller.plan.to_plan();
    if !plan.allows(Feature::BatchPolling) {
        return Err(ApiError::Forbidden(plan.refusal(Feature::BatchPolling)));
    }
    let batch = batch
        .filter(|b| b.project_id == caller.project.id)
        .ok_or(ApiError::NotFound(BATCH_NOT_FOUND))?;

    let counts = batch.counts();
    let mode = batch.output_mode();
    let mut items = Vec::with_capacity(jobs.len());
    for j in &jobs {
        let status = j.status();
        let download_url = match (mode, status, &j.object_key) {
            (OutputMode::Individual, JobStatus::Success, Some(key))
                if j.file_expired_at.is_none() =>
            {
                Some(state.link(key).await?)
            }
            _ => None,
        };
        items.push(BatchItem {
            source_url: j.source_url.clone(),
            status: status.item_status(),
            download_url,
            output_file_size: j.file_size,
            duration: j.duration_text(),
            job_id: j.public_id(),
            error: j.error.clone(),
        });
    }
    let zip_download_url = match (&batch.archive_status, &batch.archive_key) {
        (Some(s), Some(key)) if s == "stored" && batch.archive_expired_at.is_none() => {
            Some(state.link(key).await?)
        }
        _ => None,
    };
    Ok(HttpResponse::Ok().json(BatchStatusBody {
        batch_id: batch.id,
        status: batch.status().as_str(),
        total: counts.total,
        completed: counts.succeeded,
        failed: counts.failed,
        in_progress: counts.in_progress(),
        output_mode: mode.as_str(),
        zip_download_url,
        items,
        discovery: batch.discovery_status.as_deref().map(|s| match s {
            "pending" => "in_progress",
            "done" => "done",
            _ => "failed",
        }),
        discovery_method: batch.discovery_method.clone(),
        total_discovered: batch
            .total_discovered
            .map(|n| u32::try_from(n).unwrap_or(0)),
        error: batch
            .discovery_error
            .clone()
            .or_else(|| batch.archive_error.clone()),
    }))
}

/// One job's status, by your `job_id` or ours.
#[utoipa::path(
    get,
    path = "/v1/convert/status/{job_id}",
    params(("job_id" = String, Path, description = "Your job_id, or the job_id of a batch item")),
    responses(
        (status = 200, description = "The job", body = JobStatusBody),
        (status = 401, description = "Missing, unknown or revoked key", body = crate::responses::ErrorBody),
        (status = 404, description = "Unknown job (also another project's)", body = crate::responses::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn job(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth::caller(&state, &req).await?;
    let mut conn = state.db.conn().await?;
    let job = batches::find_job(&mut conn, caller.project.id, &path)
        .await?
        .ok_or(ApiError::NotFound(JOB_NOT_FOUND))?;
    drop(conn);
    let status = job.status();
    let presigned_url = match (status, &job.object_key) {
        (JobStatus::Success, Some(key)) if job.file_expired_at.is_none() => {
            Some(state.link(key).await?)
        }
        _ => None,
    };
    Ok(HttpResponse::Ok().json(JobStatusBody {
        job_id: job.public_id(),
        batch_id: job.batch_id,
        status: status.public_str(),
        presigned_url,
        object_key: job.object_key.clone(),
        filename: job.filename.clone(),
        file_size: job.file_size,
        error: job.error.clone(),
    }))
}

//! The batch pages: the list, one batch (items, progress, notification log), one item,
//! the progress the script polls, and redelivery.

use std::collections::HashMap;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::DateTime;
use enconvert_db::models::{Batch, Job, Notification, NotificationAttempt};
use enconvert_db::notifications::{self, Redelivery};
use enconvert_db::{Conn, batches};
use enconvert_domain::{JobStatus, OutputMode};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::DashError;
use super::forms::Form;
use super::session::current;
use super::views::{
    AttemptRow, BatchPage, BatchRow, BatchesPage, DeliveryRow, ItemPage, ItemRow, Page, Progress,
    ZipLink, html, maybe_when, size, when,
};
use crate::state::AppState;

const BATCH_NOT_FOUND: &str = "No such batch in this project.";
const ITEM_NOT_FOUND: &str = "No such item in this batch.";
const DELIVERY_NOT_FOUND: &str = "No such webhook delivery in this batch.";
/// Batches on one page of the list.
const PAGE_SIZE: usize = 25;
/// A page waiting for a delivery due this soon keeps itself current.
const SOON: chrono::Duration = chrono::Duration::seconds(30);

/// Unknown paths under `/dashboard`.
pub async fn not_found() -> Result<HttpResponse, DashError> {
    Err(DashError::NotFound("There is no such dashboard page."))
}

fn progress_of(b: &Batch) -> Progress {
    let c = b.counts();
    Progress {
        status: b.status().as_str(),
        total: c.total,
        succeeded: c.succeeded,
        failed: c.failed,
        finished: c.finished(),
        in_progress: c.in_progress(),
    }
}

fn short(id: Uuid) -> String {
    id.simple().to_string().chars().take(8).collect()
}

/// A batch of the session's project; another project's looks like none (`404`).
async fn own_batch(conn: &mut Conn, project_id: Uuid, batch_id: &str) -> Result<Batch, DashError> {
    let id = Uuid::parse_str(batch_id).map_err(|_| DashError::NotFound(BATCH_NOT_FOUND))?;
    batches::find(conn, project_id, id)
        .await?
        .ok_or(DashError::NotFound(BATCH_NOT_FOUND))
}

#[derive(Deserialize)]
pub struct ListQuery {
    /// Microseconds since the epoch: show batches created before then.
    before: Option<i64>,
}

/// `GET /dashboard`: the project's batches, newest first.
pub async fn batches(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, DashError> {
    let session = current(&state, &req).await?;
    let before = query.before.and_then(DateTime::from_timestamp_micros);
    let mut conn = state.db.conn().await?;
    let limit = i64::try_from(PAGE_SIZE + 1).unwrap_or(26);
    let mut list = batches::list(&mut conn, session.caller.project.id, before, limit).await?;
    drop(conn);
    let older = if list.len() > PAGE_SIZE {
        list.truncate(PAGE_SIZE);
        list.last().map(|b| b.created_at.timestamp_micros())
    } else {
        None
    };
    let rows = list
        .iter()
        .map(|b| BatchRow {
            id: b.id.to_string(),
            short_id: short(b.id),
            created: when(b.created_at),
            kind: b.endpoint.clone(),
            progress: progress_of(b),
        })
        .collect();
    let mut page = Page::signed("Batches", &session, "batches");
    page.refresh = list.iter().any(|b| !b.status().is_final());
    html(StatusCode::OK, &BatchesPage { page, rows, older })
}

fn item_row(mode: OutputMode, j: &Job, link: Option<String>) -> ItemRow {
    let status = j.status();
    let file_note = match (mode, status) {
        (_, JobStatus::Queued | JobStatus::Rendering) => "not ready yet",
        (_, JobStatus::Failed) => "no file",
        (OutputMode::Zip, JobStatus::Success) => "in the ZIP archive",
        (OutputMode::Individual, JobStatus::Success) if j.file_expired_at.is_some() => {
            "expired (past the plan's retention)"
        }
        (OutputMode::Individual, JobStatus::Success) => "no file",
    };
    ItemRow {
        id: j.id.to_string(),
        number: j.position + 1,
        url: j.source_url.clone(),
        status: status.public_str(),
        duration: j
            .duration_text()
            .map_or_else(|| "—".to_string(), |d| format!("{d} s")),
        error: j.error.clone().unwrap_or_default(),
        download: link,
        filename: j.filename.clone().unwrap_or_default(),
        file_note,
    }
}

/// The download link of a job's file, when it has one to download.
async fn job_link(
    state: &AppState,
    mode: OutputMode,
    j: &Job,
) -> Result<Option<String>, DashError> {
    match (mode, j.status(), &j.object_key) {
        (OutputMode::Individual, JobStatus::Success, Some(key)) if j.file_expired_at.is_none() => {
            Ok(Some(state.link(key).await?))
        }
        _ => Ok(None),
    }
}

fn attempt_row(a: &NotificationAttempt) -> AttemptRow {
    let mut outcome = match (a.status_code, &a.error) {
        (Some(code), Some(e)) => format!("HTTP {code}, {e}"),
        (Some(code), None) => format!("HTTP {code}"),
        (None, Some(e)) => e.clone(),
        (None, None) => "delivered".to_string(),
    };
    if let Some(ms) = a.latency_ms {
        outcome.push_str(&format!(" ({ms} ms)"));
    }
    AttemptRow {
        number: a.attempt,
        at: when(a.started_at),
        outcome,
    }
}

fn delivery_row(
    n: &Notification,
    attempts: Vec<AttemptRow>,
    numbers: &HashMap<Uuid, i32>,
) -> DeliveryRow {
    DeliveryRow {
        id: n.id.to_string(),
        channel: n.channel.clone(),
        // The callback URL is the client's own; recipients' addresses are not repeated
        // (as in the API's delivery log).
        target: if n.channel == "webhook" {
            n.target.clone().unwrap_or_default()
        } else {
            "the recipient".to_string()
        },
        subject: match n.job_id.and_then(|j| numbers.get(&j)) {
            Some(number) => format!("item {number}"),
            None => "the batch".to_string(),
        },
        status: n.status.clone(),
        next_attempt: if n.status == "pending" {
            n.next_attempt_at.map(when)
        } else {
            None
        },
        attempts,
        can_redeliver: n.channel == "webhook" && n.status != "pending",
    }
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

/// `GET /dashboard/batches/{id}`: one batch with its items and notification log.
pub async fn batch(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, DashError> {
    let session = current(&state, &req).await?;
    let mut conn = state.db.conn().await?;
    let batch = own_batch(&mut conn, session.caller.project.id, &path).await?;
    let jobs = batches::jobs_of(&mut conn, batch.id).await?;
    let rows = notifications::for_batch(&mut conn, batch.id).await?;
    let ids: Vec<Uuid> = rows.iter().map(|n| n.id).collect();
    let mut attempts: HashMap<Uuid, Vec<AttemptRow>> = HashMap::new();
    for a in notifications::attempts_of(&mut conn, &ids).await? {
        attempts
            .entry(a.notification_id)
            .or_default()
            .push(attempt_row(&a));
    }
    drop(conn);

    let mode = batch.output_mode();
    let mut items = Vec::with_capacity(jobs.len());
    for j in &jobs {
        let link = job_link(&state, mode, j).await?;
        items.push(item_row(mode, j, link));
    }
    let numbers: HashMap<Uuid, i32> = jobs.iter().map(|j| (j.id, j.position + 1)).collect();
    let now = chrono::Utc::now();
    let delivery_soon = rows
        .iter()
        .any(|n| n.status == "pending" && n.next_attempt_at.is_none_or(|t| t <= now + SOON));
    let deliveries = rows
        .iter()
        .map(|n| delivery_row(n, attempts.remove(&n.id).unwrap_or_default(), &numbers))
        .collect();

    let (zip, zip_note) = if mode == OutputMode::Zip {
        match (batch.archive_status.as_deref(), &batch.archive_key) {
            (Some("stored"), Some(key)) if batch.archive_expired_at.is_none() => (
                Some(ZipLink {
                    url: state.link(key).await?,
                    name: batch.archive_filename.clone().unwrap_or_default(),
                    size: batch.archive_size.map(size).unwrap_or_default(),
                }),
                None,
            ),
            (Some("stored"), _) => (
                None,
                Some("The ZIP archive has expired (past the plan's retention)."),
            ),
            (Some("failed"), _) => (None, Some("No ZIP archive: nothing could be archived.")),
            _ => (
                None,
                Some("The ZIP archive is made when every item has finished."),
            ),
        }
    } else {
        (None, None)
    };
    let discovery = batch.discovery_status.as_deref().map(|s| {
        let method = batch.discovery_method.as_deref().unwrap_or("discovery");
        match s {
            "pending" => format!("{method}: finding pages"),
            "done" => format!(
                "{method}: {} pages found",
                batch.total_discovered.unwrap_or(batch.total)
            ),
            _ => format!(
                "{method} failed: {}",
                batch.discovery_error.as_deref().unwrap_or("no page found")
            ),
        }
    });

    let progress = progress_of(&batch);
    let mut page = Page::signed(&format!("Batch {}", short(batch.id)), &session, "batches");
    page.refresh = progress.status == "processing" || delivery_soon;
    page.notice = match query.notice.as_deref() {
        Some("redelivered") => {
            Some("A new delivery attempt is scheduled now, with the same webhook-id.")
        }
        Some("pending") => {
            Some("That delivery is already scheduled or in progress; its attempts appear below.")
        }
        _ => None,
    };
    html(
        StatusCode::OK,
        &BatchPage {
            page,
            csrf: session.csrf_token.clone(),
            id: batch.id.to_string(),
            kind: format!(
                "{}{}",
                batch.endpoint,
                if batch.is_async { "" } else { " (sync)" }
            ),
            mode: mode.as_str(),
            created: when(batch.created_at),
            completed: maybe_when(batch.completed_at),
            discovery,
            progress,
            zip,
            zip_note,
            items,
            deliveries,
        },
    )
}

/// `GET /dashboard/batches/{id}/progress`: the counts the page's script polls.
pub async fn progress(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, DashError> {
    let session = current(&state, &req).await?;
    let mut conn = state.db.conn().await?;
    let batch = own_batch(&mut conn, session.caller.project.id, &path).await?;
    drop(conn);
    let p = progress_of(&batch);
    Ok(HttpResponse::Ok().json(json!({
        "batch_id": batch.id,
        "status": p.status,
        "total": p.total,
        "completed": p.succeeded,
        "failed": p.failed,
        "in_progress": p.in_progress,
    })))
}

/// `GET /dashboard/batches/{id}/items/{job_id}`: one item.
pub async fn item(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, DashError> {
    let (batch_id, job_id) = path.into_inner();
    let session = current(&state, &req).await?;
    let job_id = Uuid::parse_str(&job_id).map_err(|_| DashError::NotFound(ITEM_NOT_FOUND))?;
    let mut conn = state.db.conn().await?;
    let batch = own_batch(&mut conn, session.caller.project.id, &batch_id).await?;
    let job = batches::jobs_of(&mut conn, batch.id)
        .await?
        .into_iter()
        .find(|j| j.id == job_id)
        .ok_or(DashError::NotFound(ITEM_NOT_FOUND))?;
    drop(conn);
    let mode = batch.output_mode();
    let link = job_link(&state, mode, &job).await?;
    let item = item_row(mode, &job, link);
    let page = Page::signed(&format!("Item {}", item.number), &session, "batches");
    html(
        StatusCode::OK,
        &ItemPage {
            page,
            batch_id: batch.id.to_string(),
            job_id: job.public_id(),
            attempts: job.attempts,
            started: maybe_when(job.started_at),
            finished: maybe_when(job.finished_at),
            file_size: job.file_size.map(size).unwrap_or_default(),
            item,
        },
    )
}

/// `POST /dashboard/batches/{id}/deliveries/{notification_id}/redeliver`: one more attempt
/// of a finished webhook, as `POST /v1/.../redeliver` does.
pub async fn redeliver(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let (batch_id, notification_id) = path.into_inner();
    let session = current(&state, &req).await?;
    Form::parse(&body).check_csrf(&session.csrf_token)?;
    let notification_id =
        Uuid::parse_str(&notification_id).map_err(|_| DashError::NotFound(DELIVERY_NOT_FOUND))?;
    let mut conn = state.db.conn().await?;
    let batch = own_batch(&mut conn, session.caller.project.id, &batch_id).await?;
    let notice = match notifications::redeliver(&mut conn, batch.id, notification_id).await? {
        Redelivery::Scheduled => {
            tracing::info!(project.id = %session.caller.project.id, batch.id = %batch.id, notification.id = %notification_id, "redelivery scheduled from the dashboard");
            "redelivered"
        }
        Redelivery::AlreadyPending => "pending",
        Redelivery::NotFound => return Err(DashError::NotFound(DELIVERY_NOT_FOUND)),
    };
    Ok(HttpResponse::SeeOther()
        .insert_header((
            header::LOCATION,
            format!("/dashboard/batches/{}?notice={notice}#deliveries", batch.id),
        ))
        .finish())
}

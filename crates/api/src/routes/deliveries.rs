//! The delivery log (ours): `GET /v1/convert/batch/{batch_id}/deliveries` lists a batch's
//! notifications with every attempt; `POST .../deliveries/{id}/redeliver` schedules one more
//! attempt of a finished webhook under the same `webhook-id`.
//!
//! The same rules as batch status: a private key, a plan with polling, and `404` for an
//! unknown batch and for another project's.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, web};
use enconvert_db::models::{Batch, NotificationAttempt};
use enconvert_db::notifications::{self, Redelivery};
use enconvert_db::{batches, projects::Caller};
use enconvert_domain::plan::Feature;
use enconvert_domain::request::KeyKind;
use serde_json::json;
use uuid::Uuid;

use crate::auth;
use crate::error::ApiError;
use crate::state::AppState;

const BATCH_NOT_FOUND: &str = "Batch not found.";
const DELIVERY_NOT_FOUND: &str = "Delivery not found.";

async fn own_batch(
    state: &AppState,
    req: &HttpRequest,
    batch_id: &str,
) -> Result<(Caller, Batch), ApiError> {
    let caller = auth::caller(state, req).await?;
    if auth::key_kind(&caller) == KeyKind::Public {
        return Err(ApiError::Forbidden(
            "The delivery log is not available with a public key; use a private key (sk_live_...) from your server".into(),
        ));
    }
    let plan = caller.plan.to_plan();
    if !plan.allows(Feature::BatchPolling) {
        return Err(ApiError::Forbidden(plan.refusal(Feature::BatchPolling)));
    }
    let batch_id = Uuid::parse_str(batch_id).map_err(|_| ApiError::NotFound(BATCH_NOT_FOUND))?;
    let mut conn = state.db.conn().await?;
    let batch = batches::find(&mut conn, caller.project.id, batch_id)
        .await?
        .ok_or(ApiError::NotFound(BATCH_NOT_FOUND))?;
    Ok((caller, batch))
}

fn attempt_json(a: &NotificationAttempt) -> serde_json::Value {
    json!({
        "attempt": a.attempt,
        "started_at": a.started_at,
        "status_code": a.status_code,
        "latency_ms": a.latency_ms,
        "error": a.error,
        "response_body": a.response_body,
    })
}

pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (_, batch) = own_batch(&state, &req, &path).await?;
    let mut conn = state.db.conn().await?;
    let rows = notifications::for_batch(&mut conn, batch.id).await?;
    let ids: Vec<Uuid> = rows.iter().map(|n| n.id).collect();
    let mut attempts: HashMap<Uuid, Vec<serde_json::Value>> = HashMap::new();
    for a in notifications::attempts_of(&mut conn, &ids).await? {
        attempts
            .entry(a.notification_id)
            .or_default()
            .push(attempt_json(&a));
    }
    let public_ids: HashMap<Uuid, String> = batches::jobs_of(&mut conn, batch.id)
        .await?
        .into_iter()
        .map(|j| (j.id, j.public_id()))
        .collect();
    drop(conn);
    let deliveries: Vec<_> = rows
        .iter()
        .map(|n| {
            let mut d = json!({
                "id": n.id,
                "channel": n.channel,
                "job_id": n.job_id.and_then(|j| public_ids.get(&j).cloned()),
                "status": n.status,
                "created_at": n.created_at,
                "finished_at": n.finished_at,
                "next_attempt_at": if n.status == "pending" { n.next_attempt_at } else { None },
                "last_error": n.last_error,
                "attempts": attempts.remove(&n.id).unwrap_or_default(),
            });
            // The callback URL is the client's own; recipients' addresses are not repeated.
            if n.channel == "webhook" {
                d["url"] = json!(n.target);
            }
            d
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "batch_id": batch.id,
        "deliveries": deliveries,
    })))
}

pub async fn redeliver(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (batch_id, notification_id) = path.into_inner();
    let (caller, batch) = own_batch(&state, &req, &batch_id).await?;
    let notification_id =
        Uuid::parse_str(&notification_id).map_err(|_| ApiError::NotFound(DELIVERY_NOT_FOUND))?;
    let mut conn = state.db.conn().await?;
    match notifications::redeliver(&mut conn, batch.id, notification_id).await? {
        Redelivery::Scheduled => {
            tracing::info!(project.id = %caller.project.id, batch.id = %batch.id, notification.id = %notification_id, "redelivery scheduled");
            Ok(HttpResponse::Accepted().json(json!({
                "id": notification_id,
                "status": "pending",
                "detail": "A new delivery attempt is scheduled now, with the same webhook-id.",
            })))
        }
        Redelivery::AlreadyPending => Err(ApiError::DeliveryPending),
        Redelivery::NotFound => Err(ApiError::NotFound(DELIVERY_NOT_FOUND)),
    }
}

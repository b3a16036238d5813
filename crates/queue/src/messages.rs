//! Outbox messages for each kind of domain message: which exchange, which routing key.

use enconvert_db::models::OutboxMessage;
use enconvert_domain::events::{
    ArchiveJob, BatchCompleted, DiscoverJob, JobCompleted, RenderJob, kind,
};
use serde::Serialize;
use uuid::Uuid;

use crate::topology::{
    ARCHIVE, BATCH_COMPLETED, DISCOVER, EVENTS_EXCHANGE, JOB_COMPLETED, RENDER_BATCH, RENDER_SYNC,
    WORK_EXCHANGE,
};

fn message<T: Serialize>(
    exchange: &str,
    routing_key: &str,
    kind: &str,
    batch_id: Uuid,
    body: &T,
) -> OutboxMessage {
    OutboxMessage {
        exchange: exchange.to_string(),
        routing_key: routing_key.to_string(),
        message_id: Uuid::now_v7(),
        message_type: kind.to_string(),
        correlation_id: batch_id.to_string(),
        // Serialising these plain structs cannot fail.
        payload: serde_json::to_value(body).unwrap_or(serde_json::Value::Null),
    }
}

/// Render work; `sync` requests go to the queue served first.
pub fn render(job: &RenderJob, sync: bool) -> OutboxMessage {
    let queue = if sync { RENDER_SYNC } else { RENDER_BATCH };
    message(WORK_EXCHANGE, queue, kind::RENDER, job.batch_id, job)
}

pub fn archive(job: &ArchiveJob) -> OutboxMessage {
    message(WORK_EXCHANGE, ARCHIVE, kind::ARCHIVE, job.batch_id, job)
}

pub fn discover(job: &DiscoverJob) -> OutboxMessage {
    message(WORK_EXCHANGE, DISCOVER, kind::DISCOVER, job.batch_id, job)
}

pub fn job_completed(event: &JobCompleted) -> OutboxMessage {
    message(
        EVENTS_EXCHANGE,
        JOB_COMPLETED,
        kind::JOB_COMPLETED,
        event.batch_id,
        event,
    )
}

pub fn batch_completed(event: &BatchCompleted) -> OutboxMessage {
    message(
        EVENTS_EXCHANGE,
        BATCH_COMPLETED,
        kind::BATCH_COMPLETED,
        event.batch_id,
        event,
    )
}

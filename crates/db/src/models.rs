//! Rows as the processes read them.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::schema::*;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = plans)]
pub struct PlanRow {
    pub name: String,
    pub async_mode: bool,
    pub batch_polling: bool,
    pub email_notifications: bool,
    pub has_webhook: bool,
    pub zip_output: bool,
    pub target_auth: bool,
    pub discovery: String,
    pub batch_limit: i32,
    pub rpm_private: i32,
    pub rpm_public: i32,
    pub retention_hours: i32,
}

impl PlanRow {
    pub fn to_plan(&self) -> enconvert_domain::Plan {
        let n = |v: i32| u32::try_from(v).unwrap_or(0);
        enconvert_domain::Plan {
            name: self.name.clone(),
            async_mode: self.async_mode,
            batch_polling: self.batch_polling,
            email_notifications: self.email_notifications,
            has_webhook: self.has_webhook,
            zip_output: self.zip_output,
            target_auth: self.target_auth,
            discovery: enconvert_domain::Discovery::parse(&self.discovery)
                .unwrap_or(enconvert_domain::Discovery::None),
            batch_limit: n(self.batch_limit),
            rpm_private: n(self.rpm_private),
            rpm_public: n(self.rpm_public),
            retention_hours: n(self.retention_hours),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = projects)]
pub struct Project {
    pub id: Uuid,
    pub name: String,
    pub owner_email: String,
    pub plan: String,
    pub default_email_enabled: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys)]
pub struct ApiKey {
    pub id: Uuid,
    pub project_id: Uuid,
    pub kind: String,
    pub prefix: String,
    pub key_hash: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = batches)]
pub struct Batch {
    pub id: Uuid,
    pub project_id: Uuid,
    pub endpoint: String,
    pub output_mode: String,
    pub is_async: bool,
    pub total: i32,
    pub succeeded: i32,
    pub failed: i32,
    pub options: serde_json::Value,
    pub output_filename: Option<String>,
    pub notification_email: Option<String>,
    pub callback_url: Option<String>,
    pub archive_status: Option<String>,
    pub archive_key: Option<String>,
    pub archive_filename: Option<String>,
    pub archive_size: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub archive_expired_at: Option<DateTime<Utc>>,
    /// Website batches: `pending` until the worker has found the pages, then `done` (jobs
    /// inserted) or `failed` (no page found; the batch is failed). `None` for URL batches.
    pub discovery_status: Option<String>,
    /// Website batches: `sitemap` or `full_crawl`.
    pub discovery_method: Option<String>,
    pub total_discovered: Option<i32>,
    /// Website batches: an `enconvert_domain::discovery::DiscoveryRequest`.
    pub discovery_request: Option<serde_json::Value>,
    pub discovery_error: Option<String>,
    /// ZIP batches: why the archive could not be built (given up after the delivery limit).
    pub archive_error: Option<String>,
}

impl Batch {
    pub fn counts(&self) -> enconvert_domain::status::BatchCounts {
        let n = |v: i32| u32::try_from(v).unwrap_or(0);
        enconvert_domain::status::BatchCounts {
            total: n(self.total),
            succeeded: n(self.succeeded),
            failed: n(self.failed),
        }
    }

    pub fn output_mode(&self) -> enconvert_domain::OutputMode {
        enconvert_domain::OutputMode::parse(&self.output_mode)
            .unwrap_or(enconvert_domain::OutputMode::Individual)
    }

    /// The seed's status of this batch.
    pub fn status(&self) -> enconvert_domain::BatchStatus {
        match self.discovery_status.as_deref() {
            // A website whose discovery found no page has nothing to render: it is over.
            Some("failed") => return enconvert_domain::BatchStatus::Failed,
            Some("pending") => return enconvert_domain::BatchStatus::Processing,
            _ => {}
        }
        let zip = self.output_mode() == enconvert_domain::OutputMode::Zip;
        // In ZIP mode the archive is what the client gets: without it the batch failed.
        if zip && self.archive_error.is_some() {
            return enconvert_domain::BatchStatus::Failed;
        }
        let pending = zip
            && self.archive_status.as_deref() != Some("stored")
            && self.archive_status.as_deref() != Some("failed");
        self.counts().status(pending)
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = jobs)]
pub struct Job {
    pub id: Uuid,
    pub batch_id: Uuid,
    pub project_id: Uuid,
    pub client_job_id: Option<String>,
    pub position: i32,
    pub source_url: String,
    pub status: String,
    pub attempts: i32,
    pub lease_until: Option<DateTime<Utc>>,
    pub object_key: Option<String>,
    pub filename: Option<String>,
    pub file_size: Option<i64>,
    pub duration_ms: Option<i32>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub file_expired_at: Option<DateTime<Utc>>,
}

impl Job {
    pub fn status(&self) -> enconvert_domain::JobStatus {
        enconvert_domain::JobStatus::parse(&self.status)
            .unwrap_or(enconvert_domain::JobStatus::Queued)
    }

    /// The id clients see: theirs when they chose one, else ours.
    pub fn public_id(&self) -> String {
        self.client_job_id
            .clone()
            .unwrap_or_else(|| self.id.to_string())
    }

    /// Seconds as the seed writes them, e.g. `"3.12"`.
    pub fn duration_text(&self) -> Option<String> {
        self.duration_ms
            .map(|ms| format!("{:.2}", f64::from(ms) / 1000.0))
    }

    /// A job row as the api writes it at submit time.
    pub fn new_queued(
        batch_id: Uuid,
        project_id: Uuid,
        client_job_id: Option<String>,
        position: i32,
        source_url: String,
    ) -> Self {
        Job {
            id: Uuid::now_v7(),
            batch_id,
            project_id,
            client_job_id,
            position,
            source_url,
            status: "queued".to_string(),
            attempts: 0,
            lease_until: None,
            object_key: None,
            filename: None,
            file_size: None,
            duration_ms: None,
            error: None,
            created_at: Utc::now(),
            started_at: None,
            finished_at: None,
            file_expired_at: None,
        }
    }
}

/// A message to publish, written in the same transaction as the state it announces.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = outbox)]
pub struct OutboxMessage {
    pub exchange: String,
    pub routing_key: String,
    pub message_id: Uuid,
    pub message_type: String,
    pub correlation_id: String,
    pub payload: serde_json::Value,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    pub id: i64,
    pub exchange: String,
    pub routing_key: String,
    pub message_id: Uuid,
    pub message_type: String,
    pub correlation_id: String,
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = notifications)]
pub struct Notification {
    pub id: Uuid,
    pub batch_id: Uuid,
    pub job_id: Option<Uuid>,
    pub subject: String,
    pub channel: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The webhook URL or the email address.
    pub target: Option<String>,
    /// The exact webhook body, or the email's content as JSON.
    pub body: Option<String>,
    /// The lane of concurrency: a webhook's `host:port`, or `smtp`.
    pub receiver: String,
    pub max_attempts: i32,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = notification_attempts)]
pub struct NotificationAttempt {
    pub id: Uuid,
    pub notification_id: Uuid,
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub latency_ms: Option<i32>,
    pub error: Option<String>,
    pub response_body: Option<String>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = webhook_secrets)]
pub struct WebhookSecret {
    pub id: Uuid,
    pub project_id: Uuid,
    pub secret: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret itself.
        f.debug_struct("WebhookSecret")
            .field("id", &self.id)
            .field("project_id", &self.project_id)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

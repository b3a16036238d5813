//! Messages that travel through RabbitMQ, and the webhook payloads of the seed document.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::status::{BatchStatus, JobStatus, OutputMode};

/// The `type` property of each message kind.
pub mod kind {
    pub const RENDER: &str = "render.job";
    pub const ARCHIVE: &str = "archive.build";
    pub const DISCOVER: &str = "site.discover";
    pub const JOB_COMPLETED: &str = "job.completed";
    pub const BATCH_COMPLETED: &str = "batch.completed";
}

/// Work for a worker: render one job. Everything else is read from the job's row, so a
/// message is small and a stale message cannot carry stale options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderJob {
    pub job_id: Uuid,
    pub batch_id: Uuid,
}

/// Work for a worker: build and store a ZIP batch's archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveJob {
    pub batch_id: Uuid,
}

/// Work for a worker: find the pages of a website batch. The start URL, method, patterns
/// and page limit are read from the batch row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoverJob {
    pub batch_id: Uuid,
}

/// One job reached a final state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCompleted {
    pub job_id: Uuid,
    pub batch_id: Uuid,
    pub project_id: Uuid,
    pub status: JobStatus,
    pub output_mode: OutputMode,
}

/// A batch reached a final state (in ZIP mode: after its archive is stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchCompleted {
    pub batch_id: Uuid,
    pub project_id: Uuid,
    pub status: BatchStatus,
    pub output_mode: OutputMode,
}

/// Webhook body of individual mode: one per URL, as it finishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobWebhook {
    pub job_id: String,
    pub status: String,
    pub batch_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gcs_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_size: Option<i64>,
    /// Ours: why a failed job failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One row of the ZIP-mode webhook's `tasks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskEntry {
    pub url: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Webhook body of ZIP mode: one for the batch when it completes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchWebhook {
    pub job_id: String,
    pub status: String,
    pub batch_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gcs_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_size: Option<i64>,
    pub total_tasks: u32,
    pub successful_tasks: u32,
    pub failed_tasks: u32,
    pub tasks: Vec<TaskEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn individual_payloads_match_the_seed() {
        let batch_id = Uuid::nil();
        let ok = JobWebhook {
            job_id: "12345".into(),
            status: "success".into(),
            batch_id,
            gcs_uri: Some("env/files/p/url-to-pdf/example_20260405_123456789.pdf".into()),
            filename: Some("example_20260405_123456789.pdf".into()),
            file_size: Some(184320),
            error: None,
        };
        assert_eq!(
            serde_json::to_value(&ok).expect("serialises"),
            json!({"job_id": "12345", "status": "success", "batch_id": batch_id,
                   "gcs_uri": "env/files/p/url-to-pdf/example_20260405_123456789.pdf",
                   "filename": "example_20260405_123456789.pdf", "file_size": 184320})
        );
        let failed = JobWebhook {
            job_id: "12345".into(),
            status: "failed".into(),
            batch_id,
            gcs_uri: None,
            filename: None,
            file_size: None,
            error: None,
        };
        assert_eq!(
            serde_json::to_value(&failed).expect("serialises"),
            json!({"job_id": "12345", "status": "failed", "batch_id": batch_id})
        );
    }
}

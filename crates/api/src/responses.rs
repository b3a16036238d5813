//! The response bodies of the v1 contract, typed so the OpenAPI document is generated from
//! what the handlers actually send.

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// `202`: the batch is accepted.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// Always `processing`.
    pub status: &'static str,
    pub batch_id: Uuid,
    pub url_count: usize,
    /// `individual` or `zip`.
    pub output_format: &'static str,
}

/// `200`: a sync conversion's result.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncResult {
    pub job_id: String,
    /// A download link that expires (default 15 minutes).
    pub presigned_url: String,
    pub object_key: String,
    pub filename: String,
    pub file_size: Option<i64>,
    pub conversion_time_seconds: Option<f64>,
}

/// One URL of a batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchItem {
    pub source_url: String,
    /// `Success`, `In Progress` or `Failed`.
    #[schema(value_type = String)]
    pub status: enconvert_domain::ItemStatus,
    /// Individual mode, successful items: a download link.
    pub download_url: Option<String>,
    pub output_file_size: Option<i64>,
    /// Seconds, e.g. `"3.12"`.
    pub duration: Option<String>,
    /// Ours: the job's id (yours when you chose one).
    pub job_id: String,
    /// Ours: why the item failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `GET /v1/convert/batch/{batch_id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchStatusBody {
    pub batch_id: Uuid,
    /// `processing`, `completed`, `partial` or `failed`.
    pub status: &'static str,
    pub total: u32,
    pub completed: u32,
    pub failed: u32,
    pub in_progress: u32,
    /// `individual` or `zip`.
    pub output_mode: &'static str,
    /// ZIP mode, once complete: a download link for the archive.
    pub zip_download_url: Option<String>,
    pub items: Vec<BatchItem>,
}

/// `GET /v1/convert/status/{job_id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobStatusBody {
    pub job_id: String,
    pub batch_id: Uuid,
    /// `processing`, `success` or `failed`.
    pub status: &'static str,
    pub presigned_url: Option<String>,
    pub object_key: Option<String>,
    pub filename: Option<String>,
    pub file_size: Option<i64>,
    pub error: Option<String>,
}

/// Every error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A sentence for people.
    pub detail: String,
    /// Ours: a stable snake_case code for programs.
    pub code: String,
}

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

/// `202` of the website endpoints: the batch is accepted.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebsiteAccepted {
    /// `processing`; `failed` when discovery already found no page to render.
    pub status: &'static str,
    pub batch_id: Uuid,
    /// Pages that will be rendered (at most the plan's `batch_limit`); `null` while discovery
    /// is still running.
    pub url_count: Option<usize>,
    /// Always `zip`.
    pub output_format: &'static str,
    /// Distinct pages found, which can exceed `url_count` when the plan's limit cut the list;
    /// `null` while discovery is still running.
    pub total_discovered: Option<usize>,
    /// `sitemap` or `full_crawl`.
    pub discovery_method: &'static str,
    /// Ours: `done`, `in_progress` (the api stopped waiting; poll the batch) or `failed`.
    pub discovery: &'static str,
    /// Ours: why discovery found no page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
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
    /// Ours, website batches: `in_progress`, `done` or `failed` (no page found).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovery: Option<&'static str>,
    /// Ours, website batches: `sitemap` or `full_crawl`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovery_method: Option<String>,
    /// Ours, website batches: distinct pages found (can exceed `total`, the pages rendered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_discovered: Option<u32>,
    /// Ours: why a batch failed as a whole (a website where discovery found no page).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
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

//! Job and batch status rules: the aggregation table of the seed document.

use serde::{Deserialize, Serialize};

/// Lifecycle of one URL's conversion.
///
/// `Queued -> Rendering -> Success | Failed`; `Rendering -> Queued` only when a worker gives
/// the job back (shutdown, browser crash) so another may take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Rendering,
    Success,
    Failed,
}

impl JobStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Rendering => "rendering",
            JobStatus::Success => "success",
            JobStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => JobStatus::Queued,
            "rendering" => JobStatus::Rendering,
            "success" => JobStatus::Success,
            "failed" => JobStatus::Failed,
            _ => return None,
        })
    }

    pub const fn is_final(self) -> bool {
        matches!(self, JobStatus::Success | JobStatus::Failed)
    }

    /// The item status shown in batch polling.
    pub const fn item_status(self) -> ItemStatus {
        match self {
            JobStatus::Queued | JobStatus::Rendering => ItemStatus::InProgress,
            JobStatus::Success => ItemStatus::Success,
            JobStatus::Failed => ItemStatus::Failed,
        }
    }

    /// The status word of the job status endpoint and of webhooks.
    pub const fn public_str(self) -> &'static str {
        match self {
            JobStatus::Queued | JobStatus::Rendering => "processing",
            JobStatus::Success => "success",
            JobStatus::Failed => "failed",
        }
    }
}

/// An item's status as batch polling shows it (the seed's capitalised words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ItemStatus {
    #[serde(rename = "Success")]
    Success,
    #[serde(rename = "In Progress")]
    InProgress,
    #[serde(rename = "Failed")]
    Failed,
}

/// How a batch's files are delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputMode {
    Individual,
    Zip,
}

impl OutputMode {
    pub const fn as_str(self) -> &'static str {
        match self {
            OutputMode::Individual => "individual",
            OutputMode::Zip => "zip",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "individual" => Some(OutputMode::Individual),
            "zip" => Some(OutputMode::Zip),
            _ => None,
        }
    }
}

/// A batch's status as the seed's table defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    /// At least one URL is still being converted (in ZIP mode: or the archive is not stored yet).
    Processing,
    /// All URLs converted successfully.
    Completed,
    /// All URLs finished, some failed.
    Partial,
    /// All URLs failed.
    Failed,
}

impl BatchStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            BatchStatus::Processing => "processing",
            BatchStatus::Completed => "completed",
            BatchStatus::Partial => "partial",
            BatchStatus::Failed => "failed",
        }
    }

    pub const fn is_final(self) -> bool {
        !matches!(self, BatchStatus::Processing)
    }
}

/// Counts of a batch's items, the input of [`BatchCounts::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchCounts {
    pub total: u32,
    pub succeeded: u32,
    pub failed: u32,
}

impl BatchCounts {
    pub const fn finished(&self) -> u32 {
        self.succeeded + self.failed
    }

    pub const fn in_progress(&self) -> u32 {
        self.total.saturating_sub(self.finished())
    }

    pub const fn all_finished(&self) -> bool {
        self.total > 0 && self.finished() >= self.total
    }

    /// The batch status. `archive_pending` is true in ZIP mode until the archive is stored
    /// (or its building has failed for good), so a ZIP batch never reads `completed` before its
    /// `zip_download_url` exists.
    pub const fn status(&self, archive_pending: bool) -> BatchStatus {
        if !self.all_finished() || archive_pending {
            BatchStatus::Processing
        } else if self.failed == 0 {
            BatchStatus::Completed
        } else if self.succeeded == 0 {
            BatchStatus::Failed
        } else {
            BatchStatus::Partial
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_status_table() {
        use BatchStatus::*;
        // (total, succeeded, failed, archive_pending) -> status
        let table: &[(u32, u32, u32, bool, BatchStatus)] = &[
            (3, 0, 0, false, Processing),
            (3, 1, 0, false, Processing),
            (3, 1, 1, false, Processing),
            (3, 2, 0, false, Processing),
            (3, 3, 0, false, Completed),
            (3, 2, 1, false, Partial),
            (3, 1, 2, false, Partial),
            (3, 0, 3, false, Failed),
            (1, 1, 0, false, Completed),
            (1, 0, 1, false, Failed),
            (1, 0, 0, false, Processing),
            // ZIP mode: all items done but the archive is not stored yet.
            (3, 3, 0, true, Processing),
            (3, 2, 1, true, Processing),
            // an empty batch is never done
            (0, 0, 0, false, Processing),
        ];
        for &(total, succeeded, failed, pending, want) in table {
            let c = BatchCounts {
                total,
                succeeded,
                failed,
            };
            assert_eq!(c.status(pending), want, "{c:?} pending={pending}");
        }
    }

    #[test]
    fn in_progress_counts_unfinished_items() {
        let c = BatchCounts {
            total: 5,
            succeeded: 2,
            failed: 1,
        };
        assert_eq!(c.in_progress(), 2);
        assert_eq!(c.finished(), 3);
    }

    #[test]
    fn job_status_words() {
        for s in [
            JobStatus::Queued,
            JobStatus::Rendering,
            JobStatus::Success,
            JobStatus::Failed,
        ] {
            assert_eq!(JobStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(JobStatus::Rendering.public_str(), "processing");
        assert_eq!(
            serde_json::to_string(&JobStatus::Queued.item_status()).expect("serialises"),
            "\"In Progress\""
        );
        assert_eq!(
            serde_json::to_string(&ItemStatus::Success).expect("serialises"),
            "\"Success\""
        );
    }
}

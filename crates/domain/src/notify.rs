//! The content of completion emails, independent of how they are rendered or sent.

use serde::{Deserialize, Serialize};

/// URLs in the ZIP-mode tasks table are cut to this many characters.
pub const TABLE_URL_CHARS: usize = 50;

/// Cuts a URL for the tasks table: at most [`TABLE_URL_CHARS`] characters, an ellipsis
/// counted in when cut.
pub fn truncate_url(url: &str) -> String {
    if url.chars().count() <= TABLE_URL_CHARS {
        url.to_string()
    } else {
        let mut s: String = url.chars().take(TABLE_URL_CHARS - 3).collect();
        s.push_str("...");
        s
    }
}

/// The dashboard page of a batch: `{dashboard}/batches/{batch_id}`.
pub fn batch_link(dashboard_url: &str, batch_id: &str) -> String {
    format!("{}/batches/{batch_id}", dashboard_url.trim_end_matches('/'))
}

/// One row of the ZIP-mode tasks table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRow {
    pub number: usize,
    pub url: String,
    pub status: String,
    pub filename: String,
}

/// What a completion email says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailContent {
    pub subject: String,
    pub success: bool,
    pub job_id: String,
    pub batch_id: Option<String>,
    pub status_text: String,
    /// Where the email sends the reader: the batch's page on the dashboard.
    pub dashboard_url: String,
    /// Only in ZIP mode.
    pub tasks: Option<Vec<TaskRow>>,
}

impl EmailContent {
    /// The email for one job of an individual-mode batch: job ID and status, no table.
    pub fn for_job(
        job_id: &str,
        batch_id: Option<&str>,
        success: bool,
        dashboard_url: &str,
    ) -> Self {
        let status_text = if success { "success" } else { "failed" };
        EmailContent {
            subject: if success {
                format!("Your conversion job {job_id} succeeded")
            } else {
                format!("Your conversion job {job_id} failed")
            },
            success,
            job_id: job_id.to_string(),
            batch_id: batch_id.map(str::to_string),
            status_text: status_text.to_string(),
            dashboard_url: dashboard_url.to_string(),
            tasks: None,
        }
    }

    /// The one email of a ZIP-mode batch, with its tasks table.
    /// `tasks` holds `(url, succeeded, filename)` in submission order.
    pub fn for_zip_batch(
        batch_id: &str,
        success: bool,
        dashboard_url: &str,
        tasks: &[(String, bool, Option<String>)],
    ) -> Self {
        let rows = tasks
            .iter()
            .enumerate()
            .map(|(i, (url, ok, filename))| TaskRow {
                number: i + 1,
                url: truncate_url(url),
                status: if *ok { "success" } else { "failed" }.to_string(),
                filename: filename.clone().unwrap_or_else(|| "-".to_string()),
            })
            .collect();
        let mut content = Self::for_job(batch_id, Some(batch_id), success, dashboard_url);
        let succeeded = tasks.iter().filter(|(_, ok, _)| *ok).count();
        content.subject = if !success {
            format!("Your batch {batch_id} failed")
        } else if succeeded == tasks.len() {
            format!("Your batch {batch_id} is complete")
        } else {
            format!(
                "Your batch {batch_id} is complete: {succeeded} of {} succeeded",
                tasks.len()
            )
        };
        content.tasks = Some(rows);
        content
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_cut_to_fifty_characters() {
        let short = "https://example.com/a";
        assert_eq!(truncate_url(short), short);
        let exact: String = "x".repeat(50);
        assert_eq!(truncate_url(&exact), exact);
        let long = format!("https://example.com/{}", "p".repeat(80));
        let cut = truncate_url(&long);
        assert_eq!(cut.chars().count(), 50);
        assert!(cut.ends_with("..."));
    }

    #[test]
    fn individual_email_has_no_table() {
        let c = EmailContent::for_job("j1", Some("b1"), false, "https://dash");
        assert!(c.tasks.is_none());
        assert!(c.subject.contains("failed"));
        assert_eq!(c.status_text, "failed");
    }

    #[test]
    fn zip_email_lists_every_task() {
        let tasks = vec![
            (
                "https://a.example/1".to_string(),
                true,
                Some("1.pdf".to_string()),
            ),
            ("https://a.example/2".to_string(), false, None),
        ];
        let c = EmailContent::for_zip_batch("b1", true, "https://dash", &tasks);
        let rows = c.tasks.expect("table");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].number, 2);
        assert_eq!(rows[1].status, "failed");
        assert_eq!(rows[1].filename, "-");
        assert_eq!(c.subject, "Your batch b1 is complete: 1 of 2 succeeded");
        let failed = EmailContent::for_zip_batch("b1", false, "https://dash", &tasks);
        assert_eq!(failed.subject, "Your batch b1 failed");
    }

    #[test]
    fn the_dashboard_link_opens_the_batch() {
        assert_eq!(
            batch_link("https://x.example/dashboard/", "b-1"),
            "https://x.example/dashboard/batches/b-1"
        );
        assert_eq!(
            batch_link("https://x.example/dashboard", "b-1"),
            "https://x.example/dashboard/batches/b-1"
        );
    }
}

//! The pages' templates (`templates/dashboard/`) and the rows they show. Every value is
//! escaped by askama; the Rust side hands over ready-made text.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;
use chrono::{DateTime, Utc};
use enconvert_db::sessions::Session;

use super::DashError;
use crate::error::ApiError;

/// What every page's frame shows.
pub struct Page {
    pub title: String,
    pub nav: Option<Nav>,
    /// A one-line message after an action (fixed texts only, never request input).
    pub notice: Option<&'static str>,
    /// A running batch: the script (or, without JavaScript, a refresh) keeps it current.
    pub refresh: bool,
}

/// The header of a signed-in page.
pub struct Nav {
    pub project: String,
    pub csrf: String,
    /// `batches` or `settings`: the link marked `aria-current`.
    pub current: &'static str,
}

impl Page {
    pub fn bare(title: &str) -> Self {
        Page {
            title: title.to_string(),
            nav: None,
            notice: None,
            refresh: false,
        }
    }

    pub fn signed(title: &str, session: &Session, current: &'static str) -> Self {
        Page {
            nav: Some(Nav {
                project: session.caller.project.name.clone(),
                csrf: session.csrf_token.clone(),
                current,
            }),
            ..Page::bare(title)
        }
    }
}

/// Renders a page as an HTML response.
pub fn html(status: StatusCode, page: &impl Template) -> Result<HttpResponse, DashError> {
    let body = page.render().map_err(ApiError::internal)?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body))
}

pub fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

pub fn maybe_when(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "—".to_string(), when)
}

/// `1.2 MB`, `834 B`.
pub fn size(bytes: i64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    #[expect(clippy::cast_precision_loss, reason = "a size for people")]
    let mut v = bytes as f64 / 1000.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1000.0 {
            break;
        }
        v /= 1000.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

#[derive(Template)]
#[template(path = "dashboard/error.html")]
pub struct ErrorPage<'a> {
    pub page: Page,
    pub message: &'a str,
}

#[derive(Template)]
#[template(path = "dashboard/login.html")]
pub struct LoginPage<'a> {
    pub page: Page,
    pub csrf: &'a str,
    pub next: &'a str,
    pub error: Option<&'a str>,
}

/// Progress of a batch as its rows and pages show it.
pub struct Progress {
    pub status: &'static str,
    pub total: u32,
    pub succeeded: u32,
    pub failed: u32,
    pub finished: u32,
    pub in_progress: u32,
}

pub struct BatchRow {
    pub id: String,
    pub short_id: String,
    pub created: String,
    pub kind: String,
    pub progress: Progress,
}

#[derive(Template)]
#[template(path = "dashboard/batches.html")]
pub struct BatchesPage {
    pub page: Page,
    pub rows: Vec<BatchRow>,
    /// The `before` of the next (older) page, when there may be one.
    pub older: Option<i64>,
}

pub struct ZipLink {
    pub url: String,
    pub name: String,
    pub size: String,
}

pub struct ItemRow {
    pub id: String,
    pub number: i32,
    pub url: String,
    pub status: &'static str,
    pub duration: String,
    pub error: String,
    pub download: Option<String>,
    pub filename: String,
    /// Why there is no link (in ZIP mode, not done, expired...).
    pub file_note: &'static str,
}

pub struct AttemptRow {
    pub number: i32,
    pub at: String,
    pub outcome: String,
}

pub struct DeliveryRow {
    pub id: String,
    pub channel: String,
    pub target: String,
    pub subject: String,
    pub status: String,
    pub next_attempt: Option<String>,
    pub attempts: Vec<AttemptRow>,
    pub can_redeliver: bool,
}

#[derive(Template)]
#[template(path = "dashboard/batch.html")]
pub struct BatchPage {
    pub page: Page,
    pub csrf: String,
    pub id: String,
    pub kind: String,
    pub mode: &'static str,
    pub created: String,
    pub completed: String,
    pub discovery: Option<String>,
    pub progress: Progress,
    pub zip: Option<ZipLink>,
    pub zip_note: Option<&'static str>,
    pub items: Vec<ItemRow>,
    pub deliveries: Vec<DeliveryRow>,
}

#[derive(Template)]
#[template(path = "dashboard/item.html")]
pub struct ItemPage {
    pub page: Page,
    pub batch_id: String,
    pub item: ItemRow,
    pub job_id: String,
    pub attempts: i32,
    pub started: String,
    pub finished: String,
    pub file_size: String,
}

pub struct KeyRow {
    pub id: String,
    pub prefix: String,
    pub kind: String,
    pub created: String,
    pub revoked: Option<String>,
    /// The key this session signed in with.
    pub current: bool,
}

#[derive(Template)]
#[template(path = "dashboard/settings.html")]
pub struct SettingsPage {
    pub page: Page,
    pub csrf: String,
    pub owner_email: String,
    pub default_email: bool,
    pub keys: Vec<KeyRow>,
    /// A key just created: `(kind, key)`, shown this once.
    pub new_key: Option<(String, String)>,
    /// A webhook secret just made, shown this once.
    pub new_secret: Option<String>,
    pub grace_hours: u64,
}

#[cfg(test)]
mod tests {
    use super::size;

    #[test]
    fn sizes_for_people() {
        assert_eq!(size(834), "834 B");
        assert_eq!(size(1_234), "1.2 KB");
        assert_eq!(size(456_789), "456.8 KB");
        assert_eq!(size(12_345_678), "12.3 MB");
    }
}

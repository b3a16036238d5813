//! Per-key rate limits by plan: `RateLimit-*` headers, `429` with `Retry-After` beyond.
//! Polling and downloads are exempt.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::http::header::{HeaderName, HeaderValue};
use chrono::{DateTime, Utc};
use enconvert_db::limits::{self, Count, Window};
use enconvert_db::projects::Caller;
use enconvert_db::{Db, DbError};
use enconvert_domain::request::KeyKind;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::auth;
use crate::error::ApiError;

/// The caller's standing after this request.
pub struct RateInfo {
    limit: u32,
    remaining: u32,
    reset: u32,
}

impl RateInfo {
    pub fn apply(&self, resp: &mut HttpResponse) {
        let headers = resp.headers_mut();
        for (name, value) in [
            ("ratelimit-limit", self.limit),
            ("ratelimit-remaining", self.remaining),
            ("ratelimit-reset", self.reset),
        ] {
            if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
                headers.insert(HeaderName::from_static(name), v);
            }
        }
    }
}

/// The caller's standing after this request was counted in `window`; `429` when the key is
/// over its plan's limit for this minute.
pub fn check(caller: &Caller, window: Window) -> Result<RateInfo, ApiError> {
    let plan = caller.plan.to_plan();
    let limit = match auth::key_kind(caller) {
        KeyKind::Private => plan.rpm_private,
        KeyKind::Public => plan.rpm_public,
    };
    let count = u32::try_from(window.count).unwrap_or(u32::MAX);
    let reset = u32::try_from(window.reset_secs).unwrap_or(60);
    if count > limit {
        return Err(ApiError::RateLimited { limit, reset });
    }
    Ok(RateInfo {
        limit,
        remaining: limit - count,
        reset,
    })
}

/// How often an api process adds what it counted to the shared windows in PostgreSQL.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Counts requests per key in this process and adds them to the shared one-minute windows in
/// PostgreSQL every [`FLUSH_EVERY`], in one statement for all keys, instead of one statement
/// per request (that row, updated by every request of a key, had been the api's bottleneck).
///
/// A key's count is the window's total as of the last flush plus what this process counted
/// since: exact with one api process; with several, each also sees the others' requests up
/// to [`FLUSH_EVERY`] late, so a key may pass its limit by what the other processes accept
/// in that time.
#[derive(Default)]
pub struct RateCounter {
    keys: Mutex<HashMap<Uuid, Tally>>,
}

#[derive(Default, Clone, Copy)]
struct Tally {
    /// The window (its start, in Unix minutes).
    minute: i64,
    /// The window's total across processes at the last flush, ours included.
    total: i32,
    /// Counted here and being flushed now.
    flushing: i32,
    /// Counted here since.
    pending: i32,
}

impl RateCounter {
    /// Counts one request of `key_id`; its standing in the current window.
    pub fn hit(&self, key_id: Uuid) -> Window {
        let now = Utc::now().timestamp();
        let minute = now.div_euclid(60);
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        let tally = keys.entry(key_id).or_default();
        if tally.minute != minute {
            *tally = Tally {
                minute,
                ..Tally::default()
            };
        }
        tally.pending = tally.pending.saturating_add(1);
        Window {
            count: tally
                .total
                .saturating_add(tally.flushing)
                .saturating_add(tally.pending),
            reset_secs: i32::try_from(60 - now.rem_euclid(60)).unwrap_or(60),
        }
    }

    /// Adds what was counted since the last flush to PostgreSQL and learns each window's
    /// total. On failure the counts stay here, to be added next time.
    pub async fn flush(&self, db: &Db) -> Result<(), DbError> {
        let counts: Vec<Count> = {
            let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
            let current = Utc::now().timestamp().div_euclid(60);
            // Windows that are over are no longer needed here (their counts were flushed, or
            // no longer matter).
            keys.retain(|_, t| t.minute >= current - 1 && (t.minute == current || t.pending > 0));
            keys.iter_mut()
                .filter(|(_, t)| t.pending > 0)
                .filter_map(|(key_id, t)| {
                    let start = DateTime::from_timestamp(t.minute * 60, 0)?;
                    t.flushing = t.pending;
                    t.pending = 0;
                    Some(Count {
                        key_id: *key_id,
                        window_start: start,
                        count: t.flushing,
                    })
                })
                .collect()
        };
        if counts.is_empty() {
            return Ok(());
        }
        let result = match db.conn().await {
            Ok(mut conn) => limits::add_counts(&mut conn, &counts).await,
            Err(e) => Err(e),
        };
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        let totals: HashMap<(Uuid, i64), i32> = match &result {
            Ok(rows) => rows
                .iter()
                .map(|r| {
                    (
                        (r.key_id, r.window_start.timestamp().div_euclid(60)),
                        r.count,
                    )
                })
                .collect(),
            Err(_) => HashMap::new(),
        };
        for c in &counts {
            let minute = c.window_start.timestamp().div_euclid(60);
            let Some(t) = keys.get_mut(&c.key_id).filter(|t| t.minute == minute) else {
                continue;
            };
            match (&result, totals.get(&(c.key_id, minute))) {
                (Ok(_), Some(total)) => t.total = *total,
                // A key deleted meanwhile: its count no longer matters.
                (Ok(_), None) => t.total = t.total.saturating_add(t.flushing),
                (Err(_), _) => t.pending = t.pending.saturating_add(t.flushing),
            }
            t.flushing = 0;
        }
        result.map(drop)
    }
}

/// Flushes `counter` every [`FLUSH_EVERY`] until `cancel` fires, and once more then.
pub async fn flush_until(counter: Arc<RateCounter>, db: Db, cancel: CancellationToken) {
    let mut failing = false;
    loop {
        let stop = tokio::select! {
            _ = cancel.cancelled() => true,
            _ = tokio::time::sleep(FLUSH_EVERY) => false,
        };
        match counter.flush(&db).await {
            Ok(()) => failing = false,
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "cannot add request counts to the rate windows; they are kept until it can");
            }
            Err(_) => {}
        }
        if stop {
            return;
        }
    }
}

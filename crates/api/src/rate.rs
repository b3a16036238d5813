//! Per-key rate limits by plan: `RateLimit-*` headers, `429` with `Retry-After` beyond.
//! Polling and downloads are exempt.

use actix_web::HttpResponse;
use actix_web::http::header::{HeaderName, HeaderValue};
use enconvert_db::limits::Window;
use enconvert_db::projects::Caller;
use enconvert_domain::request::KeyKind;

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

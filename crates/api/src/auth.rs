//! Who is calling: the `X-API-Key` header, looked up by its hash.
//!
//! Callers found are kept in memory ([`Callers`]) while PostgreSQL can tell this process of
//! any change to keys, projects and plans (triggers `NOTIFY` at commit; see
//! `enconvert_db::finished`), so that a request usually costs no look-up; a revoked key is
//! refused as soon as its revocation's notification arrives (milliseconds), at once by the
//! process that revoked it.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::HttpRequest;
use enconvert_db::keys;
use enconvert_db::limits::Window;
use enconvert_db::projects::{self, Caller};
use enconvert_domain::request::KeyKind;

use crate::error::ApiError;
use crate::state::AppState;

/// How long a kept caller is used at most, even when no change was announced (a bound for
/// a notification connection that broke without this process noticing).
const KEEP_FOR: Duration = Duration::from_secs(30);
/// How many callers are kept at most (all are dropped when one more comes).
const KEEP_AT_MOST: usize = 10_000;

/// Callers by key hash, each with the [`callers_generation`] it was read under.
///
/// [`callers_generation`]: enconvert_db::finished::Listener::callers_generation
#[derive(Default)]
pub struct Callers {
    kept: Mutex<HashMap<Vec<u8>, (Caller, u64, Instant)>>,
}

impl Callers {
    fn get(&self, hash: &[u8], generation: u64) -> Option<Caller> {
        let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.get(hash)
            .filter(|(_, g, at)| *g == generation && at.elapsed() < KEEP_FOR)
            .map(|(c, _, _)| c.clone())
    }

    fn put(&self, hash: Vec<u8>, caller: Caller, generation: u64) {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() >= KEEP_AT_MOST {
            kept.clear();
        }
        kept.insert(hash, (caller, generation, Instant::now()));
    }
}

/// The caller of a request. Missing, unknown and revoked keys get the same `401`.
pub async fn caller(state: &AppState, req: &HttpRequest) -> Result<Caller, ApiError> {
    let hash = key_hash(req)?;
    // Read before the look-up: a change committed after it moves the generation on, and
    // what this look-up found is then not used again.
    let generation = state.finished.callers_generation();
    if let Some(caller) = generation.and_then(|g| state.callers.get(&hash, g)) {
        return Ok(caller);
    }
    let mut conn = state.db.conn().await?;
    let caller = projects::authenticate(&mut conn, &hash)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    drop(conn);
    if let Some(g) = generation {
        state.callers.put(hash, caller.clone(), g);
    }
    Ok(caller)
}

/// [`caller`], with the request counted in the key's rate window.
pub async fn counted_caller(
    state: &AppState,
    req: &HttpRequest,
) -> Result<(Caller, Window), ApiError> {
    let caller = caller(state, req).await?;
    let window = state.rates.hit(caller.key.id);
    Ok((caller, window))
}

/// The hash of the request's `X-API-Key`, if it carries something that looks like a key.
pub fn key_hash(req: &HttpRequest) -> Result<Vec<u8>, ApiError> {
    let key = req
        .headers()
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .ok_or(ApiError::Unauthorized)?;
    if keys::kind_of(key).is_none() {
        return Err(ApiError::Unauthorized);
    }
    Ok(keys::hash(key))
}

pub fn key_kind(caller: &Caller) -> KeyKind {
    KeyKind::parse(&caller.key.kind).unwrap_or(KeyKind::Public)
}

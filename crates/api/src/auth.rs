//! Who is calling: the `X-API-Key` header, looked up by its hash.

use actix_web::HttpRequest;
use enconvert_db::keys;
use enconvert_db::limits::Window;
use enconvert_db::projects::{self, Caller};
use enconvert_domain::request::KeyKind;

use crate::error::ApiError;
use crate::state::AppState;

/// The caller of a request. Missing, unknown and revoked keys get the same `401`.
pub async fn caller(state: &AppState, req: &HttpRequest) -> Result<Caller, ApiError> {
    let hash = key_hash(req)?;
    let mut conn = state.db.conn().await?;
    projects::authenticate(&mut conn, &hash)
        .await?
        .ok_or(ApiError::Unauthorized)
}

/// [`caller`], with the request counted in the key's rate window in the same round trip.
pub async fn counted_caller(
    state: &AppState,
    req: &HttpRequest,
) -> Result<(Caller, Window), ApiError> {
    let hash = key_hash(req)?;
    let mut conn = state.db.conn().await?;
    projects::authenticate_and_count(&mut conn, &hash)
        .await?
        .ok_or(ApiError::Unauthorized)
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

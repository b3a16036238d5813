//! Who is calling: the `X-API-Key` header, looked up by its hash.

use actix_web::HttpRequest;
use enconvert_db::keys;
use enconvert_db::projects::{self, Caller};
use enconvert_domain::request::KeyKind;

use crate::error::ApiError;
use crate::state::AppState;

/// The caller of a request. Missing, unknown and revoked keys get the same `401`.
pub async fn caller(state: &AppState, req: &HttpRequest) -> Result<Caller, ApiError> {
    let key = req
        .headers()
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .ok_or(ApiError::Unauthorized)?;
    if keys::kind_of(key).is_none() {
        return Err(ApiError::Unauthorized);
    }
    let mut conn = state.db.conn().await?;
    projects::authenticate(&mut conn, &keys::hash(key))
        .await?
        .ok_or(ApiError::Unauthorized)
}

pub fn key_kind(caller: &Caller) -> KeyKind {
    KeyKind::parse(&caller.key.kind).unwrap_or(KeyKind::Public)
}

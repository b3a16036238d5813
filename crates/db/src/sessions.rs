//! Dashboard sessions: a random token in an HttpOnly cookie, of which only a SHA-256 is
//! stored. A session ends when it expires, when it is signed out (the row is deleted), when
//! the key it signed in with is revoked, or when all of a project's sessions are revoked.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::models::{ApiKey, PlanRow, Project};
use crate::projects::Caller;
use crate::schema::{api_keys, dashboard_sessions, plans, projects};
use crate::{Conn, DbError};

/// A live session: who it is, and the token its forms must send back.
#[derive(Clone)]
pub struct Session {
    pub caller: Caller,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The CSRF token is not printed.
        f.debug_struct("Session")
            .field("project_id", &self.caller.project.id)
            .field("key_id", &self.caller.key.id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// 32 random bytes in base64url.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Opens a session for `key` that lasts `ttl`; returns the cookie's token (not stored).
pub async fn create(
    conn: &mut Conn,
    key: &ApiKey,
    ttl: std::time::Duration,
) -> Result<String, DbError> {
    let token = random_token();
    let now = Utc::now();
    let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(12));
    diesel::insert_into(dashboard_sessions::table)
        .values((
            dashboard_sessions::token_hash.eq(hash(&token)),
            dashboard_sessions::project_id.eq(key.project_id),
            dashboard_sessions::key_id.eq(key.id),
            dashboard_sessions::csrf_token.eq(random_token()),
            dashboard_sessions::created_at.eq(now),
            dashboard_sessions::expires_at.eq(now + ttl),
        ))
        .execute(conn)
        .await?;
    Ok(token)
}

/// The live session of this cookie token: not expired, and its key not revoked.
pub async fn find(conn: &mut Conn, token: &str) -> Result<Option<Session>, DbError> {
    let row = dashboard_sessions::table
        .inner_join(api_keys::table.inner_join(projects::table.inner_join(plans::table)))
        .filter(dashboard_sessions::token_hash.eq(hash(token)))
        .filter(dashboard_sessions::expires_at.gt(Utc::now()))
        .filter(api_keys::revoked_at.is_null())
        .select((
            ApiKey::as_select(),
            Project::as_select(),
            PlanRow::as_select(),
            dashboard_sessions::csrf_token,
            dashboard_sessions::expires_at,
        ))
        .first::<(ApiKey, Project, PlanRow, String, DateTime<Utc>)>(conn)
        .await
        .optional()?;
    Ok(
        row.map(|(key, project, plan, csrf_token, expires_at)| Session {
            caller: Caller { key, project, plan },
            csrf_token,
            expires_at,
        }),
    )
}

/// Ends the session of this cookie token (signing out); `false` when there was none.
pub async fn delete(conn: &mut Conn, token: &str) -> Result<bool, DbError> {
    let n = diesel::delete(dashboard_sessions::table.find(hash(token)))
        .execute(conn)
        .await?;
    Ok(n == 1)
}

/// Ends every session of a project; returns how many.
pub async fn revoke_project(conn: &mut Conn, project_id: Uuid) -> Result<usize, DbError> {
    Ok(diesel::delete(
        dashboard_sessions::table.filter(dashboard_sessions::project_id.eq(project_id)),
    )
    .execute(conn)
    .await?)
}

/// Deletes expired sessions; returns how many.
pub async fn prune(conn: &mut Conn) -> Result<usize, DbError> {
    Ok(diesel::delete(
        dashboard_sessions::table.filter(dashboard_sessions::expires_at.le(Utc::now())),
    )
    .execute(conn)
    .await?)
}

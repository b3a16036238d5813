//! Per-project webhook signing secrets (`whsec_...`).
//!
//! A project has at most one current secret (no expiry). Rotating gives it an expiry, the
//! grace period, and adds a new current one; every secret not yet expired signs.

use chrono::Utc;
use diesel::prelude::*;
use diesel::sql_types;
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, RunQueryDsl};
use enconvert_domain::webhook::{SECRET_BYTES, format_secret};
use rand::RngCore;
use uuid::Uuid;

use crate::models::WebhookSecret;
use crate::schema::webhook_secrets;
use crate::{Conn, DbError};

fn new_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format_secret(&bytes)
}

/// The project's current secret, created on first use.
pub async fn current(conn: &mut Conn, project_id: Uuid) -> Result<String, DbError> {
    // The partial unique index makes concurrent first uses agree on one secret.
    diesel::sql_query(
        "INSERT INTO webhook_secrets (id, project_id, secret) VALUES ($1, $2, $3) \
         ON CONFLICT (project_id) WHERE expires_at IS NULL DO NOTHING",
    )
    .bind::<sql_types::Uuid, _>(Uuid::now_v7())
    .bind::<sql_types::Uuid, _>(project_id)
    .bind::<sql_types::Text, _>(new_secret())
    .execute(conn)
    .await?;
    Ok(webhook_secrets::table
        .filter(webhook_secrets::project_id.eq(project_id))
        .filter(webhook_secrets::expires_at.is_null())
        .select(webhook_secrets::secret)
        .first(conn)
        .await?)
}

/// Every secret that signs now, newest first (the current one, then those in their grace
/// period). Creates the current one on first use.
pub async fn signing(conn: &mut Conn, project_id: Uuid) -> Result<Vec<String>, DbError> {
    current(conn, project_id).await?;
    let rows: Vec<WebhookSecret> = webhook_secrets::table
        .filter(webhook_secrets::project_id.eq(project_id))
        .filter(
            webhook_secrets::expires_at
                .is_null()
                .or(webhook_secrets::expires_at.gt(Utc::now())),
        )
        .order(webhook_secrets::created_at.desc())
        .select(WebhookSecret::as_select())
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(|r| r.secret).collect())
}

/// Replaces the current secret: the old one keeps signing for `grace`. Returns the new one.
pub async fn rotate(
    conn: &mut Conn,
    project_id: Uuid,
    grace: std::time::Duration,
) -> Result<String, DbError> {
    let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::days(365));
    let secret = new_secret();
    let s = secret.clone();
    conn.transaction::<_, DbError, _>(|conn| {
        async move {
            let now = Utc::now();
            diesel::update(
                webhook_secrets::table
                    .filter(webhook_secrets::project_id.eq(project_id))
                    .filter(webhook_secrets::expires_at.is_null()),
            )
            .set(webhook_secrets::expires_at.eq(now + grace))
            .execute(conn)
            .await?;
            diesel::insert_into(webhook_secrets::table)
                .values((
                    webhook_secrets::id.eq(Uuid::now_v7()),
                    webhook_secrets::project_id.eq(project_id),
                    webhook_secrets::secret.eq(&s),
                    webhook_secrets::created_at.eq(now),
                ))
                .execute(conn)
                .await?;
            Ok(())
        }
        .scope_boxed()
    })
    .await?;
    Ok(secret)
}

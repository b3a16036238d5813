//! Per-key request rates (fixed one-minute windows in PostgreSQL, so every api process
//! counts against the same limit) and file retention.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Int4, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::{Conn, DbError};

/// Where a key stands in the current window.
#[derive(Debug, Clone, Copy, QueryableByName)]
pub struct Window {
    /// Requests in this window, the current one included.
    #[diesel(sql_type = Int4)]
    pub count: i32,
    /// Seconds until the window resets.
    #[diesel(sql_type = Int4)]
    pub reset_secs: i32,
}

/// Counts one request of the live (not revoked) key with this hash (bound as `$1`) and
/// returns its [`Window`]; no row when there is no such key, and nothing is counted then.
///
/// Run it on its own (not inside a transaction): it commits without waiting for the WAL
/// flush (`synchronous_commit` off for this statement's transaction alone). Every request of
/// a key updates the same row, and each update holds the row lock until its commit; with the
/// flush (0.5-1 ms here) in that wait, one key could not get past ~1000 requests a second.
/// A crash of PostgreSQL may forget the last few hundred milliseconds of counts, which only
/// lets a key a few more requests in that minute; accepted work keeps its durable commit.
pub(crate) const HIT_BY_HASH: &str = "INSERT INTO rate_windows (key_id, window_start, count) \
     SELECT id, date_trunc('minute', now()), 1 FROM api_keys \
       WHERE key_hash = $1 AND revoked_at IS NULL \
         AND set_config('synchronous_commit', 'off', true) IS NOT NULL \
     ON CONFLICT (key_id, window_start) DO UPDATE SET count = rate_windows.count + 1 \
     RETURNING count, \
       GREATEST(1, CEIL(EXTRACT(EPOCH FROM (window_start + interval '1 minute' - now()))))::int AS reset_secs";

/// Drops windows that can no longer matter.
pub async fn prune(conn: &mut Conn) -> Result<usize, DbError> {
    Ok(diesel::sql_query(
        "DELETE FROM rate_windows WHERE window_start < now() - interval '5 minutes'",
    )
    .execute(conn)
    .await?)
}

/// A stored file past its plan's retention.
#[derive(Debug, Clone, QueryableByName)]
pub struct Expired {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub key: String,
}

/// Job files and batch archives whose plan's retention has passed, at most `limit` of each.
pub async fn expired_files(
    conn: &mut Conn,
    limit: i64,
) -> Result<(Vec<Expired>, Vec<Expired>), DbError> {
    let jobs = diesel::sql_query(
        "SELECT j.id, j.object_key AS key FROM jobs j \
         JOIN projects p ON p.id = j.project_id JOIN plans pl ON pl.name = p.plan \
         WHERE j.object_key IS NOT NULL AND j.file_expired_at IS NULL \
           AND j.finished_at < now() - make_interval(hours => pl.retention_hours) \
         LIMIT $1",
    )
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?;
    let archives = diesel::sql_query(
        "SELECT b.id, b.archive_key AS key FROM batches b \
         JOIN projects p ON p.id = b.project_id JOIN plans pl ON pl.name = p.plan \
         WHERE b.archive_key IS NOT NULL AND b.archive_expired_at IS NULL \
           AND b.completed_at < now() - make_interval(hours => pl.retention_hours) \
         LIMIT $1",
    )
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?;
    Ok((jobs, archives))
}

pub async fn mark_job_file_expired(
    conn: &mut Conn,
    id: Uuid,
    at: DateTime<Utc>,
) -> Result<(), DbError> {
    use crate::schema::jobs;
    diesel::update(jobs::table.find(id))
        .set(jobs::file_expired_at.eq(at))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn mark_archive_expired(
    conn: &mut Conn,
    id: Uuid,
    at: DateTime<Utc>,
) -> Result<(), DbError> {
    use crate::schema::batches;
    diesel::update(batches::table.find(id))
        .set(batches::archive_expired_at.eq(at))
        .execute(conn)
        .await?;
    Ok(())
}

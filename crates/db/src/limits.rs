//! Per-key request rates (fixed one-minute windows in PostgreSQL, so every api process
//! counts against the same limit) and file retention.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Int4, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::{Conn, DbError};

/// Where a key stands in the current window.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Requests in this window, the current one included.
    pub count: i32,
    /// Seconds until the window resets.
    pub reset_secs: i32,
}

/// Requests of one key in one window: counted by an api process since its last flush (to
/// [`add_counts`]), or the window's total across processes (from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, QueryableByName)]
pub struct Count {
    #[diesel(sql_type = SqlUuid)]
    pub key_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub window_start: DateTime<Utc>,
    #[diesel(sql_type = Int4)]
    pub count: i32,
}

/// Adds each key's requests to its window's count in one statement and returns the totals
/// (keys that no longer exist are left out).
///
/// Run it on its own (not inside a transaction): it commits without waiting for the WAL
/// flush (`synchronous_commit` off for this statement's transaction alone). A crash of
/// PostgreSQL may forget the last few hundred milliseconds of counts, which only lets a key
/// a few more requests in that minute; accepted work keeps its durable commit.
pub async fn add_counts(conn: &mut Conn, counts: &[Count]) -> Result<Vec<Count>, DbError> {
    use diesel::sql_types::{Array, Timestamptz};
    if counts.is_empty() {
        return Ok(Vec::new());
    }
    let mut sorted = counts.to_vec();
    // One order for every process, so that two flushes never wait on each other's rows.
    sorted.sort_by_key(|c| (c.key_id, c.window_start));
    let keys: Vec<Uuid> = sorted.iter().map(|c| c.key_id).collect();
    let windows: Vec<DateTime<Utc>> = sorted.iter().map(|c| c.window_start).collect();
    let adds: Vec<i32> = sorted.iter().map(|c| c.count).collect();
    Ok(diesel::sql_query(
        "INSERT INTO rate_windows (key_id, window_start, count) \
           SELECT t.key_id, t.window_start, t.count \
             FROM unnest($1, $2, $3) AS t(key_id, window_start, count) \
             JOIN api_keys k ON k.id = t.key_id \
            WHERE set_config('synchronous_commit', 'off', true) IS NOT NULL \
            ORDER BY t.key_id, t.window_start \
         ON CONFLICT (key_id, window_start) DO UPDATE SET count = rate_windows.count + EXCLUDED.count \
         RETURNING key_id, window_start, count",
    )
    .bind::<Array<SqlUuid>, _>(keys)
    .bind::<Array<Timestamptz>, _>(windows)
    .bind::<Array<Int4>, _>(adds)
    .load(conn)
    .await?)
}

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

//! The transactional outbox: rows written with the state they announce, drained by a relay.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::models::{OutboxMessage, OutboxRow};
use crate::schema::outbox;
use crate::{Conn, DbError};

pub async fn insert(conn: &mut Conn, messages: &[OutboxMessage]) -> Result<(), DbError> {
    if messages.is_empty() {
        return Ok(());
    }
    diesel::insert_into(outbox::table)
        .values(messages)
        .execute(conn)
        .await?;
    Ok(())
}

/// Locks up to `limit` of the oldest rows that no other relay holds. Call inside a
/// transaction; delete what was published before committing.
pub async fn lock_oldest(conn: &mut Conn, limit: i64) -> Result<Vec<OutboxRow>, DbError> {
    Ok(outbox::table
        .order(outbox::id.asc())
        .limit(limit)
        .for_update()
        .skip_locked()
        .select(OutboxRow::as_select())
        .load(conn)
        .await?)
}

pub async fn delete(conn: &mut Conn, ids: &[i64]) -> Result<(), DbError> {
    diesel::delete(outbox::table.filter(outbox::id.eq_any(ids)))
        .execute(conn)
        .await?;
    Ok(())
}

/// How many messages wait to be published (a health figure).
pub async fn backlog(conn: &mut Conn) -> Result<i64, DbError> {
    Ok(outbox::table.count().get_result(conn).await?)
}

/// How many messages wait, and the creation time of the oldest (none when empty).
pub async fn backlog_and_oldest(
    conn: &mut Conn,
) -> Result<(i64, Option<chrono::DateTime<chrono::Utc>>), DbError> {
    use diesel::dsl::count_star;
    Ok(outbox::table
        .select((count_star(), diesel::dsl::min(outbox::created_at)))
        .get_result(conn)
        .await?)
}

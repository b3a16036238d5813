//! Notification claims: one row per (subject, channel), so a duplicated completion event
//! sends nothing twice.

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::models::Notification;
use crate::schema::notifications;
use crate::{Conn, DbError};

/// Claims the right to send on `channel` for `subject` (a job or batch id). `None` when
/// the claim exists already.
pub async fn claim(
    conn: &mut Conn,
    batch_id: Uuid,
    job_id: Option<Uuid>,
    subject: &str,
    channel: &str,
) -> Result<Option<Uuid>, DbError> {
    let id = Uuid::now_v7();
    let n = diesel::insert_into(notifications::table)
        .values((
            notifications::id.eq(id),
            notifications::batch_id.eq(batch_id),
            notifications::job_id.eq(job_id),
            notifications::subject.eq(subject),
            notifications::channel.eq(channel),
        ))
        .on_conflict((notifications::subject, notifications::channel))
        .do_nothing()
        .execute(conn)
        .await?;
    Ok((n == 1).then_some(id))
}

/// Records the result of a send.
pub async fn record(
    conn: &mut Conn,
    id: Uuid,
    sent: bool,
    error: Option<&str>,
) -> Result<(), DbError> {
    diesel::update(notifications::table.find(id))
        .set((
            notifications::status.eq(if sent { "sent" } else { "failed" }),
            notifications::attempts.eq(notifications::attempts + 1),
            notifications::last_error.eq(error),
            notifications::finished_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn for_batch(conn: &mut Conn, batch_id: Uuid) -> Result<Vec<Notification>, DbError> {
    Ok(notifications::table
        .filter(notifications::batch_id.eq(batch_id))
        .order(notifications::created_at.asc())
        .select(Notification::as_select())
        .load(conn)
        .await?)
}

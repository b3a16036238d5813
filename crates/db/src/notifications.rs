//! Notifications: one row per (subject, channel), so a duplicated completion event sends
//! nothing twice, and one row per attempt, the delivery log.
//!
//! A row is claimed `pending` and due at once. The notifier takes due rows (`FOR UPDATE SKIP
//! LOCKED`), pushing their `next_attempt_at` out by a lease and writing the attempt's row in
//! the same transaction, then sends outside any transaction and records the outcome. A
//! notifier that dies mid-attempt leaves a row that is due again when the lease runs out:
//! it is resent at most once more, under the same id.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, RunQueryDsl};
use uuid::Uuid;

use crate::models::{Notification, NotificationAttempt};
use crate::schema::{notification_attempts, notifications};
use crate::{Conn, DbError};

/// What an attempt that ended without recording an outcome shows in the log.
pub const ABANDONED: &str = "no outcome was recorded: the notifier stopped during this attempt";

/// The claim of one notification.
#[derive(Debug, Clone)]
pub struct NewClaim<'a> {
    pub batch_id: Uuid,
    pub job_id: Option<Uuid>,
    /// The job or batch id the notification is about; unique per channel.
    pub subject: &'a str,
    /// `webhook` or `email`.
    pub channel: &'a str,
    pub target: &'a str,
    pub body: &'a str,
    pub receiver: &'a str,
    pub max_attempts: i32,
}

/// Claims the right to send on `channel` for `subject`, due now. `None` when the claim
/// exists already (a duplicated event).
pub async fn claim(conn: &mut Conn, c: &NewClaim<'_>) -> Result<Option<Uuid>, DbError> {
    let id = Uuid::now_v7();
    let n = diesel::insert_into(notifications::table)
        .values((
            notifications::id.eq(id),
            notifications::batch_id.eq(c.batch_id),
            notifications::job_id.eq(c.job_id),
            notifications::subject.eq(c.subject),
            notifications::channel.eq(c.channel),
            notifications::target.eq(c.target),
            notifications::body.eq(c.body),
            notifications::receiver.eq(c.receiver),
            notifications::max_attempts.eq(c.max_attempts.max(1)),
            notifications::next_attempt_at.eq(Utc::now()),
        ))
        .on_conflict((notifications::subject, notifications::channel))
        .do_nothing()
        .execute(conn)
        .await?;
    Ok((n == 1).then_some(id))
}

/// A due notification taken for one attempt.
#[derive(Debug, Clone)]
pub struct Taken {
    pub notification: Notification,
    /// This attempt's number (1-based), equal to `notification.attempts`.
    pub attempt: i32,
    pub attempt_id: Uuid,
}

/// Takes up to `limit` due notifications, oldest due first, at most `per_receiver` in
/// flight per receiver counting `in_flight`, and leases each for `lease`.
pub async fn take_due(
    conn: &mut Conn,
    limit: usize,
    per_receiver: usize,
    in_flight: &HashMap<String, usize>,
    lease: Duration,
) -> Result<Vec<Taken>, DbError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let busy: Vec<String> = in_flight
        .iter()
        .filter(|(_, n)| **n >= per_receiver)
        .map(|(r, _)| r.clone())
        .collect();
    let lease = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::hours(1));
    let candidates = i64::try_from(limit.saturating_mul(4)).unwrap_or(i64::MAX);
    let mut counts = in_flight.clone();
    conn.transaction::<_, DbError, _>(|conn| {
        async move {
            let now = Utc::now();
            let rows: Vec<Notification> = notifications::table
                .filter(notifications::status.eq("pending"))
                .filter(notifications::next_attempt_at.le(now))
                .filter(notifications::receiver.ne_all(busy))
                .order(notifications::next_attempt_at.asc())
                .limit(candidates)
                .for_update()
                .skip_locked()
                .select(Notification::as_select())
                .load(conn)
                .await?;
            let mut taken = Vec::new();
            for row in rows {
                if taken.len() >= limit {
                    break;
                }
                let n = counts.entry(row.receiver.clone()).or_insert(0);
                if *n >= per_receiver {
                    continue;
                }
                *n += 1;
                // An earlier attempt that never recorded its outcome: say so in the log.
                diesel::update(
                    notification_attempts::table
                        .filter(notification_attempts::notification_id.eq(row.id))
                        .filter(notification_attempts::attempt.eq(row.attempts))
                        .filter(notification_attempts::latency_ms.is_null())
                        .filter(notification_attempts::error.is_null()),
                )
                .set(notification_attempts::error.eq(ABANDONED))
                .execute(conn)
                .await?;
                let notification: Notification = diesel::update(notifications::table.find(row.id))
                    .set((
                        notifications::attempts.eq(notifications::attempts + 1),
                        notifications::next_attempt_at.eq(now + lease),
                    ))
                    .returning(Notification::as_returning())
                    .get_result(conn)
                    .await?;
                let attempt_id = Uuid::now_v7();
                diesel::insert_into(notification_attempts::table)
                    .values(&NotificationAttempt {
                        id: attempt_id,
                        notification_id: notification.id,
                        attempt: notification.attempts,
                        started_at: now,
                        status_code: None,
                        latency_ms: None,
                        error: None,
                        response_body: None,
                    })
                    .execute(conn)
                    .await?;
                taken.push(Taken {
                    attempt: notification.attempts,
                    notification,
                    attempt_id,
                });
            }
            Ok(taken)
        }
        .scope_boxed()
    })
    .await
}

/// What one attempt came to.
#[derive(Debug, Clone, Default)]
pub struct AttemptOutcome {
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
    pub response_body: Option<String>,
}

/// What happens to the notification after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Sent,
    RetryAt(DateTime<Utc>),
    Failed,
}

/// Records an attempt's outcome and the notification's next state. `false` when the
/// attempt was no longer the notification's current one (its lease ran out and another
/// attempt began): then only the attempt's log row is written.
pub async fn record(
    conn: &mut Conn,
    taken: &Taken,
    outcome: &AttemptOutcome,
    next: Next,
) -> Result<bool, DbError> {
    let id = taken.notification.id;
    let attempt = taken.attempt;
    let attempt_id = taken.attempt_id;
    let outcome = outcome.clone();
    conn.transaction::<_, DbError, _>(|conn| {
        async move {
            diesel::update(notification_attempts::table.find(attempt_id))
                .set((
                    notification_attempts::status_code.eq(outcome.status_code),
                    notification_attempts::latency_ms.eq(outcome.latency_ms),
                    notification_attempts::error.eq(&outcome.error),
                    notification_attempts::response_body.eq(&outcome.response_body),
                ))
                .execute(conn)
                .await?;
            let current = notifications::table
                .find(id)
                .filter(notifications::status.eq("pending"))
                .filter(notifications::attempts.eq(attempt));
            let now = Utc::now();
            let n = match next {
                Next::Sent => {
                    diesel::update(current)
                        .set((
                            notifications::status.eq("sent"),
                            notifications::last_error.eq(None::<String>),
                            notifications::finished_at.eq(now),
                            notifications::next_attempt_at.eq(None::<DateTime<Utc>>),
                        ))
                        .execute(conn)
                        .await?
                }
                Next::RetryAt(at) => {
                    diesel::update(current)
                        .set((
                            notifications::last_error.eq(&outcome.error),
                            notifications::next_attempt_at.eq(at),
                        ))
                        .execute(conn)
                        .await?
                }
                Next::Failed => {
                    diesel::update(current)
                        .set((
                            notifications::status.eq("failed"),
                            notifications::last_error.eq(&outcome.error),
                            notifications::finished_at.eq(now),
                            notifications::next_attempt_at.eq(None::<DateTime<Utc>>),
                        ))
                        .execute(conn)
                        .await?
                }
            };
            Ok(n == 1)
        }
        .scope_boxed()
    })
    .await
}

/// What a redelivery request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redelivery {
    /// A new attempt is due now.
    Scheduled,
    /// The notification is still pending (waiting for a retry or being sent).
    AlreadyPending,
    /// No webhook notification with this id in this batch.
    NotFound,
}

/// Schedules one more attempt of a finished webhook notification, due now, under the
/// same id (so the same `webhook-id`).
pub async fn redeliver(
    conn: &mut Conn,
    batch_id: Uuid,
    notification_id: Uuid,
) -> Result<Redelivery, DbError> {
    let mine = notifications::table
        .filter(notifications::id.eq(notification_id))
        .filter(notifications::batch_id.eq(batch_id))
        .filter(notifications::channel.eq("webhook"));
    let n = diesel::update(mine.filter(notifications::status.ne("pending")))
        .set((
            notifications::status.eq("pending"),
            notifications::next_attempt_at.eq(Utc::now()),
            notifications::max_attempts.eq(notifications::attempts + 1),
            notifications::finished_at.eq(None::<DateTime<Utc>>),
        ))
        .execute(conn)
        .await?;
    if n == 1 {
        return Ok(Redelivery::Scheduled);
    }
    let exists: i64 = mine.count().get_result(conn).await?;
    Ok(if exists > 0 {
        Redelivery::AlreadyPending
    } else {
        Redelivery::NotFound
    })
}

pub async fn get(conn: &mut Conn, id: Uuid) -> Result<Option<Notification>, DbError> {
    Ok(notifications::table
        .find(id)
        .select(Notification::as_select())
        .first(conn)
        .await
        .optional()?)
}

pub async fn for_batch(conn: &mut Conn, batch_id: Uuid) -> Result<Vec<Notification>, DbError> {
    Ok(notifications::table
        .filter(notifications::batch_id.eq(batch_id))
        .order((notifications::created_at.asc(), notifications::id.asc()))
        .select(Notification::as_select())
        .load(conn)
        .await?)
}

/// The attempts of these notifications, in order.
pub async fn attempts_of(
    conn: &mut Conn,
    ids: &[Uuid],
) -> Result<Vec<NotificationAttempt>, DbError> {
    Ok(notification_attempts::table
        .filter(notification_attempts::notification_id.eq_any(ids))
        .order((
            notification_attempts::notification_id.asc(),
            notification_attempts::attempt.asc(),
        ))
        .select(NotificationAttempt::as_select())
        .load(conn)
        .await?)
}

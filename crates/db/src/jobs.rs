//! Jobs as workers claim and finish them.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, RunQueryDsl};
use uuid::Uuid;

use crate::models::{Batch, Job, OutboxMessage};
use crate::schema::{batches, jobs};
use crate::{Conn, DbError, outbox};

/// Takes a job for rendering: only a queued job, or a rendering job whose lease has run
/// out (its worker died), can be taken. `None` means someone else has it or it is done, so
/// a redelivered or duplicated message is dropped without rendering twice.
pub async fn claim(
    conn: &mut Conn,
    job_id: Uuid,
    lease_until: DateTime<Utc>,
) -> Result<Option<(Job, Batch)>, DbError> {
    let now = Utc::now();
    let job: Option<Job> = diesel::update(jobs::table.find(job_id))
        .filter(
            jobs::status
                .eq("queued")
                .or(jobs::status.eq("rendering").and(jobs::lease_until.lt(now))),
        )
        .set((
            jobs::status.eq("rendering"),
            jobs::attempts.eq(jobs::attempts + 1),
            jobs::lease_until.eq(lease_until),
            jobs::started_at.eq(now),
        ))
        .returning(Job::as_returning())
        .get_result(conn)
        .await
        .optional()?;
    let Some(job) = job else { return Ok(None) };
    let batch = batches::table
        .find(job.batch_id)
        .select(Batch::as_select())
        .first(conn)
        .await?;
    Ok(Some((job, batch)))
}

/// How a job ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    Success {
        object_key: String,
        filename: String,
        file_size: i64,
    },
    Failed {
        error: String,
    },
}

/// What finishing a job did to its batch.
#[derive(Debug, Clone)]
pub struct Finished {
    pub job: Job,
    pub batch: Batch,
    /// True for exactly one caller per batch: the one whose job was the batch's last.
    pub batch_done: bool,
}

/// Records a job's outcome and counts it into its batch, in one transaction with the
/// messages `announce` builds. The job must still be ours (`rendering` at `attempt`);
/// otherwise nothing changes and `None` is returned.
///
/// The batch counters are incremented with a row lock, so exactly one finisher sees the
/// batch's last item and completes it, whatever the concurrency.
pub async fn finish<F>(
    conn: &mut Conn,
    job_id: Uuid,
    attempt: i32,
    outcome: Outcome,
    duration_ms: i32,
    announce: F,
) -> Result<Option<Finished>, DbError>
where
    F: FnOnce(&Finished) -> Vec<OutboxMessage> + Send,
{
    conn.transaction::<_, DbError, _>(|conn| {
        async move {
            let now = Utc::now();
            let ours = jobs::table
                .find(job_id)
                .filter(jobs::status.eq("rendering"))
                .filter(jobs::attempts.eq(attempt));
            let (status, object_key, filename, file_size, error) = match outcome {
                Outcome::Success {
                    object_key,
                    filename,
                    file_size,
                } => (
                    "success",
                    Some(object_key),
                    Some(filename),
                    Some(file_size),
                    None,
                ),
                Outcome::Failed { error } => ("failed", None, None, None, Some(error)),
            };
            let job: Option<Job> = diesel::update(ours)
                .set((
                    jobs::status.eq(status),
                    jobs::object_key.eq(object_key),
                    jobs::filename.eq(filename),
                    jobs::file_size.eq(file_size),
                    jobs::error.eq(error),
                    jobs::duration_ms.eq(duration_ms),
                    jobs::finished_at.eq(now),
                    jobs::lease_until.eq(None::<DateTime<Utc>>),
                ))
                .returning(Job::as_returning())
                .get_result(conn)
                .await
                .optional()?;
            let Some(job) = job else { return Ok(None) };
            let (ds, df) = if status == "success" { (1, 0) } else { (0, 1) };
            let batch: Batch = diesel::update(batches::table.find(job.batch_id))
                .set((
                    batches::succeeded.eq(batches::succeeded + ds),
                    batches::failed.eq(batches::failed + df),
                ))
                .returning(Batch::as_returning())
                .get_result(conn)
                .await?;
            let batch_done = batch.succeeded + batch.failed == batch.total;
            let batch = if batch_done {
                let zip = batch.output_mode == "zip";
                diesel::update(batches::table.find(batch.id))
                    .set((
                        batches::archive_status.eq(if zip { Some("pending") } else { None }),
                        batches::completed_at.eq(if zip { None } else { Some(now) }),
                    ))
                    .returning(Batch::as_returning())
                    .get_result(conn)
                    .await?
            } else {
                batch
            };
            let finished = Finished {
                job,
                batch,
                batch_done,
            };
            outbox::insert(conn, &announce(&finished)).await?;
            if !finished.batch.is_async {
                // A sync request waits on the line for this job: wake it when this commits.
                crate::finished::notify(conn, finished.job.id).await?;
            }
            Ok(Some(finished))
        }
        .scope_boxed()
    })
    .await
}

/// Gives a job back (shutdown, browser crash) so that the redelivered message can claim it
/// at once instead of waiting for the lease to run out.
pub async fn release(conn: &mut Conn, job_id: Uuid, attempt: i32) -> Result<bool, DbError> {
    let n = diesel::update(
        jobs::table
            .find(job_id)
            .filter(jobs::status.eq("rendering"))
            .filter(jobs::attempts.eq(attempt)),
    )
    .set((
        jobs::status.eq("queued"),
        jobs::lease_until.eq(None::<DateTime<Utc>>),
    ))
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Takes over a job that is not final, whoever holds it (its message was dead-lettered: it
/// kept failing or killing its worker), so that the caller can [`finish`] it as failed at the
/// returned attempt. The lease is left expired: if the caller dies before finishing, the
/// reconciler puts the job back. `None`: the job is already final (or unknown).
pub async fn take_over(conn: &mut Conn, job_id: Uuid) -> Result<Option<Job>, DbError> {
    Ok(diesel::update(
        jobs::table
            .find(job_id)
            .filter(jobs::status.eq_any(["queued", "rendering"])),
    )
    .set((
        jobs::status.eq("rendering"),
        jobs::attempts.eq(jobs::attempts + 1),
        jobs::lease_until.eq(Utc::now()),
    ))
    .returning(Job::as_returning())
    .get_result(conn)
    .await
    .optional()?)
}

pub async fn get(conn: &mut Conn, job_id: Uuid) -> Result<Option<Job>, DbError> {
    Ok(jobs::table
        .find(job_id)
        .select(Job::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Jobs whose worker died: `rendering` past their lease. Puts up to `limit` of them back to
/// `queued` and writes the messages `announce` builds for them in the same transaction, so
/// that a job is never stranded, whatever happened to its message.
pub async fn requeue_expired<F>(
    conn: &mut Conn,
    limit: i64,
    announce: F,
) -> Result<Vec<Job>, DbError>
where
    F: Fn(&Job) -> OutboxMessage + Send,
{
    conn.transaction::<_, DbError, _>(|conn| {
        async move {
            let now = Utc::now();
            let stale: Vec<Uuid> = jobs::table
                .filter(jobs::status.eq("rendering"))
                .filter(jobs::lease_until.lt(now))
                .order(jobs::lease_until.asc())
                .limit(limit)
                .for_update()
                .skip_locked()
                .select(jobs::id)
                .load(conn)
                .await?;
            if stale.is_empty() {
                return Ok(Vec::new());
            }
            let requeued: Vec<Job> = diesel::update(jobs::table.filter(jobs::id.eq_any(&stale)))
                .set((
                    jobs::status.eq("queued"),
                    jobs::lease_until.eq(None::<DateTime<Utc>>),
                ))
                .returning(Job::as_returning())
                .get_results(conn)
                .await?;
            let messages: Vec<OutboxMessage> = requeued.iter().map(&announce).collect();
            outbox::insert(conn, &messages).await?;
            Ok(requeued)
        }
        .scope_boxed()
    })
    .await
}

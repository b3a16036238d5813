//! Batches as the api writes and reads them.

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::models::{ApiKey, Batch, Job, OutboxMessage, PlanRow, Project};
use crate::projects::Caller;
use crate::schema::{batches, jobs};
use crate::{Conn, DbError, outbox};

/// Why a batch could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("job_id already in use")]
    JobIdTaken,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Jobs (and messages) a batch may have for [`create`] to write it in one statement; PostgreSQL
/// takes at most 65535 parameters in a statement (a job has 18 columns, a message 8).
const ONE_STATEMENT_ROWS: usize = 1000;

/// Writes the batch, its jobs and the messages that announce them atomically and durably:
/// up to [`ONE_STATEMENT_ROWS`] jobs as one statement (`WITH ... INSERT ...`, one round trip,
/// committed on its own), larger batches in one transaction of several inserts.
pub async fn create(
    conn: &mut Conn,
    batch: &Batch,
    new_jobs: &[Job],
    messages: &[OutboxMessage],
) -> Result<(), CreateError> {
    let result = if new_jobs.len() <= ONE_STATEMENT_ROWS && messages.len() <= ONE_STATEMENT_ROWS {
        let mut inserts: Vec<Box<dyn QueryFragment<Pg> + Send + Sync + '_>> =
            vec![Box::new(diesel::insert_into(batches::table).values(batch))];
        if !new_jobs.is_empty() {
            inserts.push(Box::new(diesel::insert_into(jobs::table).values(new_jobs)));
        }
        if !messages.is_empty() {
            inserts.push(Box::new(
                diesel::insert_into(crate::schema::outbox::table).values(messages),
            ));
        }
        Together(inserts)
            .execute(conn)
            .await
            .map(|_| ())
            .map_err(DbError::from)
    } else {
        conn.transaction::<_, DbError, _>(|conn| {
            async move {
                diesel::insert_into(batches::table)
                    .values(batch)
                    .execute(conn)
                    .await?;
                for chunk in new_jobs.chunks(ONE_STATEMENT_ROWS) {
                    diesel::insert_into(jobs::table)
                        .values(chunk)
                        .execute(conn)
                        .await?;
                }
                for chunk in messages.chunks(ONE_STATEMENT_ROWS) {
                    outbox::insert(conn, chunk).await?;
                }
                Ok(())
            }
            .scope_boxed()
        })
        .await
    };
    match result {
        Err(e) if e.is_unique_violation() => Err(CreateError::JobIdTaken),
        other => Ok(other?),
    }
}

/// Data-modifying statements run as one: `WITH s0 AS (first), s1 AS (second) last`. One
/// statement is one implicit transaction (all or nothing), and foreign keys are checked at its
/// end, so a row may refer to one an earlier part inserts.
struct Together<'a>(Vec<Box<dyn QueryFragment<Pg> + Send + Sync + 'a>>);

impl QueryId for Together<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl QueryFragment<Pg> for Together<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let Some((last, first)) = self.0.split_last() else {
            return Ok(());
        };
        for (i, part) in first.iter().enumerate() {
            out.push_sql(if i == 0 { "WITH " } else { ", " });
            out.push_sql(&format!("s{i} AS ("));
            part.walk_ast(out.reborrow())?;
            out.push_sql(")");
        }
        out.push_sql(" ");
        last.walk_ast(out.reborrow())
    }
}

/// True when the project already has a job with this client-chosen id.
pub async fn client_job_id_taken(
    conn: &mut Conn,
    project_id: Uuid,
    id: &str,
) -> Result<bool, DbError> {
    let n: i64 = jobs::table
        .filter(jobs::project_id.eq(project_id))
        .filter(jobs::client_job_id.eq(id))
        .count()
        .get_result(conn)
        .await?;
    Ok(n > 0)
}

/// A batch of this project, or `None` (unknown and foreign batches look the same).
pub async fn find(
    conn: &mut Conn,
    project_id: Uuid,
    batch_id: Uuid,
) -> Result<Option<Batch>, DbError> {
    Ok(batches::table
        .filter(batches::id.eq(batch_id))
        .filter(batches::project_id.eq(project_id))
        .select(Batch::as_select())
        .first(conn)
        .await
        .optional()?)
}

pub async fn get(conn: &mut Conn, batch_id: Uuid) -> Result<Option<Batch>, DbError> {
    Ok(batches::table
        .find(batch_id)
        .select(Batch::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// What a batch status read needs, sent together (pipelined) in one round trip: the caller
/// behind `key_hash` (as [`authenticate`](crate::projects::authenticate)), the batch
/// `batch_id` if it belongs to the caller's project (`None` for an unknown key), and its jobs
/// in submission order.
///
/// The batch and its jobs are looked up by their keys alone and the project compared here:
/// with `project_id` in the statement, PostgreSQL's cached generic plan for it could walk the
/// project's index (every batch of the project) instead of the primary key.
pub async fn status_for_key(
    conn: &mut AsyncPgConnection,
    key_hash: &[u8],
    batch_id: Uuid,
) -> Result<(Option<Caller>, Option<Batch>, Vec<Job>), DbError> {
    let caller = crate::projects::caller_query(key_hash).load::<(ApiKey, Project, PlanRow)>(conn);
    let batch = batches::table
        .find(batch_id)
        .select(Batch::as_select())
        .load::<Batch>(conn);
    let batch_jobs = jobs::table
        .filter(jobs::batch_id.eq(batch_id))
        .order(jobs::position.asc())
        .select(Job::as_select())
        .load::<Job>(conn);
    let (caller, batch, batch_jobs) = futures_util::try_join!(caller, batch, batch_jobs)?;
    let caller = caller
        .into_iter()
        .next()
        .map(|(key, project, plan)| Caller { key, project, plan });
    let owner = caller.as_ref().map(|c| c.project.id);
    match batch.into_iter().next() {
        Some(batch) if Some(batch.project_id) == owner => Ok((caller, Some(batch), batch_jobs)),
        _ => Ok((caller, None, Vec::new())),
    }
}

/// A project's batches, newest first: at most `limit`, created before `before` if given
/// (the next page).
pub async fn list(
    conn: &mut Conn,
    project_id: Uuid,
    before: Option<chrono::DateTime<chrono::Utc>>,
    limit: i64,
) -> Result<Vec<Batch>, DbError> {
    let mut query = batches::table
        .filter(batches::project_id.eq(project_id))
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(batches::created_at.lt(before));
    }
    Ok(query
        .order((batches::created_at.desc(), batches::id.desc()))
        .limit(limit)
        .select(Batch::as_select())
        .load(conn)
        .await?)
}

/// A batch's jobs in submission order.
pub async fn jobs_of(conn: &mut Conn, batch_id: Uuid) -> Result<Vec<Job>, DbError> {
    Ok(jobs::table
        .filter(jobs::batch_id.eq(batch_id))
        .order(jobs::position.asc())
        .select(Job::as_select())
        .load(conn)
        .await?)
}

/// A job of this project by the id clients see: their `job_id`, else our UUID.
pub async fn find_job(
    conn: &mut Conn,
    project_id: Uuid,
    public_id: &str,
) -> Result<Option<Job>, DbError> {
    let by_client = jobs::table
        .filter(jobs::project_id.eq(project_id))
        .filter(jobs::client_job_id.eq(public_id))
        .select(Job::as_select())
        .first(conn)
        .await
        .optional()?;
    if by_client.is_some() {
        return Ok(by_client);
    }
    match Uuid::parse_str(public_id) {
        Ok(id) => Ok(jobs::table
            .filter(jobs::project_id.eq(project_id))
            .filter(jobs::id.eq(id))
            .select(Job::as_select())
            .first(conn)
            .await
            .optional()?),
        Err(_) => Ok(None),
    }
}

/// The stored archive of a ZIP batch.
#[derive(Debug, Clone)]
pub struct Archive {
    pub key: String,
    pub filename: String,
    pub size: i64,
}

/// Completes a ZIP batch whose archive is pending: with its archive, or `None` when there was
/// nothing to archive (every item failed). Writes the messages `announce` builds in the same
/// transaction. `None` is returned when the batch was not pending (a duplicate message).
pub async fn complete_archive<F>(
    conn: &mut Conn,
    batch_id: Uuid,
    archive: Option<Archive>,
    announce: F,
) -> Result<Option<Batch>, DbError>
where
    F: FnOnce(&Batch) -> Vec<OutboxMessage> + Send,
{
    conn.transaction::<_, DbError, _>(|conn| {
        async move {
            let status = if archive.is_some() {
                "stored"
            } else {
                "failed"
            };
            let (key, filename, size) = match archive {
                Some(a) => (Some(a.key), Some(a.filename), Some(a.size)),
                None => (None, None, None),
            };
            let batch: Option<Batch> = diesel::update(
                batches::table
                    .find(batch_id)
                    .filter(batches::archive_status.eq("pending")),
            )
            .set((
                batches::archive_status.eq(status),
                batches::archive_key.eq(key),
                batches::archive_filename.eq(filename),
                batches::archive_size.eq(size),
                batches::completed_at.eq(chrono::Utc::now()),
            ))
            .returning(Batch::as_returning())
            .get_result(conn)
            .await
            .optional()?;
            if let Some(b) = &batch {
                outbox::insert(conn, &announce(b)).await?;
            }
            Ok(batch)
        }
        .scope_boxed()
    })
    .await
}

/// Gives up the archive of a ZIP batch whose build kept failing (its message was
/// dead-lettered): the batch fails with `error`. Writes the messages `announce` builds in the
/// same transaction. `None` when the archive was not pending (built after all, or a duplicate).
pub async fn fail_archive<F>(
    conn: &mut Conn,
    batch_id: Uuid,
    error: &str,
    announce: F,
) -> Result<Option<Batch>, DbError>
where
    F: FnOnce(&Batch) -> Vec<OutboxMessage> + Send,
{
    conn.transaction::<_, DbError, _>(|conn| {
        async move {
            let batch: Option<Batch> = diesel::update(
                batches::table
                    .find(batch_id)
                    .filter(batches::archive_status.eq("pending")),
            )
            .set((
                batches::archive_status.eq("failed"),
                batches::archive_error.eq(error),
                batches::completed_at.eq(chrono::Utc::now()),
            ))
            .returning(Batch::as_returning())
            .get_result(conn)
            .await
            .optional()?;
            if let Some(b) = &batch {
                outbox::insert(conn, &announce(b)).await?;
            }
            Ok(batch)
        }
        .scope_boxed()
    })
    .await
}

/// Records what a website batch's discovery found: the batch's counts, one job per page and
/// the messages announcing them, in one transaction. Only a batch whose discovery is still
/// pending changes; `false` means another delivery got there first and nothing was written.
pub async fn complete_discovery(
    conn: &mut Conn,
    batch_id: Uuid,
    total_discovered: i32,
    new_jobs: &[Job],
    messages: &[OutboxMessage],
) -> Result<bool, DbError> {
    conn.transaction::<_, DbError, _>(|conn| {
        async move {
            let total = i32::try_from(new_jobs.len()).unwrap_or(i32::MAX);
            let updated = diesel::update(
                batches::table
                    .find(batch_id)
                    .filter(batches::discovery_status.eq("pending")),
            )
            .set((
                batches::discovery_status.eq("done"),
                batches::total.eq(total),
                batches::total_discovered.eq(total_discovered),
            ))
            .execute(conn)
            .await?;
            if updated == 0 {
                return Ok(false);
            }
            for chunk in new_jobs.chunks(1000) {
                diesel::insert_into(jobs::table)
                    .values(chunk)
                    .execute(conn)
                    .await?;
            }
            outbox::insert(conn, messages).await?;
            Ok(true)
        }
        .scope_boxed()
    })
    .await
}

/// Ends a website batch whose discovery found no page to render: `failed`, with the reason,
/// and the messages `announce` builds (its `batch.completed`) in the same transaction.
/// `None` when the batch's discovery was not pending (a duplicate message).
pub async fn fail_discovery<F>(
    conn: &mut Conn,
    batch_id: Uuid,
    error: &str,
    total_discovered: i32,
    announce: F,
) -> Result<Option<Batch>, DbError>
where
    F: FnOnce(&Batch) -> Vec<OutboxMessage> + Send,
{
    conn.transaction::<_, DbError, _>(|conn| {
        async move {
            let batch: Option<Batch> = diesel::update(
                batches::table
                    .find(batch_id)
                    .filter(batches::discovery_status.eq("pending")),
            )
            .set((
                batches::discovery_status.eq("failed"),
                batches::discovery_error.eq(error),
                batches::total_discovered.eq(total_discovered),
                // Nothing to archive: the ZIP is given up, so the batch reads as final.
                batches::archive_status.eq("failed"),
                batches::completed_at.eq(chrono::Utc::now()),
            ))
            .returning(Batch::as_returning())
            .get_result(conn)
            .await
            .optional()?;
            if let Some(b) = &batch {
                outbox::insert(conn, &announce(b)).await?;
            }
            Ok(batch)
        }
        .scope_boxed()
    })
    .await
}

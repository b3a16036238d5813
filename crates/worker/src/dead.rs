//! Giving up: work that failed `ENCONVERT_DELIVERY_LIMIT` times must still end, so that its
//! batch completes and its owner is told. Two ways in:
//!
//! - a message dead-lettered by RabbitMQ (`render.*.dead`, `discover.dead`,
//!   `archive.build.dead`) is consumed here: its job is failed with an error (or its website
//!   batch's discovery, or its ZIP batch's archive), through the usual outbox announcements;
//! - a job that kills its worker never reaches the delivery limit (its message is acked as a
//!   duplicate while the lease is live, and the reconciler requeues it with a fresh one), so
//!   a job claimed for more attempts than the limit is failed instead of rendered.

use std::sync::Arc;

use enconvert_db::batches;
use enconvert_db::jobs::{self, Outcome};
use enconvert_db::models::Job;
use enconvert_domain::OutputMode;
use enconvert_domain::events::{ArchiveJob, BatchCompleted, DiscoverJob, RenderJob};
use enconvert_queue::consumer::{Disposition, Handler, Incoming, Subscription};
use enconvert_queue::{messages, topology};

use crate::Worker;

/// The error of a job given up after `limit` attempts, `None` while it may be tried again.
pub(crate) fn too_many_attempts(job: &Job, limit: u32) -> Option<String> {
    (u32::try_from(job.attempts).unwrap_or(0) > limit).then(|| gave_up(limit))
}

fn gave_up(limit: u32) -> String {
    format!(
        "Rendering failed {limit} times in a row (the page crashed the browser or its worker); gave up."
    )
}

/// Consumers of the dead-letter queues of the render and discover queues.
pub(crate) fn subscriptions(worker: &Worker) -> Vec<Subscription> {
    let render = handler(worker, |w, msg| async move { w.dead_render(msg).await });
    let discover = handler(worker, |w, msg| async move { w.dead_discover(msg).await });
    let archive = handler(worker, |w, msg| async move { w.dead_archive(msg).await });
    vec![
        Subscription {
            queue: topology::dead_letter_queue(topology::ARCHIVE),
            handler: archive,
        },
        Subscription {
            queue: topology::dead_letter_queue(topology::RENDER_SYNC),
            handler: render.clone(),
        },
        Subscription {
            queue: topology::dead_letter_queue(topology::RENDER_BATCH),
            handler: render,
        },
        Subscription {
            queue: topology::dead_letter_queue(topology::DISCOVER),
            handler: discover,
        },
    ]
}

/// A consumer handler that runs `record` for each dead letter and settles the message by its
/// result.
fn handler<F, Fut>(worker: &Worker, record: F) -> Handler
where
    F: Fn(Worker, Incoming) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let worker = worker.clone();
    let record = Arc::new(record);
    Arc::new(move |msg: Incoming| {
        let (worker, record) = (worker.clone(), record.clone());
        Box::pin(async move { settle(record(worker, msg).await) })
    })
}

fn settle(result: anyhow::Result<()>) -> Disposition {
    match result {
        Ok(()) => Disposition::Ack,
        Err(e) => {
            // Dead-letter queues have no limit: the message waits for the database.
            tracing::warn!(error = ?e, "could not record a dead-lettered message; retrying");
            Disposition::Requeue
        }
    }
}

impl Worker {
    async fn dead_render(&self, msg: Incoming) -> anyhow::Result<()> {
        let Ok(work) = serde_json::from_slice::<RenderJob>(&msg.data) else {
            tracing::error!("unreadable dead-lettered render message; dropped");
            return Ok(());
        };
        let taken = {
            let mut conn = self.db.conn().await?;
            jobs::take_over(&mut conn, work.job_id).await?
        };
        let Some(job) = taken else {
            // Finished after all (a late success, or a duplicate message).
            return Ok(());
        };
        tracing::warn!(job.id = %job.id, batch.id = %job.batch_id, "render message dead-lettered; failing its job");
        self.finish(
            &job,
            Outcome::Failed {
                error: gave_up(self.delivery_limit),
            },
            0,
        )
        .await?;
        Ok(())
    }

    async fn dead_archive(&self, msg: Incoming) -> anyhow::Result<()> {
        let Ok(work) = serde_json::from_slice::<ArchiveJob>(&msg.data) else {
            tracing::error!("unreadable dead-lettered archive message; dropped");
            return Ok(());
        };
        let mut conn = self.db.conn().await?;
        let failed = batches::fail_archive(
            &mut conn,
            work.batch_id,
            &format!(
                "The ZIP archive could not be built: it failed {} times in a row; gave up.",
                self.delivery_limit
            ),
            |b| {
                vec![messages::batch_completed(&BatchCompleted {
                    batch_id: b.id,
                    project_id: b.project_id,
                    status: b.status(),
                    output_mode: OutputMode::Zip,
                })]
            },
        )
        .await?;
        if failed.is_some() {
            tracing::warn!(batch.id = %work.batch_id, "archive message dead-lettered; batch failed");
            self.relay_wake.notify_one();
        }
        Ok(())
    }

    async fn dead_discover(&self, msg: Incoming) -> anyhow::Result<()> {
        let Ok(work) = serde_json::from_slice::<DiscoverJob>(&msg.data) else {
            tracing::error!("unreadable dead-lettered discover message; dropped");
            return Ok(());
        };
        let mut conn = self.db.conn().await?;
        let failed = batches::fail_discovery(
            &mut conn,
            work.batch_id,
            &format!(
                "Website discovery failed {} times in a row; gave up.",
                self.delivery_limit
            ),
            0,
            |b| {
                vec![messages::batch_completed(&BatchCompleted {
                    batch_id: b.id,
                    project_id: b.project_id,
                    status: b.status(),
                    output_mode: OutputMode::Zip,
                })]
            },
        )
        .await?;
        if failed.is_some() {
            tracing::warn!(batch.id = %work.batch_id, "discover message dead-lettered; batch failed");
            self.relay_wake.notify_one();
        }
        Ok(())
    }
}

//! The reconciler: a job whose worker died mid-render keeps `rendering` with a lease that
//! runs out. Its message may already be gone (acked as a duplicate by another worker while
//! the lease was live), so the reconciler puts such jobs back and publishes them again.

use std::time::Duration;

use enconvert_db::jobs;
use enconvert_domain::events::RenderJob;
use enconvert_queue::messages;
use tokio_util::sync::CancellationToken;

use crate::Worker;

pub(crate) async fn run(worker: Worker, every: Duration, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let result = async {
            let mut conn = worker.db.conn().await?;
            jobs::requeue_expired(&mut conn, 100, |j| {
                messages::render(
                    &RenderJob {
                        job_id: j.id,
                        batch_id: j.batch_id,
                    },
                    false,
                )
            })
            .await
        }
        .await;
        match result {
            Ok(jobs) if !jobs.is_empty() => {
                tracing::warn!(
                    jobs = jobs.len(),
                    "requeued jobs whose worker stopped mid-render"
                );
                worker.relay_wake.notify_one();
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reconciler could not read the jobs"),
        }
    }
}

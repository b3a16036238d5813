//! Deletes files past their plan's retention. Their links then answer `404`, and polling
//! stops handing out links for them.

use std::time::Duration;

use chrono::Utc;
use enconvert_db::limits;
use tokio_util::sync::CancellationToken;

use crate::Worker;

pub(crate) async fn run(worker: Worker, every: Duration, cancel: CancellationToken) {
    loop {
        match sweep(&worker).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(files = n, "deleted files past their retention"),
            Err(e) => tracing::warn!(error = ?e, "retention sweep failed"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

async fn sweep(worker: &Worker) -> anyhow::Result<usize> {
    let mut total = 0;
    loop {
        let mut conn = worker.db.conn().await?;
        let (jobs, archives) = limits::expired_files(&mut conn, 200).await?;
        if jobs.is_empty() && archives.is_empty() {
            return Ok(total);
        }
        let now = Utc::now();
        for f in &jobs {
            worker.storage.delete(&f.key).await?;
            limits::mark_job_file_expired(&mut conn, f.id, now).await?;
        }
        for f in &archives {
            worker.storage.delete(&f.key).await?;
            limits::mark_archive_expired(&mut conn, f.id, now).await?;
        }
        total += jobs.len() + archives.len();
    }
}

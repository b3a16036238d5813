//! ZIP mode: once every item of a batch has finished, one archive of the successful files.

use async_zip::base::write::ZipFileWriter;
use async_zip::{Compression, ZipEntryBuilder};
use chrono::Utc;
use enconvert_db::batches::{self, Archive};
use enconvert_domain::events::{ArchiveJob, BatchCompleted};
use enconvert_domain::naming;
use enconvert_domain::request::Endpoint;
use enconvert_domain::{JobStatus, OutputMode};
use enconvert_queue::consumer::Disposition;
use enconvert_queue::messages;
use uuid::Uuid;

use crate::Worker;

impl Worker {
    pub(crate) async fn build_archive(&self, work: &ArchiveJob) -> anyhow::Result<Disposition> {
        let (batch, jobs) = {
            let mut conn = self.db.conn().await?;
            let Some(batch) = batches::get(&mut conn, work.batch_id).await? else {
                return Ok(Disposition::Ack);
            };
            let jobs = batches::jobs_of(&mut conn, batch.id).await?;
            (batch, jobs)
        };
        if batch.archive_status.as_deref() != Some("pending") {
            tracing::info!("archive already built; dropping the duplicate message");
            return Ok(Disposition::Ack);
        }
        let done: Vec<_> = jobs
            .iter()
            .filter(|j| j.status() == JobStatus::Success && j.object_key.is_some())
            .collect();
        let archive = if done.is_empty() {
            None
        } else {
            let endpoint = Endpoint::parse(&batch.endpoint).unwrap_or(Endpoint::UrlToPdf);
            let stem = batch
                .output_filename
                .clone()
                .unwrap_or_else(|| "batch".to_string());
            let path = std::env::temp_dir().join(format!("enconvert-{}.zip", Uuid::new_v4()));
            let result = self.write_zip(&path, &done, endpoint.is_website()).await;
            let stored = match result {
                Ok(()) => {
                    let mut at = Utc::now();
                    loop {
                        let filename = naming::file_name(&stem, at, "zip");
                        let key =
                            naming::object_key(&self.env, batch.project_id, endpoint, &filename);
                        if !self.storage.exists(&key).await? {
                            let size = self.storage.put_file(&key, &path).await?;
                            break Ok(Archive {
                                key,
                                filename,
                                size: i64::try_from(size).unwrap_or(i64::MAX),
                            });
                        }
                        at += chrono::Duration::milliseconds(1);
                    }
                }
                Err(e) => Err(e),
            };
            let _ = tokio::fs::remove_file(&path).await;
            Some(stored?)
        };
        let mut conn = self.db.conn().await?;
        let completed = batches::complete_archive(&mut conn, batch.id, archive, |b| {
            vec![messages::batch_completed(&BatchCompleted {
                batch_id: b.id,
                project_id: b.project_id,
                status: b.status(),
                output_mode: OutputMode::Zip,
            })]
        })
        .await?;
        if let Some(b) = completed {
            tracing::info!(status = b.status().as_str(), size = ?b.archive_size, "archive done");
            self.relay_wake.notify_one();
        }
        Ok(Disposition::Ack)
    }

    /// Writes the files into a ZIP on disk, one entry per file: under its own file name, or
    /// for a website under a name from the page's URL path (`docs/intro` gives
    /// `docs_intro.pdf`), made unique. The files are PDFs and images, already compressed:
    /// entries are stored as they are.
    async fn write_zip(
        &self,
        path: &std::path::Path,
        jobs: &[&enconvert_db::models::Job],
        website: bool,
    ) -> anyhow::Result<()> {
        let file = tokio::fs::File::create(path).await?;
        let mut writer = ZipFileWriter::with_tokio(file);
        let mut taken = std::collections::HashSet::new();
        for job in jobs {
            let (Some(key), Some(filename)) = (&job.object_key, &job.filename) else {
                continue;
            };
            let data = self.storage.get(key).await?;
            let page = url::Url::parse(&job.source_url).ok().filter(|_| website);
            let name = match page {
                Some(page) => {
                    let ext = filename.rsplit_once('.').map_or("bin", |(_, e)| e);
                    naming::zip_entry_name(&page, ext, &mut taken)
                }
                None => {
                    let mut name = filename.clone();
                    let mut n = 2;
                    while !taken.insert(name.clone()) {
                        name = format!("{n}_{filename}");
                        n += 1;
                    }
                    name
                }
            };
            let entry = ZipEntryBuilder::new(name.into(), Compression::Stored);
            writer.write_entry_whole(entry, &data).await?;
        }
        writer.close().await?;
        Ok(())
    }
}

#![doc = include_str!("../README.md")]

pub mod mail;

use std::sync::Arc;
use std::time::Duration;

use enconvert_config::Settings;
use enconvert_db::models::{Batch, Job, Project};
use enconvert_db::{Db, batches, notifications, projects};
use enconvert_domain::events::{
    BatchCompleted, BatchWebhook, JobCompleted, JobWebhook, TaskEntry, kind,
};
use enconvert_domain::notify::EmailContent;
use enconvert_domain::{JobStatus, OutputMode};
use enconvert_egress::Egress;
use enconvert_queue::consumer::{self, Disposition, Handler, Incoming, Subscription};
use enconvert_queue::{AmqpConfig, topology};
use lettre::message::Mailbox;
use secrecy::ExposeSecret;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::mail::Mailer;

/// Webhook responses are read up to this many bytes.
const MAX_RESPONSE: usize = 64 * 1024;

struct Notifier {
    db: Db,
    mailer: Mailer,
    from: Mailbox,
    egress: Egress,
    dashboard_url: String,
}

pub struct Running {
    pub done: JoinHandle<()>,
}

/// Starts consuming completion events until `cancel` fires.
pub async fn start(settings: &Settings, cancel: CancellationToken) -> anyhow::Result<Running> {
    enconvert_db::migrate(
        settings.database_url.expose_secret(),
        Duration::from_secs(60),
    )
    .await?;
    let db = Db::new(settings.database_url.expose_secret(), settings.db_pool_size)?;
    let n = &settings.notifier;
    let mailer = match &n.smtp_url {
        Some(url) => Mailer::smtp(url.expose_secret())?,
        None => Mailer::folder(n.mail_dir.clone())?,
    };
    let egress = Egress::new(
        settings.allow_private.clone(),
        n.webhook_timeout,
        MAX_RESPONSE,
        concat!("Enconvert-Webhooks/", env!("CARGO_PKG_VERSION")),
    )?;
    let notifier = Arc::new(Notifier {
        db,
        mailer,
        from: n.mail_from.parse()?,
        egress,
        dashboard_url: n.dashboard_url.clone(),
    });
    let handler: Handler = Arc::new(move |msg: Incoming| {
        let notifier = notifier.clone();
        Box::pin(async move { notifier.handle(msg).await })
    });
    let amqp = AmqpConfig {
        url: settings.amqp_url.expose_secret().to_string(),
        connection_name: enconvert_queue::process_label("notifier"),
        delivery_limit: settings.delivery_limit,
    };
    let prefetch = u16::try_from(n.concurrency).unwrap_or(u16::MAX);
    let grace = n.webhook_timeout + Duration::from_secs(5);
    let subscriptions = vec![Subscription {
        queue: topology::NOTIFIER_EVENTS.to_string(),
        handler,
    }];
    let done = tokio::spawn(async move {
        consumer::run(amqp, subscriptions, prefetch, grace, cancel).await;
        tracing::info!("notifier stopped");
    });
    Ok(Running { done })
}

impl Notifier {
    async fn handle(&self, msg: Incoming) -> Disposition {
        let result = match msg.message_type.as_deref() {
            Some(kind::JOB_COMPLETED) => match serde_json::from_slice::<JobCompleted>(&msg.data) {
                Ok(e) => {
                    let span =
                        tracing::info_span!("notify", batch.id = %e.batch_id, job.id = %e.job_id);
                    self.job_completed(&e).instrument(span).await
                }
                Err(_) => return Disposition::DeadLetter,
            },
            Some(kind::BATCH_COMPLETED) => {
                match serde_json::from_slice::<BatchCompleted>(&msg.data) {
                    Ok(e) => {
                        let span = tracing::info_span!("notify", batch.id = %e.batch_id);
                        self.batch_completed(&e).instrument(span).await
                    }
                    Err(_) => return Disposition::DeadLetter,
                }
            }
            other => {
                tracing::error!(kind = ?other, "unknown event type, dead-lettering it");
                return Disposition::DeadLetter;
            }
        };
        match result {
            Ok(()) => Disposition::Ack,
            Err(e) => {
                tracing::warn!(error = ?e, "notification failed before sending; the event will be delivered again");
                tokio::time::sleep(Duration::from_secs(1)).await;
                Disposition::Requeue
            }
        }
    }

    async fn load(&self, batch_id: uuid::Uuid) -> anyhow::Result<Option<(Batch, Project)>> {
        let mut conn = self.db.conn().await?;
        let Some(batch) = batches::get(&mut conn, batch_id).await? else {
            return Ok(None);
        };
        let Some(project) = projects::find_project(&mut conn, batch.project_id).await? else {
            return Ok(None);
        };
        Ok(Some((batch, project)))
    }

    /// Individual mode: one webhook and one email per URL as it finishes.
    async fn job_completed(&self, e: &JobCompleted) -> anyhow::Result<()> {
        if e.output_mode != OutputMode::Individual {
            return Ok(());
        }
        let Some((batch, project)) = self.load(e.batch_id).await? else {
            return Ok(());
        };
        if !batch.is_async {
            return Ok(());
        }
        let job = {
            let mut conn = self.db.conn().await?;
            enconvert_db::jobs::get(&mut conn, e.job_id).await?
        };
        let Some(job) = job else { return Ok(()) };
        let success = job.status() == JobStatus::Success;
        let subject = job.id.to_string();
        if let Some(url) = &batch.callback_url {
            let payload = job_payload(&job);
            self.webhook(
                &batch,
                Some(job.id),
                &subject,
                url,
                serde_json::to_vec(&payload)?,
            )
            .await?;
        }
        if let Some(to) = self.recipient(&batch, &project) {
            let content = EmailContent::for_job(
                &job.public_id(),
                Some(&batch.id.to_string()),
                success,
                &self.dashboard_url,
            );
            self.email(&batch, Some(job.id), &subject, &to, &content)
                .await?;
        }
        Ok(())
    }

    /// ZIP mode: one webhook and one email for the batch.
    async fn batch_completed(&self, e: &BatchCompleted) -> anyhow::Result<()> {
        if e.output_mode != OutputMode::Zip {
            return Ok(());
        }
        let Some((batch, project)) = self.load(e.batch_id).await? else {
            return Ok(());
        };
        let jobs = {
            let mut conn = self.db.conn().await?;
            batches::jobs_of(&mut conn, batch.id).await?
        };
        let subject = batch.id.to_string();
        let success = batch.archive_status.as_deref() == Some("stored");
        if let Some(url) = &batch.callback_url {
            let payload = batch_payload(&batch, &jobs);
            self.webhook(&batch, None, &subject, url, serde_json::to_vec(&payload)?)
                .await?;
        }
        if let Some(to) = self.recipient(&batch, &project) {
            let tasks: Vec<_> = jobs
                .iter()
                .map(|j| {
                    (
                        j.source_url.clone(),
                        j.status() == JobStatus::Success,
                        j.filename.clone(),
                    )
                })
                .collect();
            let content =
                EmailContent::for_zip_batch(&subject, success, &self.dashboard_url, &tasks);
            self.email(&batch, None, &subject, &to, &content).await?;
        }
        Ok(())
    }

    /// `notification_email`, else the owner's address unless the project turned it off.
    fn recipient(&self, batch: &Batch, project: &Project) -> Option<String> {
        batch.notification_email.clone().or_else(|| {
            project
                .default_email_enabled
                .then(|| project.owner_email.clone())
        })
    }

    async fn webhook(
        &self,
        batch: &Batch,
        job_id: Option<uuid::Uuid>,
        subject: &str,
        url: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<()> {
        let claim = {
            let mut conn = self.db.conn().await?;
            notifications::claim(&mut conn, batch.id, job_id, subject, "webhook").await?
        };
        let Some(id) = claim else {
            tracing::info!("webhook already sent for this event; skipping the duplicate");
            return Ok(());
        };
        let result = self.egress.post_json(url, body, &[]).await;
        let (sent, error) = match result {
            Ok(reply) if matches!(reply.status, 200 | 201 | 202 | 204) => (true, None),
            Ok(reply) => (
                false,
                Some(format!("receiver answered HTTP {}", reply.status)),
            ),
            Err(e) => (false, Some(e.to_string())),
        };
        tracing::info!(
            sent,
            error = error.as_deref().unwrap_or(""),
            "webhook delivery"
        );
        let mut conn = self.db.conn().await?;
        notifications::record(&mut conn, id, sent, error.as_deref()).await?;
        Ok(())
    }

    async fn email(
        &self,
        batch: &Batch,
        job_id: Option<uuid::Uuid>,
        subject: &str,
        to: &str,
        content: &EmailContent,
    ) -> anyhow::Result<()> {
        let claim = {
            let mut conn = self.db.conn().await?;
            notifications::claim(&mut conn, batch.id, job_id, subject, "email").await?
        };
        let Some(id) = claim else {
            tracing::info!("email already sent for this event; skipping the duplicate");
            return Ok(());
        };
        let result = self.mailer.send(&self.from, to, content).await;
        let error = result.as_ref().err().map(|e| format!("{e:#}"));
        tracing::info!(sent = result.is_ok(), "email delivery");
        let mut conn = self.db.conn().await?;
        notifications::record(&mut conn, id, result.is_ok(), error.as_deref()).await?;
        Ok(())
    }
}

/// The seed's individual-mode payload (plus `error` on failures).
pub fn job_payload(job: &Job) -> JobWebhook {
    let success = job.status() == JobStatus::Success;
    JobWebhook {
        job_id: job.public_id(),
        status: if success { "success" } else { "failed" }.to_string(),
        batch_id: job.batch_id,
        gcs_uri: job.object_key.clone().filter(|_| success),
        filename: job.filename.clone().filter(|_| success),
        file_size: job.file_size.filter(|_| success),
        error: job.error.clone().filter(|_| !success),
    }
}

/// The seed's ZIP-mode payload.
pub fn batch_payload(batch: &Batch, jobs: &[Job]) -> BatchWebhook {
    let counts = batch.counts();
    let stored = batch.archive_status.as_deref() == Some("stored");
    BatchWebhook {
        job_id: batch.id.to_string(),
        status: if stored { "success" } else { "failed" }.to_string(),
        batch_id: batch.id,
        gcs_uri: batch.archive_key.clone().filter(|_| stored),
        filename: batch.archive_filename.clone().filter(|_| stored),
        file_size: batch.archive_size.filter(|_| stored),
        total_tasks: counts.total,
        successful_tasks: counts.succeeded,
        failed_tasks: counts.failed,
        tasks: jobs
            .iter()
            .map(|j| {
                let ok = j.status() == JobStatus::Success;
                TaskEntry {
                    url: j.source_url.clone(),
                    status: if ok { "success" } else { "failed" }.to_string(),
                    filename: j.filename.clone().filter(|_| ok),
                    error: j.error.clone().filter(|_| !ok),
                }
            })
            .collect(),
    }
}

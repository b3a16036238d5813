#![doc = include_str!("../README.md")]

pub mod delivery;
pub mod mail;

use std::sync::Arc;
use std::time::Duration;

use enconvert_config::Settings;
use enconvert_db::models::{Batch, Job, Project};
use enconvert_db::notifications::NewClaim;
use enconvert_db::{Db, batches, notifications, projects};
use enconvert_domain::events::{
    BatchCompleted, BatchWebhook, JobCompleted, JobWebhook, TaskEntry, kind,
};
use enconvert_domain::notify::{EmailContent, batch_link};
use enconvert_domain::{JobStatus, OutputMode};
use enconvert_egress::Egress;
use enconvert_queue::consumer::{self, Disposition, Handler, Incoming, Subscription};
use enconvert_queue::{AmqpConfig, topology};
use secrecy::ExposeSecret;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::delivery::{Deliverer, LOGGED_BODY};
use crate::mail::Mailer;

/// The lane of concurrency every email shares.
const SMTP_LANE: &str = "smtp";

/// Turns completion events into notification claims; the [`Deliverer`] sends them.
struct Notifier {
    db: Db,
    dashboard_url: String,
    /// Attempts a new notification may have: the first and one per retry.
    max_attempts: i32,
    wake: Arc<Notify>,
}

pub struct Running {
    /// The health and metrics listener, when configured.
    pub ops_addr: Option<std::net::SocketAddr>,
    pub done: JoinHandle<()>,
}

/// Starts consuming completion events and delivering notifications until `cancel` fires.
pub async fn start(settings: &Settings, cancel: CancellationToken) -> anyhow::Result<Running> {
    enconvert_db::migrate(
        settings.database_url.expose_secret(),
        Duration::from_secs(60),
    )
    .await?;
    let db = Db::new(settings.database_url.expose_secret(), settings.db_pool_size)?;
    enconvert_metrics::init()?;
    let n = &settings.notifier;
    let mailer = match &n.smtp_url {
        Some(url) => Mailer::smtp(url.expose_secret())?,
        None => Mailer::folder(n.mail_dir.clone())?,
    };
    let egress = Egress::new(
        settings.allow_private.clone(),
        n.webhook_timeout,
        LOGGED_BODY,
        concat!("Enconvert-Webhooks/", env!("CARGO_PKG_VERSION")),
    )?;
    let wake = Arc::new(Notify::new());
    let deliverer = Arc::new(Deliverer {
        db: db.clone(),
        mailer,
        from: n.mail_from.parse()?,
        egress,
        webhook_timeout: n.webhook_timeout,
        retry_schedule: n.retry_schedule.clone(),
        // Longer than any attempt can take: the webhook timeout, or SMTP's 60 s.
        lease: n.webhook_timeout.max(Duration::from_secs(60)) + Duration::from_secs(30),
        concurrency: n.concurrency,
        per_receiver: (n.concurrency / 4).max(1),
        wake: wake.clone(),
    });
    let notifier = Arc::new(Notifier {
        db: db.clone(),
        dashboard_url: n.dashboard_url.clone(),
        max_attempts: i32::try_from(n.retry_schedule.len() + 1).unwrap_or(i32::MAX),
        wake,
    });
    let handler: Handler = Arc::new(move |msg: Incoming| {
        let notifier = notifier.clone();
        Box::pin(async move { notifier.handle(msg).await })
    });
    let amqp = AmqpConfig {
        url: settings.amqp_url.expose_secret().to_string(),
        connection_name: enconvert_queue::process_label("notifier"),
        delivery_limit: settings.delivery_limit,
        broker: enconvert_queue::BrokerState::default(),
    };
    let ops = match n.ops_addr {
        Some(addr) => Some(enconvert_metrics::server::serve(
            addr,
            enconvert_queue::health::check(db.clone(), amqp.broker.clone(), true),
            cancel.clone(),
        )?),
        None => None,
    };
    let prefetch = u16::try_from(n.concurrency).unwrap_or(u16::MAX);
    let grace = n.webhook_timeout + Duration::from_secs(5);
    let subscriptions = vec![Subscription {
        queue: topology::NOTIFIER_EVENTS.to_string(),
        handler,
    }];
    let scheduler = tokio::spawn(deliverer.run(cancel.clone(), grace));
    let ops_addr = ops.as_ref().map(|o| o.addr);
    let done = tokio::spawn(async move {
        consumer::run(amqp, subscriptions, prefetch, grace, cancel).await;
        let _ = scheduler.await;
        if let Some(ops) = ops {
            ops.stop().await;
        }
        tracing::info!("notifier stopped");
    });
    Ok(Running { ops_addr, done })
}

/// The lane of a webhook: its receiver's `host:port`.
fn lane_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| {
            let host = u.host_str()?.to_ascii_lowercase();
            Some(format!("{host}:{}", u.port_or_known_default().unwrap_or(0)))
        })
        .unwrap_or_else(|| "unknown".to_string())
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
                tracing::warn!(error = ?e, "could not claim the notifications; the event will be delivered again");
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
        let recipient = self.recipient(&batch, &project);
        // Nothing to tell (no webhook, no email): the job's row is not read at all.
        if !batch.is_async || (batch.callback_url.is_none() && recipient.is_none()) {
            return Ok(());
        }
        let job = {
            let mut conn = self.db.conn().await?;
            enconvert_db::jobs::get(&mut conn, e.job_id).await?
        };
        let Some(job) = job else { return Ok(()) };
        let success = job.status() == JobStatus::Success;
        let subject = job.id.to_string();
        let webhook = match &batch.callback_url {
            Some(url) => Some((url.as_str(), serde_json::to_string(&job_payload(&job))?)),
            None => None,
        };
        let email = match recipient {
            Some(to) => {
                let batch_id = batch.id.to_string();
                let content = EmailContent::for_job(
                    &job.public_id(),
                    Some(&batch_id),
                    success,
                    &batch_link(&self.dashboard_url, &batch_id),
                );
                Some((to, serde_json::to_string(&content)?))
            }
            None => None,
        };
        self.claim(&batch, Some(job.id), &subject, webhook, email)
            .await
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
        let webhook = match &batch.callback_url {
            Some(url) => Some((
                url.as_str(),
                serde_json::to_string(&batch_payload(&batch, &jobs))?,
            )),
            None => None,
        };
        let email = match self.recipient(&batch, &project) {
            Some(to) => {
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
                let content = EmailContent::for_zip_batch(
                    &subject,
                    success,
                    &batch_link(&self.dashboard_url, &subject),
                    &tasks,
                );
                Some((to, serde_json::to_string(&content)?))
            }
            None => None,
        };
        self.claim(&batch, None, &subject, webhook, email).await
    }

    /// `notification_email`, else the owner's address unless the project turned it off.
    fn recipient(&self, batch: &Batch, project: &Project) -> Option<String> {
        batch.notification_email.clone().or_else(|| {
            project
                .default_email_enabled
                .then(|| project.owner_email.clone())
        })
    }

    /// Claims each notification (a duplicated event finds the claims and adds nothing) and
    /// wakes the scheduler, which sends them.
    async fn claim(
        &self,
        batch: &Batch,
        job_id: Option<uuid::Uuid>,
        subject: &str,
        webhook: Option<(&str, String)>,
        email: Option<(String, String)>,
    ) -> anyhow::Result<()> {
        let mut conn = self.db.conn().await?;
        let mut claimed = 0;
        if let Some((url, body)) = &webhook {
            let lane = lane_of(url);
            let id = notifications::claim(
                &mut conn,
                &NewClaim {
                    batch_id: batch.id,
                    job_id,
                    subject,
                    channel: "webhook",
                    target: url,
                    body,
                    receiver: &lane,
                    max_attempts: self.max_attempts,
                },
            )
            .await?;
            match id {
                Some(_) => claimed += 1,
                None => {
                    tracing::info!("webhook already claimed for this event; skipping the duplicate")
                }
            }
        }
        if let Some((to, body)) = &email {
            let id = notifications::claim(
                &mut conn,
                &NewClaim {
                    batch_id: batch.id,
                    job_id,
                    subject,
                    channel: "email",
                    target: to,
                    body,
                    receiver: SMTP_LANE,
                    max_attempts: self.max_attempts,
                },
            )
            .await?;
            match id {
                Some(_) => claimed += 1,
                None => {
                    tracing::info!("email already claimed for this event; skipping the duplicate")
                }
            }
        }
        if claimed > 0 {
            tracing::info!(claimed, "notifications claimed");
            self.wake.notify_one();
        }
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

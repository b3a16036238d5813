#![doc = include_str!("../README.md")]

mod archive;
pub mod browser;
pub mod cdp;
mod dead;
mod discover;
mod reconcile;
pub mod render;
mod retention;
mod slots;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use chrono::Utc;
use enconvert_config::Settings;
use enconvert_db::jobs::{self, Outcome};
use enconvert_db::models::{Batch, Job};
use enconvert_db::{Db, DbError};
use enconvert_domain::events::{ArchiveJob, BatchCompleted, DiscoverJob, JobCompleted, RenderJob};
use enconvert_domain::naming;
use enconvert_domain::request::{Endpoint, RenderOptions};
use enconvert_queue::consumer::{self, Disposition, Handler, Incoming, Subscription};
use enconvert_queue::{AmqpConfig, messages, topology};
use enconvert_storage::Storage;
use secrecy::ExposeSecret;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::browser::Chrome;
use crate::render::{RenderError, TabSlot};
use crate::slots::{Priority, Slots};

/// One request of a website discovery may take this long.
const DISCOVERY_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Pages one full crawl may fetch, whatever its time budget.
const DISCOVERY_MAX_FETCHES: usize = 5_000;

/// Everything a job needs, shared by all in flight.
#[derive(Clone)]
pub(crate) struct Worker {
    db: Db,
    storage: Storage,
    chrome: Chrome,
    /// Render slots; sync jobs go first and may use one beyond the concurrency.
    slots: Arc<Slots>,
    relay_wake: Arc<Notify>,
    env: String,
    render_timeout: Duration,
    /// What a render may wait for and load.
    limits: render::Limits,
    /// The guarded HTTP client of website discovery.
    egress: enconvert_egress::Egress,
    discovery: discover::Limits,
    /// Deliveries of a message, and render attempts of a job, before it is given up.
    delivery_limit: u32,
}

/// A started worker; `done` ends once it has drained and stopped.
pub struct Running {
    /// The health and metrics listener, when configured.
    pub ops_addr: Option<std::net::SocketAddr>,
    pub done: JoinHandle<()>,
}

/// Starts consuming render work until `cancel` fires.
pub async fn start(settings: &Settings, cancel: CancellationToken) -> anyhow::Result<Running> {
    enconvert_db::migrate(
        settings.database_url.expose_secret(),
        Duration::from_secs(60),
    )
    .await?;
    let db = Db::new(settings.database_url.expose_secret(), settings.db_pool_size)?;
    let storage = Storage::connect(
        settings.storage_url.as_deref(),
        &settings.storage_dir,
        &settings.storage_options,
    )
    .context("failed to open the file store")?;
    enconvert_metrics::init()?;
    // Every request Chromium makes goes through the guard proxy, which applies the same
    // address rules as the submit-time check (docs/reliability.md, case 12).
    // It outlives the shutdown signal: renders finishing in the grace period still need it.
    let proxy_stop = CancellationToken::new();
    let proxy = enconvert_egress::proxy::GuardProxy::start(
        settings.allow_private.clone(),
        proxy_stop.clone(),
    )
    .await
    .context("failed to start the egress guard proxy")?;
    let chrome = Chrome::new(
        settings.worker.chromium_path.clone(),
        settings.worker.concurrency,
        proxy.chromium_flags(),
    )
    .recycle_after(settings.worker.browser_recycle_after);
    {
        let chrome = chrome.clone();
        tokio::task::spawn_blocking(move || chrome.warm_up())
            .await?
            .context("Chromium does not start; install it (`apt-get install chromium`) or set ENCONVERT_CHROMIUM_PATH")?;
    }
    let concurrency = settings.worker.concurrency;
    let relay_wake = Arc::new(Notify::new());
    let worker = Worker {
        db: db.clone(),
        storage,
        chrome,
        slots: Slots::new(concurrency),
        relay_wake: relay_wake.clone(),
        env: settings.env.clone(),
        render_timeout: settings.worker.render_timeout,
        limits: render::Limits {
            network_quiet: settings.worker.network_quiet,
            max_document_bytes: settings.worker.max_document_bytes,
            max_page_bytes: settings.worker.max_page_bytes,
        },
        egress: enconvert_egress::Egress::new(
            settings.allow_private.clone(),
            DISCOVERY_REQUEST_TIMEOUT,
            discover::MAX_RESPONSE,
            concat!(
                "Mozilla/5.0 (compatible; Enconvert/",
                env!("CARGO_PKG_VERSION"),
                "; website discovery)"
            ),
        )?,
        discovery: discover::Limits {
            budget: settings.worker.discovery_budget,
            max_fetches: DISCOVERY_MAX_FETCHES,
        },
        delivery_limit: settings.delivery_limit,
    };
    let amqp = AmqpConfig {
        url: settings.amqp_url.expose_secret().to_string(),
        connection_name: enconvert_queue::process_label("worker"),
        delivery_limit: settings.delivery_limit,
        broker: enconvert_queue::BrokerState::default(),
    };
    let ops = match settings.worker.ops_addr {
        Some(addr) => Some(enconvert_metrics::server::serve(
            addr,
            enconvert_queue::health::check(db.clone(), amqp.broker.clone(), true),
            cancel.clone(),
        )?),
        None => None,
    };
    let render_handler = |priority: Priority| -> Handler {
        let worker = worker.clone();
        Arc::new(move |msg: Incoming| {
            let worker = worker.clone();
            Box::pin(async move { worker.handle_render(msg, priority).await })
        })
    };
    let archive_handler: Handler = {
        let worker = worker.clone();
        Arc::new(move |msg: Incoming| {
            let worker = worker.clone();
            Box::pin(async move { worker.handle_archive(msg).await })
        })
    };
    let discover_handler: Handler = {
        let worker = worker.clone();
        Arc::new(move |msg: Incoming| {
            let worker = worker.clone();
            Box::pin(async move { worker.handle_discover(msg).await })
        })
    };
    let mut subscriptions = vec![
        Subscription {
            queue: topology::DISCOVER.to_string(),
            handler: discover_handler,
        },
        Subscription {
            queue: topology::RENDER_SYNC.to_string(),
            handler: render_handler(Priority::Sync),
        },
        Subscription {
            queue: topology::RENDER_BATCH.to_string(),
            handler: render_handler(Priority::Batch),
        },
        Subscription {
            queue: topology::ARCHIVE.to_string(),
            handler: archive_handler,
        },
    ];
    subscriptions.extend(dead::subscriptions(&worker));
    let relay = tokio::spawn(enconvert_queue::relay::run(
        db,
        amqp.clone(),
        relay_wake,
        cancel.clone(),
    ));
    tokio::spawn(reconcile::run(
        worker.clone(),
        Duration::from_secs(5),
        cancel.clone(),
    ));
    tokio::spawn(retention::run(
        worker.clone(),
        settings.worker.retention_sweep,
        cancel.clone(),
    ));
    let prefetch = u16::try_from(concurrency).unwrap_or(u16::MAX);
    let grace = settings.worker.render_timeout + Duration::from_secs(5);
    let ops_addr = ops.as_ref().map(|o| o.addr);
    let chrome = worker.chrome.clone();
    let done = tokio::spawn(async move {
        consumer::run(amqp, subscriptions, prefetch, grace, cancel).await;
        let _ = tokio::task::spawn_blocking(move || chrome.shutdown()).await;
        proxy_stop.cancel();
        let _ = relay.await;
        if let Some(ops) = ops {
            ops.stop().await;
        }
        tracing::info!("worker stopped");
    });
    Ok(Running { ops_addr, done })
}

impl Worker {
    async fn handle_render(&self, msg: Incoming, priority: Priority) -> Disposition {
        let Ok(work) = serde_json::from_slice::<RenderJob>(&msg.data) else {
            tracing::error!("unreadable render message, dead-lettering it");
            return Disposition::DeadLetter;
        };
        // A message that crashes its worker before anything is recorded.
        enconvert_config::failpoint("worker.render");
        let span = tracing::info_span!("render", batch.id = %work.batch_id, job.id = %work.job_id);
        async {
            match self.render_job(&work, priority).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = ?e, "render job interrupted; it will be delivered again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    Disposition::Requeue
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn handle_archive(&self, msg: Incoming) -> Disposition {
        let Ok(work) = serde_json::from_slice::<ArchiveJob>(&msg.data) else {
            tracing::error!("unreadable archive message, dead-lettering it");
            return Disposition::DeadLetter;
        };
        // A message that crashes its worker before anything is recorded.
        enconvert_config::failpoint("worker.archive");
        let span = tracing::info_span!("archive", batch.id = %work.batch_id);
        async {
            match self.build_archive(&work).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = ?e, "archive interrupted; it will be delivered again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    Disposition::Requeue
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn handle_discover(&self, msg: Incoming) -> Disposition {
        let Ok(work) = serde_json::from_slice::<DiscoverJob>(&msg.data) else {
            tracing::error!("unreadable discover message, dead-lettering it");
            return Disposition::DeadLetter;
        };
        // A message that crashes its worker before anything is recorded.
        enconvert_config::failpoint("worker.discover");
        let span = tracing::info_span!("discover", batch.id = %work.batch_id);
        async {
            match self.discover_site(&work).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = ?e, "discovery interrupted; it will be delivered again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    Disposition::Requeue
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn render_job(
        &self,
        work: &RenderJob,
        priority: Priority,
    ) -> anyhow::Result<Disposition> {
        let _permit = self.slots.acquire(priority).await;
        // The lease outlives the render's own deadline, so a live worker never loses its job.
        let lease_until =
            Utc::now() + chrono::Duration::from_std(self.render_timeout + Duration::from_secs(30))?;
        let claimed = {
            let mut conn = self.db.conn().await?;
            jobs::claim(&mut conn, work.job_id, lease_until).await?
        };
        let Some((job, batch)) = claimed else {
            tracing::info!("job already taken or finished; dropping the duplicate message");
            return Ok(Disposition::Ack);
        };
        // A job that keeps killing its worker never reaches the delivery limit (each lease
        // expiry requeues it with a fresh message); its attempts do.
        if let Some(error) = dead::too_many_attempts(&job, self.delivery_limit) {
            tracing::warn!(attempts = job.attempts, "giving the job up");
            self.finish(&job, Outcome::Failed { error }, 0).await?;
            return Ok(Disposition::Ack);
        }
        let options: RenderOptions = match serde_json::from_value(batch.options.clone()) {
            Ok(o) => o,
            Err(e) => {
                self.finish(
                    &job,
                    Outcome::Failed {
                        error: format!("unreadable render options: {e}"),
                    },
                    0,
                )
                .await?;
                return Ok(Disposition::Ack);
            }
        };
        let started = Instant::now();
        let rendered = self.render(&job.source_url, &options).await;
        enconvert_metrics::render_duration(
            &batch.endpoint,
            render_outcome(&rendered),
            started.elapsed().as_secs_f64(),
        );
        let outcome = match rendered {
            Ok(bytes) => self.store(&job, &batch, &options, bytes).await?,
            Err(RenderError::Target(error)) => Outcome::Failed { error },
            Err(error @ (RenderError::Browser(_) | RenderError::Crashed)) => {
                // Give the job back so the redelivery can take it at once; the delivery limit
                // ends a page that crashes every time.
                let mut conn = self.db.conn().await?;
                jobs::release(&mut conn, job.id, job.attempts).await?;
                enconvert_metrics::job(&batch.endpoint, "requeued");
                anyhow::bail!("{error}");
            }
        };
        let ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        self.finish(&job, outcome, ms).await?;
        Ok(Disposition::Ack)
    }

    async fn render(&self, url: &str, options: &RenderOptions) -> Result<Vec<u8>, RenderError> {
        render_page(&self.chrome, url, options, self.limits, self.render_timeout).await
    }

    async fn store(
        &self,
        job: &Job,
        batch: &Batch,
        options: &RenderOptions,
        bytes: Vec<u8>,
    ) -> anyhow::Result<Outcome> {
        let endpoint = Endpoint::parse(&batch.endpoint).unwrap_or(Endpoint::UrlToPdf);
        let stem = match &batch.output_filename {
            Some(s) => s.clone(),
            None => url::Url::parse(&job.source_url)
                .map(|u| naming::stem_from_url(&u))
                .unwrap_or_else(|_| "page".to_string()),
        };
        let ext = options.extension();
        let size = bytes.len();
        let data = Bytes::from(bytes);
        // Two files of one project can share a stem and a millisecond; never overwrite.
        let mut at = Utc::now();
        loop {
            let filename = naming::file_name(&stem, at, ext);
            let key = naming::object_key(&self.env, job.project_id, endpoint, &filename);
            if self.storage.put_new(&key, data.clone()).await? {
                return Ok(Outcome::Success {
                    object_key: key,
                    filename,
                    file_size: i64::try_from(size).unwrap_or(i64::MAX),
                });
            }
            at += chrono::Duration::milliseconds(1);
        }
    }

    async fn finish(&self, job: &Job, outcome: Outcome, duration_ms: i32) -> Result<(), DbError> {
        let mut conn = self.db.conn().await?;
        let finished = jobs::finish(&mut conn, job.id, job.attempts, outcome, duration_ms, |f| {
            let mode = f.batch.output_mode();
            let mut out = vec![messages::job_completed(&JobCompleted {
                job_id: f.job.id,
                batch_id: f.batch.id,
                project_id: f.batch.project_id,
                status: f.job.status(),
                output_mode: mode,
            })];
            if f.batch_done {
                out.push(match mode {
                    enconvert_domain::OutputMode::Individual => {
                        messages::batch_completed(&BatchCompleted {
                            batch_id: f.batch.id,
                            project_id: f.batch.project_id,
                            status: f.batch.status(),
                            output_mode: mode,
                        })
                    }
                    // The batch completes once its archive is stored.
                    enconvert_domain::OutputMode::Zip => messages::archive(&ArchiveJob {
                        batch_id: f.batch.id,
                    }),
                });
            }
            out
        })
        .await?;
        match finished {
            Some(f) => {
                tracing::info!(status = %f.job.status, duration_ms, "job finished");
                enconvert_metrics::job(
                    &f.batch.endpoint,
                    if f.job.status() == enconvert_domain::JobStatus::Success {
                        "success"
                    } else {
                        "failed"
                    },
                );
                self.relay_wake.notify_one();
            }
            None => tracing::warn!("job was taken over by another worker; result discarded"),
        }
        Ok(())
    }
}

/// Renders `url` on a blocking thread, bounded by `render_timeout`; a browser failure
/// discards the browser. It returns as soon as the page's renderer crashes, or at the
/// deadline: the tab is then closed, and the blocking thread ends by itself (its pending call
/// fails by the browser's call timeout).
pub async fn render_page(
    chrome: &Chrome,
    url: &str,
    options: &RenderOptions,
    limits: render::Limits,
    render_timeout: Duration,
) -> Result<Vec<u8>, RenderError> {
    let deadline = Instant::now() + render_timeout;
    let slot: TabSlot = Arc::new(Mutex::new(None));
    let chrome = chrome.clone();
    let (url_owned, opts, slot2) = (url.to_string(), options.clone(), slot.clone());
    let task = tokio::task::spawn_blocking(move || {
        let browser = chrome
            .get()
            .map_err(|e| RenderError::Browser(format!("{e:#}")))?;
        let result = render::render(&browser, &url_owned, &opts, limits, deadline, &slot2);
        if matches!(result, Err(RenderError::Browser(_))) {
            chrome.discard(&browser);
        }
        result
    });
    let timeout = tokio::time::sleep(render_timeout + Duration::from_secs(2));
    let mut watch = tokio::time::interval(CRASH_POLL);
    tokio::pin!(task, timeout);
    let given_up = loop {
        tokio::select! {
            joined = &mut task => return joined_result(joined),
            () = &mut timeout => break RenderError::Target("Page load timeout".to_string()),
            _ = watch.tick() => {
                let (crashed, overdue) = slot
                    .lock()
                    .ok()
                    .and_then(|s| s.as_ref().map(|c| (c.crashed(), c.page_overdue())))
                    .unwrap_or_default();
                if crashed {
                    // Most waits see the crash themselves and end the render at once.
                    if let Ok(joined) = tokio::time::timeout(CRASH_GRACE, &mut task).await {
                        return joined_result(joined);
                    }
                    break RenderError::Crashed;
                }
                if overdue {
                    // Preparing its page is stuck on a tab whose renderer died.
                    break RenderError::Browser(
                        "Chromium did not give the render a page in time".to_string(),
                    );
                }
            }
        }
    };
    // The render thread is stuck in a call that will not be answered: close the tab, and
    // give the browser up (it is killed once no other job is on it, which ends the call).
    let current = slot.lock().ok().and_then(|mut s| s.take());
    if let Some(current) = current {
        current.browser.abandon();
        let crashed = current.crashed();
        if let Some((tab, _)) = current.page {
            tokio::task::spawn_blocking(move || tab.close(false));
        }
        if crashed {
            return Err(RenderError::Crashed);
        }
    }
    Err(given_up)
}

fn joined_result(
    joined: Result<Result<Vec<u8>, RenderError>, tokio::task::JoinError>,
) -> Result<Vec<u8>, RenderError> {
    joined.unwrap_or_else(|join| Err(RenderError::Browser(join.to_string())))
}

/// How long a render whose renderer crashed has to end by itself.
const CRASH_GRACE: Duration = Duration::from_secs(1);

/// How often a running render is checked for a crashed renderer.
const CRASH_POLL: Duration = Duration::from_millis(100);

/// The label of a render's result in `enconvert_render_duration_seconds`.
fn render_outcome(r: &Result<Vec<u8>, RenderError>) -> &'static str {
    match r {
        Ok(_) => "success",
        Err(RenderError::Target(_)) => "target_error",
        Err(RenderError::Browser(_)) => "browser_error",
        Err(RenderError::Crashed) => "renderer_crashed",
    }
}

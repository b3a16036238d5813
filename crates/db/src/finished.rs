//! Wakes sync requests when their job finishes: the worker's finishing transaction sends a
//! PostgreSQL `NOTIFY` with the job id, and every api process `LISTEN`s on one connection of its
//! own, so a waiting request learns of its result at commit instead of polling the job row.
//!
//! The same connection listens for changes to keys, projects and plans (sent by triggers, see
//! the `caller_changes` migration), which end what api processes keep of their callers:
//! [`Listener::callers_generation`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use futures_util::StreamExt;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{Conn, DbError};

/// The channel finished sync jobs are announced on.
pub const CHANNEL: &str = "enconvert_job_finished";
/// The channel triggers announce changes to `api_keys`, `projects` and `plans` on.
pub const CALLERS_CHANNEL: &str = "enconvert_callers_changed";

/// Announces (at commit) that `job_id` is final.
pub async fn notify(conn: &mut Conn, job_id: Uuid) -> Result<(), DbError> {
    diesel::sql_query("SELECT pg_notify($1, $2)")
        .bind::<Text, _>(CHANNEL)
        .bind::<Text, _>(job_id.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// The finished jobs announced to this process.
#[derive(Clone)]
pub struct Listener {
    tx: broadcast::Sender<Uuid>,
    connected: Arc<AtomicBool>,
    /// Moves on every change to callers and every (re)connection.
    callers: Arc<AtomicU64>,
}

impl Listener {
    /// Listens on its own connection to `database_url` until `cancel` fires, reconnecting
    /// after any failure.
    pub fn start(database_url: String, cancel: CancellationToken) -> Self {
        let (tx, _) = broadcast::channel(1024);
        let listener = Listener {
            tx,
            connected: Arc::new(AtomicBool::new(false)),
            callers: Arc::new(AtomicU64::new(0)),
        };
        let l = listener.clone();
        tokio::spawn(async move {
            while !cancel.is_cancelled() {
                if let Err(e) = l.listen(&database_url, &cancel).await {
                    tracing::warn!(error = %e, "job notifications interrupted; polling until they are back");
                }
                l.connected.store(false, Ordering::SeqCst);
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        });
        listener
    }

    async fn listen(&self, url: &str, cancel: &CancellationToken) -> anyhow::Result<()> {
        let (client, mut connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        let (ready_tx, mut ready_rx) = tokio::sync::oneshot::channel::<()>();
        let subscribe = async move {
            client
                .batch_execute(&format!("LISTEN {CHANNEL}; LISTEN {CALLERS_CHANNEL}"))
                .await?;
            let _ = ready_tx.send(());
            // The client must live as long as the connection is read.
            std::future::pending::<()>().await;
            Ok::<_, anyhow::Error>(())
        };
        tokio::pin!(subscribe);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                r = &mut subscribe => return r,
                _ = &mut ready_rx, if !AtomicBool::load(&self.connected, Ordering::SeqCst) => {
                    // Changes made while nothing listened were missed: what was kept goes.
                    self.callers.fetch_add(1, Ordering::SeqCst);
                    self.connected.store(true, Ordering::SeqCst);
                }
                m = messages.next() => match m {
                    Some(Ok(tokio_postgres::AsyncMessage::Notification(n)))
                        if n.channel() == CALLERS_CHANNEL =>
                    {
                        self.callers.fetch_add(1, Ordering::SeqCst);
                    }
                    Some(Ok(tokio_postgres::AsyncMessage::Notification(n))) => {
                        if let Ok(id) = n.payload().parse::<Uuid>() {
                            let _ = self.tx.send(id);
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.into()),
                    None => anyhow::bail!("the notification connection closed"),
                },
            }
        }
    }

    /// Whether notifications arrive now (if not, waiters should poll).
    pub fn connected(&self) -> bool {
        AtomicBool::load(&self.connected, Ordering::SeqCst)
    }

    /// A number that changes whenever keys, projects or plans change, and whenever the
    /// listening connection is re-established; `None` while changes are not heard (nothing
    /// may be kept then). What was read while it had a value stays true while it keeps it.
    pub fn callers_generation(&self) -> Option<u64> {
        self.connected()
            .then(|| AtomicU64::load(&self.callers, Ordering::SeqCst))
    }

    /// Forgets what this process kept of its callers (a change it made itself, so that it
    /// does not wait for its own notification).
    pub fn callers_changed(&self) {
        self.callers.fetch_add(1, Ordering::SeqCst);
    }

    /// Finished job ids from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Uuid> {
        self.tx.subscribe()
    }
}

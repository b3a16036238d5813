//! The delivery scheduler: takes due notifications from PostgreSQL, sends each in its own
//! task, records every attempt and schedules retries.
//!
//! Nothing about a pending delivery lives only in memory: a restart loses nothing, and a
//! notifier that dies during an attempt leaves a lease that runs out, after which the
//! notification is sent once more under the same `webhook-id`. A slow or dead receiver
//! only ever holds its own lane (at most `per_receiver` attempts in flight), never the
//! others'.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use enconvert_db::notifications::{self, AttemptOutcome, Next, Taken};
use enconvert_db::{Db, batches, webhook_secrets};
use enconvert_domain::notify::EmailContent;
use enconvert_domain::webhook::{self, Verdict};
use enconvert_egress::{Egress, EgressError};
use lettre::message::Mailbox;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::mail::Mailer;

/// How often due notifications are looked for when nothing wakes the scheduler.
const POLL: Duration = Duration::from_millis(500);
/// The start of a receiver's answer kept in the delivery log.
pub const LOGGED_BODY: usize = 1024;

pub struct Deliverer {
    pub db: Db,
    pub mailer: Mailer,
    pub from: Mailbox,
    pub egress: Egress,
    pub webhook_timeout: Duration,
    pub retry_schedule: Vec<Duration>,
    /// How long a taken notification belongs to this process before it is due again.
    pub lease: Duration,
    pub concurrency: usize,
    pub per_receiver: usize,
    pub wake: Arc<Notify>,
}

/// Counts the attempts in flight per receiver; the guard gives its place back on drop, so
/// an aborted task frees its lane too.
#[derive(Clone, Default)]
struct Lanes(Arc<Mutex<HashMap<String, usize>>>);

struct LaneGuard {
    lanes: Lanes,
    receiver: String,
}

impl Lanes {
    fn snapshot(&self) -> HashMap<String, usize> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }

    fn enter(&self, receiver: &str) -> LaneGuard {
        if let Ok(mut m) = self.0.lock() {
            *m.entry(receiver.to_string()).or_insert(0) += 1;
        }
        LaneGuard {
            lanes: self.clone(),
            receiver: receiver.to_string(),
        }
    }
}

impl Drop for LaneGuard {
    fn drop(&mut self) {
        if let Ok(mut m) = self.lanes.0.lock()
            && let Some(n) = m.get_mut(&self.receiver)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.receiver);
            }
        }
    }
}

impl Deliverer {
    /// Runs until `cancel` fires, then waits up to `grace` for attempts in flight; those
    /// still running are dropped and become due again when their lease runs out.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken, grace: Duration) {
        let lanes = Lanes::default();
        let mut tasks: JoinSet<()> = JoinSet::new();
        loop {
            while tasks.try_join_next().is_some() {}
            let free = self.concurrency.saturating_sub(tasks.len());
            if free > 0 {
                match self.take(free, &lanes).await {
                    Ok(taken) => {
                        for t in taken {
                            let guard = lanes.enter(&t.notification.receiver);
                            let this = self.clone();
                            let span = tracing::info_span!(
                                "deliver",
                                notification.id = %t.notification.id,
                                batch.id = %t.notification.batch_id,
                                job.id = t.notification.job_id.map(tracing::field::display),
                                channel = %t.notification.channel,
                                attempt = t.attempt,
                            );
                            tasks.spawn(
                                async move {
                                    this.attempt(&t).await;
                                    drop(guard);
                                }
                                .instrument(span),
                            );
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "could not take due notifications"),
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        let deadline = tokio::time::sleep(grace);
        tokio::pin!(deadline);
        while !tasks.is_empty() {
            tokio::select! {
                _ = &mut deadline => {
                    tracing::warn!(left = tasks.len(), "grace period over; unfinished deliveries will be retried after their lease");
                    tasks.abort_all();
                    break;
                }
                _ = tasks.join_next() => {}
            }
        }
    }

    async fn take(&self, free: usize, lanes: &Lanes) -> Result<Vec<Taken>, enconvert_db::DbError> {
        let mut conn = self.db.conn().await?;
        notifications::take_due(
            &mut conn,
            free,
            self.per_receiver,
            &lanes.snapshot(),
            self.lease,
        )
        .await
    }

    /// One attempt, recorded. Never panics the scheduler: failures are logged.
    async fn attempt(&self, t: &Taken) {
        let (outcome, verdict, retry_after) = match t.notification.channel.as_str() {
            "webhook" => self.send_webhook(t).await,
            "email" => self.send_email(t).await,
            other => (
                AttemptOutcome {
                    error: Some(format!("unknown channel `{other}`")),
                    ..Default::default()
                },
                Verdict::GiveUp,
                None,
            ),
        };
        let next = match verdict {
            Verdict::Delivered => Next::Sent,
            Verdict::GiveUp => Next::Failed,
            Verdict::Retry if t.attempt < t.notification.max_attempts => {
                let attempt = u32::try_from(t.attempt).unwrap_or(u32::MAX);
                let jitter = rand::random::<f64>();
                match webhook::retry_delay(&self.retry_schedule, attempt, retry_after, jitter) {
                    Some(d) => Next::RetryAt(
                        Utc::now() + chrono::Duration::from_std(d).unwrap_or_default(),
                    ),
                    None => Next::Failed,
                }
            }
            Verdict::Retry => Next::Failed,
        };
        enconvert_metrics::notification_attempt(
            &t.notification.channel,
            match next {
                Next::Sent => "sent",
                Next::RetryAt(_) => "retry",
                Next::Failed => "failed",
            },
        );
        tracing::info!(
            status_code = outcome.status_code,
            latency_ms = outcome.latency_ms,
            outcome = match next {
                Next::Sent => "sent",
                Next::RetryAt(_) => "retry scheduled",
                Next::Failed => "failed",
            },
            retry_at = ?match next { Next::RetryAt(at) => Some(at), _ => None },
            "delivery attempt"
        );
        let recorded = match self.db.conn().await {
            Ok(mut conn) => notifications::record(&mut conn, t, &outcome, next).await,
            Err(e) => Err(e),
        };
        match recorded {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!("the attempt outlived its lease; another attempt has taken over")
            }
            Err(e) => tracing::warn!(
                error = %e,
                "could not record the attempt; it will be retried when its lease runs out"
            ),
        }
    }

    async fn send_webhook(&self, t: &Taken) -> (AttemptOutcome, Verdict, Option<Duration>) {
        let n = &t.notification;
        let (Some(url), Some(body)) = (n.target.as_deref(), n.body.as_deref()) else {
            return (
                failure("the notification has no URL or body"),
                Verdict::GiveUp,
                None,
            );
        };
        let secrets = match self.secrets(n.batch_id).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "could not load the signing secrets");
                return (
                    failure("could not prepare the delivery (signing secrets unavailable)"),
                    Verdict::Retry,
                    None,
                );
            }
        };
        let id = n.id.to_string();
        let timestamp = Utc::now().timestamp();
        let signature = match webhook::signature_header(&secrets, &id, timestamp, body.as_bytes()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "a stored signing secret is malformed");
                return (failure("could not sign the delivery"), Verdict::Retry, None);
            }
        };
        let headers = [
            ("webhook-id".to_string(), id),
            ("webhook-timestamp".to_string(), timestamp.to_string()),
            ("webhook-signature".to_string(), signature),
        ];
        let started = Instant::now();
        let result = self
            .egress
            .post_json(url, body.as_bytes().to_vec(), &headers)
            .await;
        let latency_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        match result {
            Ok(reply) => {
                let verdict = webhook::verdict(reply.status);
                let error = match (verdict, reply.status) {
                    (Verdict::Delivered, _) => None,
                    (_, 300..=399) => Some(format!(
                        "receiver answered HTTP {} (redirects are not followed)",
                        reply.status
                    )),
                    (_, s) => Some(format!("receiver answered HTTP {s}")),
                };
                let retry_after = reply
                    .headers
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(webhook::parse_retry_after);
                (
                    AttemptOutcome {
                        status_code: Some(i32::from(reply.status)),
                        latency_ms,
                        error,
                        response_body: Some(logged_body(&reply.body)),
                    },
                    verdict,
                    retry_after,
                )
            }
            Err(e) => {
                let verdict = match e {
                    // A private IP literal: it will not become public.
                    EgressError::Refused(_) => Verdict::GiveUp,
                    _ => Verdict::Retry,
                };
                let error = match e {
                    EgressError::Timeout => format!(
                        "no answer within {} s (timed out)",
                        self.webhook_timeout.as_secs()
                    ),
                    other => other.to_string(),
                };
                (
                    AttemptOutcome {
                        status_code: None,
                        latency_ms,
                        error: Some(error),
                        response_body: None,
                    },
                    verdict,
                    None,
                )
            }
        }
    }

    async fn secrets(&self, batch_id: uuid::Uuid) -> anyhow::Result<Vec<String>> {
        let mut conn = self.db.conn().await?;
        let batch = batches::get(&mut conn, batch_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the batch is gone"))?;
        Ok(webhook_secrets::signing(&mut conn, batch.project_id).await?)
    }

    async fn send_email(&self, t: &Taken) -> (AttemptOutcome, Verdict, Option<Duration>) {
        let n = &t.notification;
        let content = n
            .body
            .as_deref()
            .and_then(|b| serde_json::from_str::<EmailContent>(b).ok());
        let (Some(to), Some(content)) = (n.target.as_deref(), content) else {
            return (
                failure("the notification has no recipient or content"),
                Verdict::GiveUp,
                None,
            );
        };
        let started = Instant::now();
        let result = self.mailer.send(&self.from, to, &content).await;
        let latency_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        match result {
            Ok(()) => (
                AttemptOutcome {
                    latency_ms,
                    ..Default::default()
                },
                Verdict::Delivered,
                None,
            ),
            Err(e) => {
                // The message may quote the address: it goes to the database, not the log.
                tracing::warn!(permanent = e.permanent, "email not sent");
                (
                    AttemptOutcome {
                        latency_ms,
                        error: Some(e.message),
                        ..Default::default()
                    },
                    if e.permanent {
                        Verdict::GiveUp
                    } else {
                        Verdict::Retry
                    },
                    None,
                )
            }
        }
    }
}

fn failure(error: &str) -> AttemptOutcome {
    AttemptOutcome {
        error: Some(error.to_string()),
        ..Default::default()
    }
}

/// The start of an answer, at most [`LOGGED_BODY`] bytes, cut on a character boundary.
pub fn logged_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(LOGGED_BODY)]).into_owned();
    let mut end = text.len().min(LOGGED_BODY);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_bodies_are_cut_to_one_kib() {
        assert_eq!(logged_body(b"ok"), "ok");
        assert_eq!(logged_body(&[b'a'; 5000]).len(), 1024);
        // A multi-byte character across the cut is dropped, not split.
        let mut body = vec![b'a'; 1023];
        body.extend_from_slice("é".as_bytes());
        let cut = logged_body(&body);
        assert!(cut.len() <= 1024 && cut.chars().all(|c| c == 'a' || c == '\u{fffd}'));
    }
}

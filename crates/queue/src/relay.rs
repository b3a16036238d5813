//! The outbox relay: publishes committed outbox rows with publisher confirms, then deletes
//! them. A crash between commit and publish loses nothing; a crash between publish and
//! delete publishes twice, which every consumer tolerates.

use std::sync::Arc;
use std::time::Duration;

use enconvert_db::models::OutboxRow;
use enconvert_db::{AsyncConnection, Db, DbError, ScopedFutureExt, outbox};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::publisher_confirm::Confirmation;
use lapin::{BasicProperties, Channel};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{AmqpConfig, connect_with_backoff};

const BATCH: i64 = 200;
/// How often the outbox backlog gauge is refreshed.
const BACKLOG_EVERY: Duration = Duration::from_secs(5);
/// Rows left by another process (or a crash) are picked up within this time.
const POLL: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("publish failed: {0}")]
    Publish(#[from] lapin::Error),
    #[error("broker refused message {0}")]
    Nacked(uuid::Uuid),
}

impl From<diesel::result::Error> for RelayError {
    fn from(e: diesel::result::Error) -> Self {
        RelayError::Db(DbError::Query(e))
    }
}

/// Publishes outbox rows until `cancel` fires. `wake` lets writers in the same process
/// have their rows published at once instead of at the next poll.
pub async fn run(db: Db, cfg: AmqpConfig, wake: Arc<Notify>, cancel: CancellationToken) {
    tokio::spawn(measure_backlog(db.clone(), cancel.clone()));
    'reconnect: loop {
        cfg.broker.down("relay");
        let Some(conn) = connect_with_backoff(&cfg, &cancel).await else {
            return;
        };
        let channel = match open_confirm_channel(&conn).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "relay cannot open a confirm channel");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        cfg.broker.up("relay", &conn);
        loop {
            match drain(&db, &channel).await {
                Ok(_) => {}
                Err(RelayError::Db(e)) => {
                    tracing::warn!(error = %e, "relay cannot read the outbox");
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "relay lost RabbitMQ, reconnecting");
                    let _ = conn.close(200, "reconnect").await;
                    // A message the broker keeps refusing must not become a reconnection storm.
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                    continue 'reconnect;
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => {
                    // Publish what was committed before stopping.
                    let _ = drain(&db, &channel).await;
                    let _ = conn.close(200, "shutdown").await;
                    return;
                }
                _ = wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }
}

/// Refreshes the outbox gauges until `cancel` fires.
async fn measure_backlog(db: Db, cancel: CancellationToken) {
    loop {
        match db.conn().await {
            Ok(mut conn) => match outbox::backlog_and_oldest(&mut conn).await {
                Ok((rows, oldest)) => {
                    let age = oldest.map_or(0.0, |t| {
                        (chrono::Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0
                    });
                    enconvert_metrics::outbox(u64::try_from(rows).unwrap_or(0), age);
                }
                Err(e) => tracing::debug!(error = %e, "cannot count the outbox"),
            },
            Err(e) => tracing::debug!(error = %e, "cannot count the outbox"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(BACKLOG_EVERY) => {}
        }
    }
}

async fn open_confirm_channel(conn: &lapin::Connection) -> Result<Channel, lapin::Error> {
    let channel = conn.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok(channel)
}

/// Publishes everything in the outbox; returns how many messages went out.
async fn drain(db: &Db, channel: &Channel) -> Result<usize, RelayError> {
    let mut total = 0;
    loop {
        let mut conn = db.conn().await?;
        let sent = conn
            .transaction::<_, RelayError, _>(|conn| {
                async move {
                    let rows = outbox::lock_oldest(conn, BATCH).await?;
                    if rows.is_empty() {
                        return Ok(0);
                    }
                    publish_all(channel, &rows).await?;
                    // A crash here publishes the rows again after a restart.
                    enconvert_config::failpoint("relay.after_publish");
                    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
                    outbox::delete(conn, &ids).await?;
                    Ok(rows.len())
                }
                .scope_boxed()
            })
            .await?;
        total += sent;
        if sent < BATCH as usize {
            return Ok(total);
        }
    }
}

async fn publish_all(channel: &Channel, rows: &[OutboxRow]) -> Result<(), RelayError> {
    let mut confirms = Vec::with_capacity(rows.len());
    for row in rows {
        let body = serde_json::to_vec(&row.payload).unwrap_or_default();
        let props = BasicProperties::default()
            .with_message_id(row.message_id.to_string().into())
            .with_correlation_id(row.correlation_id.clone().into())
            .with_type(row.message_type.clone().into())
            .with_app_id("enconvert".into())
            .with_content_type("application/json".into())
            .with_timestamp(u64::try_from(row.created_at.timestamp()).unwrap_or(0))
            .with_delivery_mode(2);
        let confirm = channel
            .basic_publish(
                &row.exchange,
                &row.routing_key,
                BasicPublishOptions {
                    mandatory: true,
                    immediate: false,
                },
                &body,
                props,
            )
            .await?;
        confirms.push((row.message_id, confirm));
    }
    for (id, confirm) in confirms {
        match confirm.await? {
            Confirmation::Ack(None) | Confirmation::NotRequested => {}
            // Returned as unroutable, or nacked (queue full, alarm): keep the row, retry.
            Confirmation::Ack(Some(_)) | Confirmation::Nack(_) => {
                return Err(RelayError::Nacked(id));
            }
        }
    }
    for row in rows {
        enconvert_metrics::published(&row.exchange, &row.routing_key, 1);
    }
    Ok(())
}

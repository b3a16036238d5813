//! A consumer that survives connection loss: manual acks, prefetch = concurrency, a fresh
//! connection (with topology) after any failure, and a drain on shutdown.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::{AmqpConfig, connect_with_backoff};

/// What to do with a message once handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Done (or a duplicate): remove it.
    Ack,
    /// Could not be handled now: deliver it again (counts towards the delivery limit).
    Requeue,
    /// Will never work: dead-letter it.
    DeadLetter,
}

impl Disposition {
    /// The metric label: `ack`, `requeue`, `dead_letter`.
    pub fn label(self) -> &'static str {
        match self {
            Disposition::Ack => "ack",
            Disposition::Requeue => "requeue",
            Disposition::DeadLetter => "dead_letter",
        }
    }
}

/// A received message.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub data: Vec<u8>,
    pub message_type: Option<String>,
    pub redelivered: bool,
    /// Earlier deliveries of this message (quorum queues' `x-delivery-count`).
    pub delivery_count: u32,
}

impl Incoming {
    fn from_delivery(d: &Delivery) -> Self {
        let delivery_count = d
            .properties
            .headers()
            .as_ref()
            .and_then(|h| h.inner().get("x-delivery-count").cloned())
            .and_then(|v| match v {
                AMQPValue::LongLongInt(n) => u32::try_from(n).ok(),
                AMQPValue::LongInt(n) => u32::try_from(n).ok(),
                AMQPValue::ShortInt(n) => u32::try_from(n).ok(),
                AMQPValue::LongUInt(n) => Some(n),
                _ => None,
            })
            .unwrap_or(0);
        Incoming {
            data: d.data.clone(),
            message_type: d.properties.kind().as_ref().map(|k| k.to_string()),
            redelivered: d.redelivered,
            delivery_count,
        }
    }
}

pub type BoxFuture = Pin<Box<dyn Future<Output = Disposition> + Send>>;
pub type Handler = Arc<dyn Fn(Incoming) -> BoxFuture + Send + Sync>;

/// One queue to consume.
#[derive(Clone)]
pub struct Subscription {
    pub queue: String,
    pub handler: Handler,
}

/// Consumes `subscriptions` on one channel with `prefetch` unacked messages at most, until
/// `cancel` fires; then stops taking messages and waits up to `grace` for those in flight.
/// Messages still unfinished after that are left unacked, so RabbitMQ redelivers them.
pub async fn run(
    cfg: AmqpConfig,
    subscriptions: Vec<Subscription>,
    prefetch: u16,
    grace: Duration,
    cancel: CancellationToken,
) {
    let mut in_flight: JoinSet<()> = JoinSet::new();
    'reconnect: loop {
        cfg.broker.down("consumer");
        let Some(conn) = connect_with_backoff(&cfg, &cancel).await else {
            break;
        };
        let channel = match conn.create_channel().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot open a channel, reconnecting");
                continue;
            }
        };
        if let Err(e) = channel
            .basic_qos(prefetch, BasicQosOptions { global: false })
            .await
        {
            tracing::warn!(error = %e, "cannot set prefetch, reconnecting");
            continue;
        }
        let mut streams = Vec::new();
        for (i, sub) in subscriptions.iter().enumerate() {
            let tag = format!("{}#{}", cfg.connection_name, sub.queue);
            match channel
                .basic_consume(
                    &sub.queue,
                    &tag,
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
            {
                Ok(consumer) => streams.push(consumer.map(move |d| (i, d)).boxed()),
                Err(e) => {
                    tracing::warn!(error = %e, queue = %sub.queue, "cannot consume, reconnecting");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue 'reconnect;
                }
            }
        }
        tracing::info!(queues = ?subscriptions.iter().map(|s| &s.queue).collect::<Vec<_>>(), prefetch, "consuming");
        cfg.broker.up("consumer", &conn);
        let mut merged = futures_util::stream::select_all(streams);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => {
                    for sub in &subscriptions {
                        let tag = format!("{}#{}", cfg.connection_name, sub.queue);
                        let _ = channel.basic_cancel(&tag, BasicCancelOptions::default()).await;
                    }
                    drain(&mut in_flight, grace).await;
                    let _ = channel.close(200, "shutdown").await;
                    let _ = conn.close(200, "shutdown").await;
                    return;
                }
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                next = merged.next() => match next {
                    Some((i, Ok(delivery))) => {
                        let handler = subscriptions[i].handler.clone();
                        let queue = subscriptions[i].queue.clone();
                        in_flight.spawn(async move {
                            let disposition = handler(Incoming::from_delivery(&delivery)).await;
                            enconvert_metrics::consumed(&queue, disposition.label());
                            let result = match disposition {
                                Disposition::Ack => delivery.ack(BasicAckOptions::default()).await,
                                Disposition::Requeue => delivery.nack(BasicNackOptions { requeue: true, multiple: false }).await,
                                Disposition::DeadLetter => delivery.nack(BasicNackOptions { requeue: false, multiple: false }).await,
                            };
                            tracing::debug!(%queue, disposition = disposition.label(), ok = result.is_ok(), "settled a message");
                            if let Err(e) = result {
                                // The channel is gone; RabbitMQ redelivers, and handlers are idempotent.
                                tracing::warn!(error = %e, "could not settle a message");
                            }
                        });
                    }
                    Some((_, Err(e))) => {
                        cfg.broker.down("consumer");
                        tracing::warn!(error = %e, "consumer failed, reconnecting");
                        continue 'reconnect;
                    }
                    None => {
                        cfg.broker.down("consumer");
                        tracing::warn!("consumer stream ended, reconnecting");
                        continue 'reconnect;
                    }
                }
            }
        }
    }
    drain(&mut in_flight, grace).await;
}

async fn drain(in_flight: &mut JoinSet<()>, grace: Duration) {
    let deadline = tokio::time::sleep(grace);
    tokio::pin!(deadline);
    while !in_flight.is_empty() {
        tokio::select! {
            _ = &mut deadline => {
                tracing::warn!(left = in_flight.len(), "grace period over; unfinished messages will be redelivered");
                in_flight.abort_all();
                return;
            }
            _ = in_flight.join_next() => {}
        }
    }
}

//! Exchanges and queues. The names are what operators read in the management UI.
//!
//! ```text
//! enconvert.work (direct) --render.sync-->   render.sync    interactive requests, served first
//!                         --render.batch-->  render.batch   async and batch items
//!                         --archive.build--> archive.build  ZIP archives of finished batches
//!                         --discover-->      discover       website page discovery
//! enconvert.events (topic) --job.completed, batch.completed--> notifier.events
//! enconvert.dead (direct): every work queue dead-letters to <name>.dead after the delivery limit
//! ```

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, ExchangeKind};

pub const WORK_EXCHANGE: &str = "enconvert.work";
pub const EVENTS_EXCHANGE: &str = "enconvert.events";
pub const DEAD_EXCHANGE: &str = "enconvert.dead";

pub const RENDER_SYNC: &str = "render.sync";
pub const RENDER_BATCH: &str = "render.batch";
pub const ARCHIVE: &str = "archive.build";
pub const DISCOVER: &str = "discover";
pub const NOTIFIER_EVENTS: &str = "notifier.events";

pub const JOB_COMPLETED: &str = "job.completed";
pub const BATCH_COMPLETED: &str = "batch.completed";

/// Work queues: consumed by workers, dead-lettered after the delivery limit.
pub const WORK_QUEUES: &[&str] = &[RENDER_SYNC, RENDER_BATCH, ARCHIVE, DISCOVER];

/// The dead-letter queue of a queue.
pub fn dead_letter_queue(queue: &str) -> String {
    format!("{queue}.dead")
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

fn quorum_args(dead_letter: Option<&str>, delivery_limit: u32) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        ShortString::from("x-queue-type"),
        AMQPValue::LongString("quorum".into()),
    );
    if let Some(routing_key) = dead_letter {
        args.insert(
            ShortString::from("x-dead-letter-exchange"),
            AMQPValue::LongString(DEAD_EXCHANGE.into()),
        );
        args.insert(
            ShortString::from("x-dead-letter-routing-key"),
            AMQPValue::LongString(routing_key.into()),
        );
        // at-least-once dead-lettering: a message is never dropped between the two queues.
        args.insert(
            ShortString::from("x-dead-letter-strategy"),
            AMQPValue::LongString("at-least-once".into()),
        );
        args.insert(
            ShortString::from("x-overflow"),
            AMQPValue::LongString("reject-publish".into()),
        );
        args.insert(
            ShortString::from("x-delivery-limit"),
            AMQPValue::LongInt(i32::try_from(delivery_limit).unwrap_or(i32::MAX)),
        );
    }
    args
}

/// Declares everything; idempotent, run on every (re)connection.
pub async fn declare(channel: &Channel, delivery_limit: u32) -> Result<(), lapin::Error> {
    for (name, kind) in [
        (WORK_EXCHANGE, ExchangeKind::Direct),
        (EVENTS_EXCHANGE, ExchangeKind::Topic),
        (DEAD_EXCHANGE, ExchangeKind::Direct),
    ] {
        channel
            .exchange_declare(
                name,
                kind,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
    }
    for queue in WORK_QUEUES {
        let dead = dead_letter_queue(queue);
        channel
            .queue_declare(&dead, durable(), quorum_args(None, delivery_limit))
            .await?;
        channel
            .queue_bind(
                &dead,
                DEAD_EXCHANGE,
                queue,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_declare(queue, durable(), quorum_args(Some(queue), delivery_limit))
            .await?;
        channel
            .queue_bind(
                queue,
                WORK_EXCHANGE,
                queue,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    let dead = dead_letter_queue(NOTIFIER_EVENTS);
    channel
        .queue_declare(&dead, durable(), quorum_args(None, delivery_limit))
        .await?;
    channel
        .queue_bind(
            &dead,
            DEAD_EXCHANGE,
            NOTIFIER_EVENTS,
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_declare(
            NOTIFIER_EVENTS,
            durable(),
            quorum_args(Some(NOTIFIER_EVENTS), delivery_limit),
        )
        .await?;
    for key in [JOB_COMPLETED, BATCH_COMPLETED] {
        channel
            .queue_bind(
                NOTIFIER_EVENTS,
                EVENTS_EXCHANGE,
                key,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}

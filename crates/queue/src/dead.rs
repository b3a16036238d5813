//! Dead letters: what is in the `.dead` queues, and putting messages back where they came
//! from. Used by `enconvert-admin dlq`.
//!
//! Peeking takes messages with `basic.get` and returns them with `basic.nack(requeue)`, so
//! they stay in the queue (at its head, in order).

use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection};
use serde_json::Value;

use crate::topology::{self, EVENTS_EXCHANGE, NOTIFIER_EVENTS, WORK_EXCHANGE, WORK_QUEUES};

/// Every queue that has a dead-letter queue.
pub fn source_queues() -> Vec<&'static str> {
    WORK_QUEUES
        .iter()
        .copied()
        .chain(std::iter::once(NOTIFIER_EVENTS))
        .collect()
}

/// `render.batch` or `render.batch.dead` → `render.batch`, if it is one of ours.
pub fn source_of(name: &str) -> Option<&'static str> {
    let base = name.strip_suffix(".dead").unwrap_or(name);
    source_queues().into_iter().find(|q| *q == base)
}

/// A dead-letter queue's depth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadQueue {
    /// The queue it belongs to (`render.batch`).
    pub source: &'static str,
    /// `render.batch.dead`.
    pub name: String,
    /// Ready messages; `None` when the queue is not declared yet.
    pub messages: Option<u32>,
}

/// What a dead letter says about itself. Only identifiers and RabbitMQ's death record: no
/// body is printed whole (none carries a secret today, but nothing here relies on that).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub message_id: Option<String>,
    pub message_type: Option<String>,
    pub batch_id: Option<String>,
    pub job_id: Option<String>,
    /// `rejected` (a consumer gave up on it), `delivery_limit`, `expired`, `maxlen`.
    pub reason: Option<String>,
    /// The queue it died in.
    pub died_in: Option<String>,
    /// The exchange and routing key it was first published with.
    pub exchange: Option<String>,
    pub routing_key: Option<String>,
    /// How many times it died there.
    pub deaths: i64,
    /// When it last died (seconds since the epoch).
    pub died_at: Option<u64>,
}

fn text(v: &AMQPValue) -> Option<String> {
    match v {
        AMQPValue::LongString(s) => Some(s.to_string()),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        _ => None,
    }
}

fn int(v: &AMQPValue) -> Option<i64> {
    match v {
        AMQPValue::LongLongInt(n) => Some(*n),
        AMQPValue::LongInt(n) => Some(i64::from(*n)),
        AMQPValue::LongUInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortInt(n) => Some(i64::from(*n)),
        AMQPValue::Timestamp(n) => i64::try_from(*n).ok(),
        _ => None,
    }
}

impl DeadLetter {
    /// Reads a delivery's properties, `x-death` header and the ids in its JSON body.
    pub fn read(d: &Delivery) -> Self {
        let p = &d.properties;
        let body: Value = serde_json::from_slice(&d.data).unwrap_or(Value::Null);
        let id = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
        let mut out = DeadLetter {
            message_id: p.message_id().as_ref().map(|s| s.to_string()),
            message_type: p.kind().as_ref().map(|s| s.to_string()),
            batch_id: id("batch_id").or_else(|| p.correlation_id().as_ref().map(|s| s.to_string())),
            job_id: id("job_id"),
            reason: None,
            died_in: None,
            exchange: None,
            routing_key: None,
            deaths: 0,
            died_at: None,
        };
        // x-death: newest first; the first entry is the death that brought it here.
        let first = p
            .headers()
            .as_ref()
            .and_then(|h| h.inner().get("x-death").cloned())
            .and_then(|v| match v {
                AMQPValue::FieldArray(a) => a.as_slice().first().cloned(),
                _ => None,
            });
        if let Some(AMQPValue::FieldTable(t)) = first {
            let t = t.inner();
            out.reason = t.get("reason").and_then(text);
            out.died_in = t.get("queue").and_then(text);
            out.exchange = t.get("exchange").and_then(text);
            out.routing_key = t.get("routing-keys").and_then(|v| match v {
                AMQPValue::FieldArray(a) => a.as_slice().first().and_then(text),
                _ => None,
            });
            out.deaths = t.get("count").and_then(int).unwrap_or(0);
            out.died_at = t
                .get("time")
                .and_then(int)
                .and_then(|n| u64::try_from(n).ok());
        }
        out
    }

    /// Where a replay publishes it: the exchange and routing key of its death record, else
    /// the route our topology gives its source queue (work: the queue's name; events: the
    /// message type).
    pub fn route(&self, source: &str) -> (String, String) {
        if let (Some(exchange), Some(key)) = (&self.exchange, &self.routing_key)
            && !exchange.is_empty()
        {
            return (exchange.clone(), key.clone());
        }
        if source == NOTIFIER_EVENTS {
            let key = self
                .message_type
                .clone()
                .unwrap_or_else(|| topology::JOB_COMPLETED.to_string());
            (EVENTS_EXCHANGE.to_string(), key)
        } else {
            (WORK_EXCHANGE.to_string(), source.to_string())
        }
    }
}

/// The depth of each dead-letter queue (`only`: just that one).
pub async fn depths(
    conn: &Connection,
    only: Option<&'static str>,
) -> Result<Vec<DeadQueue>, lapin::Error> {
    let mut out = Vec::new();
    for source in source_queues() {
        if only.is_some_and(|o| o != source) {
            continue;
        }
        let name = topology::dead_letter_queue(source);
        // A passive declare of a missing queue closes the channel: one channel per queue.
        let channel = conn.create_channel().await?;
        let messages = match channel
            .queue_declare(
                &name,
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
        {
            Ok(q) => Some(q.message_count()),
            Err(_) => None,
        };
        let _ = channel.close(200, "inspected").await;
        out.push(DeadQueue {
            source,
            name,
            messages,
        });
    }
    Ok(out)
}

/// Reads up to `limit` messages from the head of `source`'s dead-letter queue and returns
/// them to it.
pub async fn peek(
    conn: &Connection,
    source: &'static str,
    limit: usize,
) -> Result<Vec<DeadLetter>, lapin::Error> {
    let name = topology::dead_letter_queue(source);
    let channel = conn.create_channel().await?;
    let mut held = Vec::new();
    let mut out = Vec::new();
    while out.len() < limit {
        match channel
            .basic_get(&name, BasicGetOptions { no_ack: false })
            .await?
        {
            Some(m) => {
                out.push(DeadLetter::read(&m.delivery));
                held.push(m.delivery);
            }
            None => break,
        }
    }
    for d in held {
        d.nack(BasicNackOptions {
            requeue: true,
            multiple: false,
        })
        .await?;
    }
    let _ = channel.close(200, "peeked").await;
    Ok(out)
}

/// The outcome of a replay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replayed {
    pub messages: Vec<DeadLetter>,
    /// Why it stopped early: a publish that RabbitMQ did not confirm (the message stays in
    /// the dead-letter queue).
    pub stopped: Option<String>,
}

/// Headers RabbitMQ sets on a dead letter or a quorum delivery; a replay starts afresh.
const DEATH_HEADERS: &[&str] = &[
    "x-death",
    "x-first-death-reason",
    "x-first-death-queue",
    "x-first-death-exchange",
    "x-last-death-reason",
    "x-last-death-queue",
    "x-last-death-exchange",
    "x-delivery-count",
];

fn republished_properties(p: &BasicProperties) -> BasicProperties {
    let mut props = p.clone();
    if let Some(h) = p.headers() {
        let mut kept = FieldTable::default();
        for (k, v) in h.inner() {
            if !DEATH_HEADERS.contains(&k.as_str()) {
                kept.insert(ShortString::from(k.to_string()), v.clone());
            }
        }
        props = props.with_headers(kept);
    }
    props
}

/// Moves up to `limit` messages of `source`'s dead-letter queue back to their original route,
/// one at a time: each is acked from the dead-letter queue only once RabbitMQ has confirmed
/// its publish (routed, persisted); otherwise it is returned there and the replay stops.
pub async fn replay(
    conn: &Connection,
    source: &'static str,
    limit: usize,
) -> Result<Replayed, lapin::Error> {
    let name = topology::dead_letter_queue(source);
    let get = conn.create_channel().await?;
    let publish: Channel = conn.create_channel().await?;
    publish
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let mut out = Replayed::default();
    while out.messages.len() < limit {
        let Some(m) = get
            .basic_get(&name, BasicGetOptions { no_ack: false })
            .await?
        else {
            break;
        };
        let d = m.delivery;
        let letter = DeadLetter::read(&d);
        let (exchange, key) = letter.route(source);
        let confirmed = async {
            let confirm = publish
                .basic_publish(
                    &exchange,
                    &key,
                    BasicPublishOptions {
                        mandatory: true,
                        immediate: false,
                    },
                    &d.data,
                    republished_properties(&d.properties),
                )
                .await?;
            confirm.await
        }
        .await;
        match confirmed {
            Ok(Confirmation::Ack(None)) => {
                d.ack(BasicAckOptions::default()).await?;
                out.messages.push(letter);
            }
            other => {
                d.nack(BasicNackOptions {
                    requeue: true,
                    multiple: false,
                })
                .await?;
                out.stopped = Some(match other {
                    Ok(Confirmation::Ack(Some(_))) => {
                        format!("`{exchange}` has no queue bound for `{key}`")
                    }
                    Ok(Confirmation::Nack(_)) => {
                        format!(
                            "RabbitMQ refused the publish to `{exchange}` / `{key}` (queue full or alarm)"
                        )
                    }
                    Ok(_) => format!("publish to `{exchange}` / `{key}` was not confirmed"),
                    Err(e) => format!("publish to `{exchange}` / `{key}` failed: {e}"),
                });
                break;
            }
        }
    }
    let _ = get.close(200, "replayed").await;
    let _ = publish.close(200, "replayed").await;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_to_their_source_queue() {
        assert_eq!(source_of("render.batch"), Some("render.batch"));
        assert_eq!(source_of("render.batch.dead"), Some("render.batch"));
        assert_eq!(source_of("notifier.events.dead"), Some("notifier.events"));
        assert_eq!(source_of("render.batch.dead.dead"), None);
        assert_eq!(source_of("elsewhere"), None);
    }

    #[test]
    fn replay_routes_fall_back_to_the_topology() {
        let letter = DeadLetter {
            message_id: None,
            message_type: Some("batch.completed".into()),
            batch_id: None,
            job_id: None,
            reason: None,
            died_in: None,
            exchange: None,
            routing_key: None,
            deaths: 0,
            died_at: None,
        };
        assert_eq!(
            letter.route("render.sync"),
            ("enconvert.work".to_string(), "render.sync".to_string())
        );
        assert_eq!(
            letter.route("notifier.events"),
            (
                "enconvert.events".to_string(),
                "batch.completed".to_string()
            )
        );
        let recorded = DeadLetter {
            exchange: Some("enconvert.work".into()),
            routing_key: Some("render.batch".into()),
            ..letter
        };
        assert_eq!(
            recorded.route("render.sync"),
            ("enconvert.work".to_string(), "render.batch".to_string())
        );
    }
}

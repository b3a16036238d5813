#![doc = include_str!("../README.md")]

pub mod consumer;
pub mod dead;
pub mod health;
pub mod messages;
pub mod relay;
pub mod topology;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lapin::{Connection, ConnectionProperties, ConnectionStatus};
use tokio_util::sync::CancellationToken;

/// How a process reaches RabbitMQ.
#[derive(Clone)]
pub struct AmqpConfig {
    pub url: String,
    /// Shown in the management UI's connection list, e.g. `worker@host:1234`.
    pub connection_name: String,
    /// Deliveries before a work message is dead-lettered.
    pub delivery_limit: u32,
    /// The live state of the connections the process opens with this config (readiness).
    pub broker: BrokerState,
}

/// The connections a process holds to RabbitMQ, by role (`consumer`, `relay`), read live
/// by `/readyz`. A role that is reconnecting counts as down.
#[derive(Clone, Default)]
pub struct BrokerState(Arc<Mutex<BTreeMap<&'static str, Option<ConnectionStatus>>>>);

impl BrokerState {
    /// `role` is connected through `conn` from now on.
    pub fn up(&self, role: &'static str, conn: &Connection) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(role, Some(conn.status().clone()));
        }
    }

    /// `role` lost its connection (or has not got one yet).
    pub fn down(&self, role: &'static str) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(role, None);
        }
    }

    /// Every role has a connection RabbitMQ has not closed; false before the first.
    pub fn is_connected(&self) -> bool {
        self.0.lock().is_ok_and(|m| {
            !m.is_empty()
                && m.values()
                    .all(|s| s.as_ref().is_some_and(ConnectionStatus::connected))
        })
    }
}

impl std::fmt::Debug for AmqpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL carries a password.
        f.debug_struct("AmqpConfig")
            .field("connection_name", &self.connection_name)
            .field("delivery_limit", &self.delivery_limit)
            .finish_non_exhaustive()
    }
}

/// `process@host:pid`, the name of connections and consumer tags.
pub fn process_label(process: &str) -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string());
    format!("{process}@{host}:{}", std::process::id())
}

/// Opens a connection without declaring anything (the admin CLI's inspections).
pub async fn open(cfg: &AmqpConfig) -> Result<Connection, lapin::Error> {
    let props = ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio)
        .with_connection_name(cfg.connection_name.clone().into());
    Connection::connect(&cfg.url, props).await
}

/// Opens a connection and declares the topology.
pub async fn connect(cfg: &AmqpConfig) -> Result<Connection, lapin::Error> {
    let conn = open(cfg).await?;
    let channel = conn.create_channel().await?;
    topology::declare(&channel, cfg.delivery_limit).await?;
    channel.close(200, "topology declared").await?;
    Ok(conn)
}

/// Connects, retrying with exponential backoff and jitter until it works or `cancel` fires.
pub async fn connect_with_backoff(
    cfg: &AmqpConfig,
    cancel: &CancellationToken,
) -> Option<Connection> {
    let mut delay = Duration::from_millis(100);
    loop {
        match connect(cfg).await {
            Ok(conn) => return Some(conn),
            Err(e) => {
                let jitter = Duration::from_millis(
                    rand::random::<u64>() % (delay.as_millis() as u64 / 2 + 1),
                );
                tracing::warn!(error = %e, retry_in_ms = (delay + jitter).as_millis() as u64, "RabbitMQ unreachable");
                tokio::select! {
                    _ = cancel.cancelled() => return None,
                    _ = tokio::time::sleep(delay + jitter) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}

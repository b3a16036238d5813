//! Readiness of a process: PostgreSQL answers a query now, and the process's own RabbitMQ
//! connections are open (their live state, as the client library tracks it).

use std::sync::Arc;
use std::time::Duration;

use enconvert_db::Db;
use enconvert_metrics::{Check, Readiness};

use crate::BrokerState;

/// A database that does not answer within this is down.
const DB_TIMEOUT: Duration = Duration::from_secs(3);

/// The readiness check of a process. `broker_required`: whether the process is unready while
/// RabbitMQ is (the api is not: it keeps accepting work into the outbox).
pub fn check(db: Db, broker: BrokerState, broker_required: bool) -> Check {
    Arc::new(move || {
        let (db, broker) = (db.clone(), broker.clone());
        Box::pin(async move {
            let database = matches!(
                tokio::time::timeout(DB_TIMEOUT, db.ping()).await,
                Ok(Ok(()))
            );
            let rabbitmq = broker.is_connected();
            let r = Readiness::default().require("database", database);
            if broker_required {
                r.require("rabbitmq", rabbitmq)
            } else {
                r.report("rabbitmq", rabbitmq)
            }
        })
    })
}

//! Liveness and readiness on the public port (the operations listener answers the same).

use actix_web::{HttpResponse, web};

use crate::state::AppState;

/// The process is up.
pub async fn live() -> HttpResponse {
    enconvert_metrics::server::live().await
}

/// The process can do its work: PostgreSQL answers. RabbitMQ is reported, not required:
/// while it is down the api still accepts work into the outbox.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let readiness = (state.ready)().await;
    if !readiness.is_ready() {
        tracing::warn!(?readiness, "not ready");
    }
    readiness.response()
}

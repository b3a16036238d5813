//! The operations listener of a process: `/healthz` (alive), `/readyz` (can do its work)
//! and `/metrics` (Prometheus text). It listens on its own address, apart from the public
//! API, so metrics are never exposed to clients.

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::{App, HttpResponse, HttpServer, dev::ServerHandle, web};
use anyhow::Context;
use futures_util::future::BoxFuture;
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// One dependency's state in a readiness answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: &'static str,
    pub ok: bool,
    /// Whether the process is unready without it (otherwise it is only reported).
    pub required: bool,
}

/// What `/readyz` answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Readiness {
    pub parts: Vec<Part>,
    /// The process is shutting down: unready whatever its dependencies say.
    pub stopping: bool,
}

impl Readiness {
    /// Adds a dependency that must be up.
    pub fn require(mut self, name: &'static str, ok: bool) -> Self {
        self.parts.push(Part {
            name,
            ok,
            required: true,
        });
        self
    }

    /// Adds a dependency that is reported but does not make the process unready.
    pub fn report(mut self, name: &'static str, ok: bool) -> Self {
        self.parts.push(Part {
            name,
            ok,
            required: false,
        });
        self
    }

    pub fn is_ready(&self) -> bool {
        !self.stopping && self.parts.iter().all(|p| p.ok || !p.required)
    }

    /// `200 {"status": "ready", "database": "ok", ...}` or `503` with the parts that are down.
    pub fn response(&self) -> HttpResponse {
        let mut body = Map::new();
        let status = if self.stopping {
            "stopping"
        } else if self.is_ready() {
            "ready"
        } else {
            "unavailable"
        };
        body.insert("status".into(), Value::from(status));
        for p in &self.parts {
            body.insert(p.name.into(), Value::from(if p.ok { "ok" } else { "down" }));
        }
        if self.is_ready() {
            HttpResponse::Ok().json(body)
        } else {
            HttpResponse::ServiceUnavailable()
                .insert_header(("Retry-After", "5"))
                .json(body)
        }
    }
}

/// Checks a process's dependencies (each check bounded in time by its author).
pub type Check = Arc<dyn Fn() -> BoxFuture<'static, Readiness> + Send + Sync>;

/// A running operations listener.
pub struct Served {
    pub addr: SocketAddr,
    handle: ServerHandle,
    done: JoinHandle<()>,
}

impl Served {
    /// Stops the listener (call it last, once the process's work has drained, so probes
    /// keep answering during the drain).
    pub async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.done.await;
    }
}

/// Liveness: the process runs and answers.
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The Prometheus text of every metric of the process.
pub async fn metrics_text() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::render())
}

/// Starts the listener on `addr` (port 0: any free port). `/readyz` runs `check`, and
/// answers `503 stopping` once `draining` fires.
pub fn serve(
    addr: SocketAddr,
    check: Check,
    draining: CancellationToken,
) -> anyhow::Result<Served> {
    crate::init()?;
    let listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("failed to listen on {addr} (health and metrics)"))?;
    let addr = listener.local_addr()?;
    let server = HttpServer::new(move || {
        let check = check.clone();
        let draining = draining.clone();
        App::new()
            .route("/healthz", web::get().to(live))
            .route("/metrics", web::get().to(metrics_text))
            .route(
                "/readyz",
                web::get().to(move || {
                    let check = check.clone();
                    let draining = draining.clone();
                    async move {
                        let mut readiness = check().await;
                        readiness.stopping = draining.is_cancelled();
                        readiness.response()
                    }
                }),
            )
            .default_service(web::to(|| async {
                HttpResponse::NotFound().json(json!({"detail": "No such endpoint."}))
            }))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(5)
    .listen(listener)?
    .run();
    let handle = server.handle();
    let done = tokio::spawn(async move {
        if let Err(e) = server.await {
            tracing::warn!(error = %e, "the health and metrics listener failed");
        }
    });
    tracing::info!(%addr, "health and metrics listening");
    Ok(Served { addr, handle, done })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_fails_on_required_parts_only() {
        let r = Readiness::default()
            .require("database", true)
            .report("rabbitmq", false);
        assert!(r.is_ready());
        let r = r.require("broker", false);
        assert!(!r.is_ready());
        let r = Readiness {
            stopping: true,
            ..Readiness::default().require("database", true)
        };
        assert!(!r.is_ready());
    }
}

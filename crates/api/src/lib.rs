#![doc = include_str!("../README.md")]

pub mod auth;
pub mod body;
pub mod dashboard;
pub mod error;
pub mod rate;
pub mod responses;
pub mod routes;
pub mod state;

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use enconvert_config::Settings;
use enconvert_db::Db;
use enconvert_queue::AmqpConfig;
use enconvert_storage::{LinkSigner, Storage};
use secrecy::ExposeSecret;
use serde_json::json;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::routes::{convert, deliveries, docs, files, health, project, status, website};
use crate::state::AppState;

/// A started api: where it listens, and the task that ends when it has stopped.
pub struct Running {
    pub addr: SocketAddr,
    /// The health and metrics listener, when configured.
    pub ops_addr: Option<SocketAddr>,
    pub done: JoinHandle<anyhow::Result<()>>,
}

/// Routes of the public API.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::live))
        .route("/readyz", web::get().to(health::ready))
        .route("/openapi.json", web::get().to(docs::openapi_json))
        .route("/docs", web::get().to(docs::page))
        .route(
            "/v1/convert/url-to-pdf",
            web::post().to(convert::url_to_pdf),
        )
        .route(
            "/v1/convert/url-to-screenshot",
            web::post().to(convert::url_to_screenshot),
        )
        .route(
            "/v1/convert/website-to-pdf",
            web::post().to(website::website_to_pdf),
        )
        .route(
            "/v1/convert/website-to-screenshot",
            web::post().to(website::website_to_screenshot),
        )
        .route("/v1/convert/batch/{batch_id}", web::get().to(status::batch))
        .route(
            "/v1/convert/batch/{batch_id}/deliveries",
            web::get().to(deliveries::list),
        )
        .route(
            "/v1/convert/batch/{batch_id}/deliveries/{notification_id}/redeliver",
            web::post().to(deliveries::redeliver),
        )
        .route("/v1/project/settings", web::get().to(project::settings))
        .route(
            "/v1/project/settings",
            web::put().to(project::update_settings),
        )
        .route("/v1/convert/status/{job_id}", web::get().to(status::job))
        .route("/v1/files/{key:.*}", web::get().to(files::download))
        .configure(dashboard::configure);
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(json!({"detail": "No such endpoint.", "code": "not_found"}))
}

/// Applies migrations, starts the outbox relay and the HTTP server; stops both when
/// `cancel` fires.
pub async fn start(settings: &Settings, cancel: CancellationToken) -> anyhow::Result<Running> {
    enconvert_db::migrate(
        settings.database_url.expose_secret(),
        std::time::Duration::from_secs(60),
    )
    .await?;
    let db = Db::new(settings.database_url.expose_secret(), settings.db_pool_size)?;
    let storage = Storage::connect(
        settings.storage_url.as_deref(),
        &settings.storage_dir,
        &settings.storage_options,
    )
    .context("failed to open the file store")?;
    if std::env::var("ENCONVERT_SIGNING_SECRET").map_or(true, |v| v.trim().is_empty()) {
        tracing::warn!(
            "ENCONVERT_SIGNING_SECRET is not set: download links only work against this api process"
        );
    }
    let signer = LinkSigner::new(
        settings.api.signing_secret.expose_secret().as_bytes(),
        settings.api.link_ttl,
    );
    let relay_wake = Arc::new(Notify::new());
    let rates = Arc::new(rate::RateCounter::default());
    let broker = enconvert_queue::BrokerState::default();
    let ready = enconvert_queue::health::check(db.clone(), broker.clone(), false);
    let state = AppState {
        db: db.clone(),
        storage,
        signer,
        relay_wake: relay_wake.clone(),
        public_url: String::new(),
        env: settings.env.clone(),
        allow_private: settings.allow_private.clone(),
        max_body_bytes: settings.api.max_body_bytes,
        sync_timeout: settings.api.sync_timeout,
        discovery_wait: settings.api.discovery_wait,
        session_ttl: settings.api.session_ttl,
        secure_cookies: settings.api.secure_cookies,
        ready: ready.clone(),
        callers: Arc::default(),
        rates: rates.clone(),
        finished: enconvert_db::finished::Listener::start(
            settings.database_url.expose_secret().to_string(),
            cancel.clone(),
        ),
    };

    let amqp = AmqpConfig {
        url: settings.amqp_url.expose_secret().to_string(),
        connection_name: enconvert_queue::process_label("api"),
        delivery_limit: settings.delivery_limit,
        broker,
    };
    let relay = tokio::spawn(enconvert_queue::relay::run(
        db.clone(),
        amqp,
        relay_wake,
        cancel.clone(),
    ));
    let rate_flush = tokio::spawn(rate::flush_until(rates, db.clone(), cancel.clone()));
    tokio::spawn(prune_rate_windows(db, cancel.clone()));

    enconvert_metrics::init()?;
    let ops = match settings.api.ops_addr {
        Some(addr) => Some(enconvert_metrics::server::serve(
            addr,
            ready,
            cancel.clone(),
        )?),
        None => None,
    };
    let listener = std::net::TcpListener::bind(settings.api.addr)
        .with_context(|| format!("failed to listen on {}", settings.api.addr))?;
    let addr = listener.local_addr()?;
    let mut state = state;
    state.public_url = settings
        .api
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PathConfig::default().error_handler(|e, _| {
                ApiError::Invalid {
                    detail: format!("Invalid path: {e}"),
                }
                .into()
            }))
            .app_data(web::QueryConfig::default().error_handler(|e, _| {
                ApiError::Invalid {
                    detail: format!("Invalid query: {e}"),
                }
                .into()
            }))
            .wrap(tracing_actix())
            .wrap(actix_web::middleware::from_fn(
                enconvert_metrics::http::track,
            ))
            .configure(configure)
            .default_service(web::to(not_found))
    })
    .disable_signals()
    .shutdown_timeout(30)
    .listen(listener)?;
    let server = server.run();
    let handle = server.handle();
    tracing::info!(%addr, "api listening");
    let ops_addr = ops.as_ref().map(|o| o.addr);
    let done = tokio::spawn(async move {
        let stopper = tokio::spawn(async move {
            cancel.cancelled().await;
            handle.stop(true).await;
        });
        let result = server.await.context("the HTTP server failed");
        stopper.abort();
        let _ = relay.await;
        let _ = rate_flush.await;
        if let Some(ops) = ops {
            ops.stop().await;
        }
        result
    });
    Ok(Running {
        addr,
        ops_addr,
        done,
    })
}

/// Old rate-limit windows and expired dashboard sessions are useless; drop them every minute.
async fn prune_rate_windows(db: Db, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
        }
        if let Ok(mut conn) = db.conn().await {
            if let Err(e) = enconvert_db::limits::prune(&mut conn).await {
                tracing::warn!(error = %e, "could not prune rate-limit windows");
            }
            if let Err(e) = enconvert_db::sessions::prune(&mut conn).await {
                tracing::warn!(error = %e, "could not prune expired dashboard sessions");
            }
        }
    }
}

/// Request logging without query strings (download links carry signatures) or headers
/// (API keys).
fn tracing_actix() -> actix_web::middleware::Logger {
    actix_web::middleware::Logger::new("%{r}xi %s %Dms")
        .custom_request_replace("r", |req| format!("{} {}", req.method(), req.path()))
}

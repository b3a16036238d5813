//! `POST /v1/convert/website-to-pdf` and `/v1/convert/website-to-screenshot`.
//!
//! The api never fetches the user's site: it writes the batch (no jobs yet) and a `discover`
//! message in one transaction, then waits a bounded time for the worker's discovery so the
//! `202` can carry the page counts. Past the wait it answers without them.

use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, web};
use enconvert_db::batches::{self, CreateError};
use enconvert_db::models::Batch;
use enconvert_db::projects::Caller;
use enconvert_domain::Plan;
use enconvert_domain::discovery::{DiscoveryMethod, DiscoveryRequest};
use enconvert_domain::events::DiscoverJob;
use enconvert_domain::request::{ConvertRequest, Endpoint};
use enconvert_queue::messages;
use uuid::Uuid;

use crate::body::submit;
use crate::error::ApiError;
use crate::responses::WebsiteAccepted;
use crate::routes::convert::batch_row;
use crate::state::AppState;

/// Discover a website's pages and convert each to a PDF, delivered as one ZIP.
///
/// Always async. Discovery follows `crawl_mode` (`auto`: the most your plan allows; `sitemap`;
/// `full`: the sitemap plus same-site links), honours robots.txt, stays on the start URL's
/// site, stops at a depth of 10 and at your plan's `batch_limit`. The `202` carries
/// `url_count` and `total_discovered` when discovery finished within the api's wait; otherwise
/// they are `null`, `discovery` is `in_progress`, and batch status shows the pages once found.
#[utoipa::path(
    post,
    path = "/v1/convert/website-to-pdf",
    request_body = enconvert_domain::request::RawConvertRequest,
    responses(
        (status = 202, description = "Accepted; one ZIP of one PDF per page", body = WebsiteAccepted),
        (status = 400, description = "Invalid input (including an invalid pattern)", body = crate::responses::ErrorBody),
        (status = 401, description = "Missing, unknown or revoked key", body = crate::responses::ErrorBody),
        (status = 403, description = "Public key, or a plan without discovery or without full crawls", body = crate::responses::ErrorBody),
        (status = 413, description = "Body too large", body = crate::responses::ErrorBody),
        (status = 429, description = "Rate limit exceeded", body = crate::responses::ErrorBody),
        (status = 503, description = "A dependency is down", body = crate::responses::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn website_to_pdf(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    submit(
        &state,
        &req,
        payload,
        Endpoint::WebsiteToPdf,
        |caller, request, plan| accept(&state, caller, request, plan),
    )
    .await
}

/// Discover a website's pages and screenshot each (PNG by default), delivered as one ZIP.
#[utoipa::path(
    post,
    path = "/v1/convert/website-to-screenshot",
    request_body = enconvert_domain::request::RawConvertRequest,
    responses(
        (status = 202, description = "Accepted; one ZIP of one image per page", body = WebsiteAccepted),
        (status = 400, description = "Invalid input (including an invalid pattern)", body = crate::responses::ErrorBody),
        (status = 401, description = "Missing, unknown or revoked key", body = crate::responses::ErrorBody),
        (status = 403, description = "Public key, or a plan without discovery or without full crawls", body = crate::responses::ErrorBody),
        (status = 429, description = "Rate limit exceeded", body = crate::responses::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn website_to_screenshot(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    submit(
        &state,
        &req,
        payload,
        Endpoint::WebsiteToScreenshot,
        |caller, request, plan| accept(&state, caller, request, plan),
    )
    .await
}

async fn accept(
    state: &AppState,
    caller: Caller,
    request: ConvertRequest,
    plan: Plan,
) -> Result<HttpResponse, ApiError> {
    let (Some(crawl), Some(start)) = (&request.crawl, request.urls.first()) else {
        return Err(ApiError::internal(anyhow::anyhow!(
            "a validated website request without crawl settings or start URL"
        )));
    };
    let method = DiscoveryMethod::for_request(crawl.mode, &plan);
    let discovery = DiscoveryRequest {
        start_url: start.to_string(),
        method,
        include_patterns: crawl.include_patterns.clone(),
        exclude_patterns: crawl.exclude_patterns.clone(),
        page_limit: plan.batch_limit,
    };

    let mut batch = batch_row(caller.project.id, &request);
    batch.total = 0;
    batch.discovery_status = Some("pending".to_string());
    batch.discovery_method = Some(method.as_str().to_string());
    batch.discovery_request = Some(
        serde_json::to_value(&discovery)
            .map_err(|e| ApiError::internal(anyhow::anyhow!("discovery request: {e}")))?,
    );
    let message = messages::discover(&DiscoverJob { batch_id: batch.id });
    let mut conn = state.db.conn().await?;
    match batches::create(&mut conn, &batch, &[], &[message]).await {
        Ok(()) => {}
        Err(CreateError::JobIdTaken) => return Err(ApiError::JobIdTaken),
        Err(CreateError::Db(e)) => return Err(e.into()),
    }
    drop(conn);
    state.relay_wake.notify_one();
    tracing::info!(batch.id = %batch.id, endpoint = request.endpoint.as_str(), method = method.as_str(), "website batch accepted");

    let current = wait_for_discovery(state, batch.id).await?.unwrap_or(batch);
    Ok(HttpResponse::Accepted().json(accepted(&current, method)))
}

/// Polls the batch row until its discovery is no longer pending or the configured wait is
/// over; the last row read (`None` if it could not be read at all).
async fn wait_for_discovery(state: &AppState, batch_id: Uuid) -> Result<Option<Batch>, ApiError> {
    let deadline = Instant::now() + state.discovery_wait;
    let mut delay = Duration::from_millis(20);
    let mut last = None;
    while Instant::now() < deadline {
        tokio::time::sleep(delay.min(deadline.saturating_duration_since(Instant::now()))).await;
        delay = (delay * 2).min(Duration::from_millis(200));
        let mut conn = state.db.conn().await?;
        let row = batches::get(&mut conn, batch_id).await?;
        if row
            .as_ref()
            .is_some_and(|b| b.discovery_status.as_deref() != Some("pending"))
        {
            return Ok(row);
        }
        last = row;
    }
    Ok(last)
}

fn accepted(batch: &Batch, method: DiscoveryMethod) -> WebsiteAccepted {
    let count = |v: i32| Some(usize::try_from(v).unwrap_or(0));
    let (discovery, url_count, total_discovered) = match batch.discovery_status.as_deref() {
        Some("done") => (
            "done",
            count(batch.total),
            batch.total_discovered.and_then(count),
        ),
        Some("failed") => ("failed", Some(0), batch.total_discovered.and_then(count)),
        _ => ("in_progress", None, None),
    };
    WebsiteAccepted {
        status: batch.status().as_str(),
        batch_id: batch.id,
        url_count,
        output_format: "zip",
        total_discovered,
        discovery_method: method.as_str(),
        discovery,
        error: batch.discovery_error.clone(),
    }
}

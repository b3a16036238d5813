//! The api's request metrics, as an actix-web middleware:
//! `App::new().wrap(actix_web::middleware::from_fn(enconvert_metrics::http::track))`.

use std::time::Instant;

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

/// Label of requests that matched no route (a scanner's paths must not become series).
pub const UNMATCHED: &str = "unmatched";

/// Counts the request by method, route pattern and status, and records its latency (until
/// the response head; a streamed download's body is not included).
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let method = req.method().as_str().to_string();
    let result = next.call(req).await;
    let (route, status) = match &result {
        Ok(res) => (
            res.request().match_pattern(),
            res.response().status().as_u16(),
        ),
        Err(e) => (None, e.as_response_error().status_code().as_u16()),
    };
    crate::http_request(
        &method,
        route.as_deref().unwrap_or(UNMATCHED),
        status,
        started.elapsed().as_secs_f64(),
    );
    result
}

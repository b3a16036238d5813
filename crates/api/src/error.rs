//! The one error type of the HTTP API: `{"detail": ..., "code": ...}` with the right status.

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::{HttpResponse, ResponseError};
use enconvert_db::DbError;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{detail}")]
    Invalid { detail: String },
    #[error("Missing, unknown or revoked API key. Send a valid key in the X-API-Key header.")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(&'static str),
    #[error("job_id already in use")]
    JobIdTaken,
    #[error(
        "This delivery is already scheduled or in progress; see its attempts in the delivery log."
    )]
    DeliveryPending,
    #[error("The request body is larger than {limit} bytes.")]
    TooLarge { limit: usize },
    #[error("{detail}")]
    Gone { detail: &'static str },
    #[error("The conversion failed: {0}")]
    ConversionFailed(String),
    #[error(
        "The conversion is taking longer than {0} seconds; it goes on, poll /v1/convert/status/{1}."
    )]
    SyncTimeout(u64, String),
    #[error(
        "Rate limit exceeded: {limit} requests per minute for this key. Retry in {reset} seconds."
    )]
    RateLimited { limit: u32, reset: u32 },
    #[error("The service is temporarily unavailable; retry shortly.")]
    Unavailable,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Invalid { .. } => "invalid_request",
            ApiError::Unauthorized => "invalid_api_key",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::JobIdTaken => "job_id_in_use",
            ApiError::DeliveryPending => "delivery_pending",
            ApiError::TooLarge { .. } => "payload_too_large",
            ApiError::Gone { .. } => "gone",
            ApiError::ConversionFailed(_) => "conversion_failed",
            ApiError::SyncTimeout(..) => "conversion_timeout",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable => "service_unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(e.into())
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "database unavailable");
            ApiError::Unavailable
        } else {
            ApiError::Internal(e.into())
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Invalid { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::JobIdTaken | ApiError::DeliveryPending => StatusCode::CONFLICT,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Gone { .. } => StatusCode::GONE,
            ApiError::ConversionFailed(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::SyncTimeout(..) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(e) = self {
            // The cause chain goes to the log, never to the client.
            tracing::error!(error = ?e, "request failed");
        }
        let mut resp = HttpResponse::build(self.status_code());
        match self {
            ApiError::Unavailable => {
                resp.insert_header((RETRY_AFTER, HeaderValue::from_static("5")));
            }
            ApiError::RateLimited { limit, reset } => {
                resp.insert_header((RETRY_AFTER, reset.to_string()));
                resp.insert_header(("RateLimit-Limit", limit.to_string()));
                resp.insert_header(("RateLimit-Remaining", "0"));
                resp.insert_header(("RateLimit-Reset", reset.to_string()));
            }
            _ => {}
        }
        resp.json(json!({"detail": self.to_string(), "code": self.code()}))
    }
}

impl From<enconvert_domain::request::InvalidRequest> for ApiError {
    fn from(e: enconvert_domain::request::InvalidRequest) -> Self {
        ApiError::Invalid { detail: e.detail }
    }
}

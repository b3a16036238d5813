//! Refusals and failures of dashboard requests, as HTML pages (or `401` JSON for a
//! request without a session that does not ask for HTML).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use askama::Template;
use enconvert_db::DbError;
use serde_json::json;

use super::views::{ErrorPage, Page};
use crate::error::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum DashError {
    /// No live session; a person is sent to the sign-in page and back to `next` after.
    #[error("Sign in to the dashboard first.")]
    SignIn { next: String },
    /// No live session, and the request does not ask for HTML.
    #[error("Sign in to the dashboard first.")]
    Unauthorized,
    /// A state-changing form without the session's CSRF token, or with another one.
    #[error(
        "This form was not sent from this dashboard session, or the page is too old. Go back, reload the page and try again."
    )]
    Csrf,
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<DbError> for DashError {
    fn from(e: DbError) -> Self {
        DashError::Api(e.into())
    }
}

/// True when the client asks for HTML (a browser), as opposed to a program.
pub fn wants_html(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

impl DashError {
    /// The refusal of a request without a live session.
    pub fn signed_out(req: &HttpRequest) -> Self {
        if !wants_html(req) {
            return DashError::Unauthorized;
        }
        let next = if req.method() == actix_web::http::Method::GET {
            match req.uri().query() {
                Some(q) => format!("{}?{q}", req.path()),
                None => req.path().to_string(),
            }
        } else {
            "/dashboard".to_string()
        };
        DashError::SignIn { next }
    }
}

impl ResponseError for DashError {
    fn status_code(&self) -> StatusCode {
        match self {
            DashError::SignIn { .. } => StatusCode::SEE_OTHER,
            DashError::Unauthorized => StatusCode::UNAUTHORIZED,
            DashError::Csrf => StatusCode::FORBIDDEN,
            DashError::NotFound(_) => StatusCode::NOT_FOUND,
            DashError::Invalid(_) => StatusCode::BAD_REQUEST,
            DashError::Api(e) => e.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            DashError::SignIn { next } => {
                let query: String = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("next", next)
                    .finish();
                HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, format!("/dashboard/login?{query}")))
                    .finish()
            }
            DashError::Unauthorized => HttpResponse::Unauthorized()
                .insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Cookie")))
                .json(json!({"detail": self.to_string(), "code": "signed_out"})),
            DashError::Api(e @ ApiError::Internal(_)) => {
                // Logs the cause chain; the page says only that something failed.
                let _ = e.error_response();
                page(self.status_code(), "Something went wrong", &e.to_string())
            }
            _ => {
                let title = match self {
                    DashError::Csrf => "Refused",
                    DashError::NotFound(_) => "Not found",
                    DashError::Invalid(_) => "Invalid input",
                    _ => "Unavailable",
                };
                page(self.status_code(), title, &self.to_string())
            }
        }
    }
}

fn page(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    let body = ErrorPage {
        page: Page::bare(title),
        message,
    }
    .render()
    .unwrap_or_else(|_| message.to_string());
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body)
}

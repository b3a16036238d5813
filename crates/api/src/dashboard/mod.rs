//! The dashboard: server-rendered pages for people under `/dashboard` (askama templates in
//! `templates/dashboard/`, a stylesheet and one small script in `assets/`; every page reads
//! without JavaScript, which only refreshes the progress of a running batch).
//!
//! Sign-in takes a project's private key in a POST form and opens a server-side session
//! (`enconvert_db::sessions`): the cookie is HttpOnly, SameSite=Strict, scoped to
//! `/dashboard`, `Secure` behind an `https://` public URL. Every state-changing form carries
//! the session's CSRF token (the sign-in form a double-submit token), checked before
//! anything else: a missing or wrong one gets `403`. A request without a session is sent to
//! the sign-in page, or gets `401` when it does not ask for HTML.
//!
//! The pages read and write through the db crate's functions, the same ones the API and
//! `enconvert-admin` use.

mod error;
mod forms;
mod pages;
mod session;
mod settings;
mod views;

use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::{HttpResponse, web};

pub use error::DashError;
pub use session::{LOGIN_COOKIE, SESSION_COOKIE};

/// Everything the pages load comes from this origin; nothing may frame them.
const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const CSS: &str = include_str!("../../assets/dashboard.css");
const JS: &str = include_str!("../../assets/progress.js");

async fn css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(CSS)
}

async fn js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .body(JS)
}

/// Routes under `/dashboard`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/dashboard")
            .wrap(
                DefaultHeaders::new()
                    .add((header::CACHE_CONTROL, "no-store"))
                    .add((header::CONTENT_SECURITY_POLICY, CSP))
                    .add((header::X_FRAME_OPTIONS, "DENY"))
                    .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                    .add((header::REFERRER_POLICY, "no-referrer")),
            )
            .route("", web::get().to(pages::batches))
            .route("/", web::get().to(pages::batches))
            .route("/login", web::get().to(session::login_page))
            .route("/login", web::post().to(session::login))
            .route("/logout", web::post().to(session::logout))
            .route("/assets/dashboard.css", web::get().to(css))
            .route("/assets/progress.js", web::get().to(js))
            .route("/batches/{batch_id}", web::get().to(pages::batch))
            .route(
                "/batches/{batch_id}/progress",
                web::get().to(pages::progress),
            )
            .route(
                "/batches/{batch_id}/items/{job_id}",
                web::get().to(pages::item),
            )
            .route(
                "/batches/{batch_id}/deliveries/{notification_id}/redeliver",
                web::post().to(pages::redeliver),
            )
            .route("/settings", web::get().to(settings::page))
            .route(
                "/settings/notifications",
                web::post().to(settings::notifications),
            )
            .route(
                "/settings/webhook-secret",
                web::post().to(settings::rotate_secret),
            )
            .route("/settings/keys", web::post().to(settings::create_key))
            .route(
                "/settings/keys/{key_id}/revoke",
                web::post().to(settings::revoke_key),
            )
            .default_service(web::to(pages::not_found)),
    );
}

//! Signing in and out, and the session of a request.

use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use enconvert_db::sessions::{self, Session};
use enconvert_db::{keys, projects};
use enconvert_domain::request::KeyKind;
use serde::Deserialize;

use super::DashError;
use super::forms::{Form, same_token};
use super::views::{LoginPage, Page, html};
use crate::state::AppState;

/// The session cookie: a random token whose hash names a `dashboard_sessions` row.
pub const SESSION_COOKIE: &str = "enconvert_session";
/// The sign-in form's double-submit CSRF token (there is no session yet to hold one).
pub const LOGIN_COOKIE: &str = "enconvert_login";

fn cookie<'a>(state: &AppState, name: &'a str, value: String) -> Cookie<'a> {
    Cookie::build(name, value)
        .path("/dashboard")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.secure_cookies)
        .finish()
}

fn removal<'a>(state: &AppState, name: &'a str) -> Cookie<'a> {
    let mut c = cookie(state, name, String::new());
    c.make_removal();
    c
}

/// The live session of this request, or the refusal: the sign-in page for a browser,
/// `401` for a program.
pub async fn current(state: &AppState, req: &HttpRequest) -> Result<Session, DashError> {
    if let Some(token) = req
        .cookie(SESSION_COOKIE)
        .map(|c| c.value().to_string())
        .filter(|t| !t.is_empty() && t.len() <= 128)
    {
        let mut conn = state.db.conn().await?;
        if let Some(session) = sessions::find(&mut conn, &token).await? {
            return Ok(session);
        }
    }
    Err(DashError::signed_out(req))
}

/// Where to go after signing in: a dashboard path, nothing else (no open redirect).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if (n == "/dashboard"
                || n.starts_with("/dashboard/")
                || n.starts_with("/dashboard?"))
                && !n.contains("//")
                && !n.contains('\\')
                && !n.starts_with("/dashboard/login") =>
        {
            n.to_string()
        }
        _ => "/dashboard".to_string(),
    }
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    notice: Option<String>,
}

fn login_form(
    state: &AppState,
    req: &HttpRequest,
    status: actix_web::http::StatusCode,
    next: String,
    error: Option<&str>,
    notice: Option<&'static str>,
) -> Result<HttpResponse, DashError> {
    let existing = req
        .cookie(LOGIN_COOKIE)
        .map(|c| c.value().to_string())
        .filter(|t| t.len() >= 32 && t.len() <= 128);
    let token = existing.clone().unwrap_or_else(sessions::random_token);
    let mut page = Page::bare("Sign in");
    page.notice = notice;
    let body = LoginPage {
        page,
        csrf: &token,
        next: &next,
        error,
    };
    let mut resp = html(status, &body)?;
    if existing.is_none() {
        resp.add_cookie(&cookie(state, LOGIN_COOKIE, token))
            .map_err(crate::error::ApiError::internal)?;
    }
    Ok(resp)
}

/// `GET /dashboard/login`: the sign-in form.
pub async fn login_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, DashError> {
    let notice = match query.notice.as_deref() {
        Some("signed-out") => Some("You are signed out."),
        _ => None,
    };
    login_form(
        &state,
        &req,
        actix_web::http::StatusCode::OK,
        safe_next(query.next.as_deref()),
        None,
        notice,
    )
}

/// `POST /dashboard/login`: checks the private key and opens a session.
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let form = Form::parse(&body);
    let expected = req
        .cookie(LOGIN_COOKIE)
        .map(|c| c.value().to_string())
        .unwrap_or_default();
    if !form.get("csrf").is_some_and(|t| same_token(t, &expected)) {
        return Err(DashError::Csrf);
    }
    let next = safe_next(form.get("next"));
    let key = form.get("key").map(str::trim).unwrap_or_default();
    let refuse = |message: &str| {
        login_form(
            &state,
            &req,
            actix_web::http::StatusCode::UNAUTHORIZED,
            next.clone(),
            Some(message),
            None,
        )
    };
    match keys::kind_of(key) {
        Some(KeyKind::Private) => {}
        Some(KeyKind::Public) => {
            return refuse(
                "That is a public key. Sign in with the project's private key (sk_live_...).",
            );
        }
        None => {
            return refuse("Unknown or revoked key. Sign in with a private key (sk_live_...).");
        }
    }
    let mut conn = state.db.conn().await?;
    let Some(caller) = projects::authenticate(&mut conn, &keys::hash(key)).await? else {
        return refuse("Unknown or revoked key. Sign in with a private key (sk_live_...).");
    };
    let token = sessions::create(&mut conn, &caller.key, state.session_ttl).await?;
    drop(conn);
    tracing::info!(project.id = %caller.project.id, key.id = %caller.key.id, "dashboard sign-in");
    let mut session = cookie(&state, SESSION_COOKIE, token);
    session.set_max_age(CookieDuration::seconds(
        i64::try_from(state.session_ttl.as_secs()).unwrap_or(i64::MAX),
    ));
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, next))
        .cookie(session)
        .cookie(removal(&state, LOGIN_COOKIE))
        .finish())
}

/// `POST /dashboard/logout`: ends the session (the row is deleted, so the cookie is dead
/// even if a copy of it survives).
pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let session = current(&state, &req).await?;
    Form::parse(&body).check_csrf(&session.csrf_token)?;
    if let Some(c) = req.cookie(SESSION_COOKIE) {
        let mut conn = state.db.conn().await?;
        sessions::delete(&mut conn, c.value()).await?;
    }
    tracing::info!(project.id = %session.caller.project.id, "dashboard sign-out");
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/dashboard/login?notice=signed-out"))
        .cookie(removal(&state, SESSION_COOKIE))
        .finish())
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_the_dashboard() {
        assert_eq!(
            safe_next(Some("/dashboard/batches/x")),
            "/dashboard/batches/x"
        );
        assert_eq!(
            safe_next(Some("/dashboard?before=1")),
            "/dashboard?before=1"
        );
        for bad in [
            "https://evil.example/",
            "//evil.example/dashboard/",
            "/dashboardx",
            "/dashboard/..//evil",
            "/dashboard/\\evil",
            "/dashboard/login?next=x",
            "/v1/files/x",
        ] {
            assert_eq!(safe_next(Some(bad)), "/dashboard", "{bad}");
        }
        assert_eq!(safe_next(None), "/dashboard");
    }
}

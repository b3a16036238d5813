//! Project settings: the owner's address and the default-email switch, webhook secret
//! rotation (the new secret shown once), keys (created and shown once, listed by prefix,
//! revoked).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use enconvert_db::sessions::Session;
use enconvert_db::{keys, projects, webhook_secrets};
use enconvert_domain::request::KeyKind;
use uuid::Uuid;

use super::DashError;
use super::forms::Form;
use super::session::current;
use super::views::{KeyRow, Page, SettingsPage, html, when};
use crate::state::AppState;

/// How long a rotated webhook secret keeps signing next to the new one (as
/// `enconvert-admin rotate-webhook-secret` by default).
const GRACE_HOURS: u64 = 24;

struct Reveal {
    notice: Option<&'static str>,
    new_key: Option<(String, String)>,
    new_secret: Option<String>,
}

async fn render(
    state: &AppState,
    session: &Session,
    reveal: Reveal,
) -> Result<HttpResponse, DashError> {
    let project_id = session.caller.project.id;
    let mut conn = state.db.conn().await?;
    // Read again: a form on this page may just have changed it.
    let project = projects::find_project(&mut conn, project_id)
        .await?
        .ok_or(DashError::NotFound("No such project."))?;
    let keys = projects::keys_of_project(&mut conn, project_id).await?;
    drop(conn);
    let mut page = Page::signed("Settings", session, "settings");
    page.notice = reveal.notice;
    let keys = keys
        .iter()
        .map(|k| KeyRow {
            id: k.id.to_string(),
            prefix: k.prefix.clone(),
            kind: k.kind.clone(),
            created: when(k.created_at),
            revoked: k.revoked_at.map(when),
            current: k.id == session.caller.key.id,
        })
        .collect();
    html(
        StatusCode::OK,
        &SettingsPage {
            page,
            csrf: session.csrf_token.clone(),
            owner_email: project.owner_email,
            default_email: project.default_email_enabled,
            keys,
            new_key: reveal.new_key,
            new_secret: reveal.new_secret,
            grace_hours: GRACE_HOURS,
        },
    )
}

fn back(notice: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((
            header::LOCATION,
            format!("/dashboard/settings?notice={notice}"),
        ))
        .finish()
}

#[derive(serde::Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

/// `GET /dashboard/settings`.
pub async fn page(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, DashError> {
    let session = current(&state, &req).await?;
    let notice = match query.notice.as_deref() {
        Some("saved") => Some("Saved."),
        Some("revoked") => Some("The key is revoked; requests with it now get 401."),
        Some("already-revoked") => Some("That key was already revoked."),
        _ => None,
    };
    render(
        &state,
        &session,
        Reveal {
            notice,
            new_key: None,
            new_secret: None,
        },
    )
    .await
}

/// `POST /dashboard/settings/notifications`: owner email and the default-email switch.
pub async fn notifications(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let session = current(&state, &req).await?;
    let form = Form::parse(&body);
    form.check_csrf(&session.csrf_token)?;
    let email = form.get("owner_email").map(str::trim).unwrap_or_default();
    if !email_address::EmailAddress::is_valid(email) {
        return Err(DashError::Invalid(
            "The owner email is not a valid email address.".into(),
        ));
    }
    // An unticked checkbox is not sent at all.
    let enabled = form.get("default_email") == Some("on");
    let project_id = session.caller.project.id;
    let mut conn = state.db.conn().await?;
    projects::set_owner_email(&mut conn, project_id, email).await?;
    projects::set_default_email(&mut conn, project_id, enabled).await?;
    state.finished.callers_changed();
    tracing::info!(project.id = %project_id, default_email_enabled = enabled, "project settings changed from the dashboard");
    Ok(back("saved"))
}

/// `POST /dashboard/settings/webhook-secret`: rotates the secret and shows the new one once.
pub async fn rotate_secret(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let session = current(&state, &req).await?;
    Form::parse(&body).check_csrf(&session.csrf_token)?;
    let project_id = session.caller.project.id;
    let mut conn = state.db.conn().await?;
    let grace = std::time::Duration::from_secs(GRACE_HOURS * 3600);
    let secret = webhook_secrets::rotate(&mut conn, project_id, grace).await?;
    drop(conn);
    tracing::info!(project.id = %project_id, "webhook secret rotated from the dashboard");
    render(
        &state,
        &session,
        Reveal {
            notice: Some("The webhook secret is rotated."),
            new_key: None,
            new_secret: Some(secret),
        },
    )
    .await
}

/// `POST /dashboard/settings/keys`: a new key, shown once.
pub async fn create_key(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let session = current(&state, &req).await?;
    let form = Form::parse(&body);
    form.check_csrf(&session.csrf_token)?;
    let kind = form
        .get("kind")
        .and_then(KeyKind::parse)
        .ok_or_else(|| DashError::Invalid("The key kind is `private` or `public`.".into()))?;
    let project_id = session.caller.project.id;
    let (key, hash) = keys::generate(kind);
    let mut conn = state.db.conn().await?;
    let row = projects::insert_key(
        &mut conn,
        project_id,
        kind.as_str(),
        &keys::display_prefix(&key),
        hash,
    )
    .await?;
    drop(conn);
    tracing::info!(project.id = %project_id, key.id = %row.id, kind = kind.as_str(), "key created from the dashboard");
    render(
        &state,
        &session,
        Reveal {
            notice: None,
            new_key: Some((kind.as_str().to_string(), key)),
            new_secret: None,
        },
    )
    .await
}

/// `POST /dashboard/settings/keys/{key_id}/revoke`. The project keeps at least one active
/// private key (the one the dashboard signs in with); revoking this session's own key ends
/// the session.
pub async fn revoke_key(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let session = current(&state, &req).await?;
    Form::parse(&body).check_csrf(&session.csrf_token)?;
    const NO_KEY: &str = "No such key in this project.";
    let key_id = Uuid::parse_str(&path).map_err(|_| DashError::NotFound(NO_KEY))?;
    let project_id = session.caller.project.id;
    let mut conn = state.db.conn().await?;
    let keys = projects::keys_of_project(&mut conn, project_id).await?;
    let key = keys
        .iter()
        .find(|k| k.id == key_id)
        .ok_or(DashError::NotFound(NO_KEY))?;
    if key.revoked_at.is_some() {
        return Ok(back("already-revoked"));
    }
    let active_private = keys
        .iter()
        .filter(|k| k.kind == "private" && k.revoked_at.is_none())
        .count();
    if key.kind == "private" && active_private <= 1 {
        return Err(DashError::Invalid(
            "This is the project's last active private key; create another one before revoking it."
                .into(),
        ));
    }
    projects::revoke_key(&mut conn, key_id).await?;
    drop(conn);
    // Refused by this process at once (the others when the change's notification arrives).
    state.finished.callers_changed();
    tracing::info!(project.id = %project_id, key.id = %key_id, "key revoked from the dashboard");
    if key_id == session.caller.key.id {
        // This session signed in with it, so it has just ended.
        return Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, "/dashboard/login"))
            .finish());
    }
    Ok(back("revoked"))
}

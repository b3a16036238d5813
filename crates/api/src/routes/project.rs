//! `GET` and `PUT /v1/project/settings` (ours): the caller's project settings. Today one:
//! `default_email_enabled`, whether completion emails go to the owner's address when a
//! request names no `notification_email` (an explicit `notification_email` always sends).

use actix_web::{HttpRequest, HttpResponse, web};
use enconvert_db::projects::{self, Caller};
use enconvert_domain::request::KeyKind;
use serde_json::{Value, json};

use crate::auth;
use crate::body::read_limited;
use crate::error::ApiError;
use crate::state::AppState;

async fn private_caller(state: &AppState, req: &HttpRequest) -> Result<Caller, ApiError> {
    let caller = auth::caller(state, req).await?;
    if auth::key_kind(&caller) == KeyKind::Public {
        return Err(ApiError::Forbidden(
            "Project settings are not available with a public key; use a private key (sk_live_...) from your server".into(),
        ));
    }
    Ok(caller)
}

fn answer(default_email_enabled: bool) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "default_email_enabled": default_email_enabled }))
}

pub async fn settings(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let caller = private_caller(&state, &req).await?;
    Ok(answer(caller.project.default_email_enabled))
}

pub async fn update_settings(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let caller = private_caller(&state, &req).await?;
    let body = read_limited(payload, state.max_body_bytes).await?;
    let value: Value = serde_json::from_slice(&body).map_err(|e| ApiError::Invalid {
        detail: format!("The request body is not valid JSON: {e}"),
    })?;
    let Some(object) = value.as_object() else {
        return Err(ApiError::Invalid {
            detail: "The request body must be a JSON object.".into(),
        });
    };
    let enabled = match object.get("default_email_enabled") {
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ApiError::Invalid {
                detail: "Invalid value for `default_email_enabled`: expected a boolean".into(),
            });
        }
        None => {
            return Err(ApiError::Invalid {
                detail: "`default_email_enabled` is required".into(),
            });
        }
    };
    let mut conn = state.db.conn().await?;
    projects::set_default_email(&mut conn, caller.project.id, enabled).await?;
    tracing::info!(project.id = %caller.project.id, default_email_enabled = enabled, "project settings changed");
    Ok(answer(enabled))
}

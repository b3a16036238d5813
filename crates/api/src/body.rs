//! Reading a JSON body with a size limit that answers `413` in the API's error shape.

use actix_web::{HttpRequest, HttpResponse, web};
use enconvert_db::projects::Caller;
use enconvert_domain::Plan;
use enconvert_domain::request::{ConvertRequest, Endpoint, parse_body};
use futures_util::StreamExt;

use crate::auth;
use crate::error::ApiError;
use crate::state::AppState;

pub async fn read_limited(
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::BytesMut, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::Invalid {
            detail: format!("The request body could not be read: {e}"),
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The checks every submit route runs before its own work: the key, the rate limit, the body
/// (size, JSON, fields) and what the key and plan allow. `handler` gets the caller, the
/// validated request and the plan; whatever it answers carries the rate-limit headers.
pub async fn submit<F, Fut>(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
    endpoint: Endpoint,
    handler: F,
) -> Result<HttpResponse, ApiError>
where
    F: FnOnce(Caller, ConvertRequest, Plan) -> Fut,
    Fut: Future<Output = Result<HttpResponse, ApiError>>,
{
    let (caller, window) = auth::counted_caller(state, req).await?;
    let rate = crate::rate::check(&caller, window)?;
    let outcome = async {
        let body = read_limited(payload, state.max_body_bytes).await?;
        let request = parse_body(&body)?.validate(endpoint, &state.allow_private)?;
        let plan = caller.plan.to_plan();
        request
            .authorize(auth::key_kind(&caller), &plan)
            .map_err(|f| ApiError::Forbidden(f.0))?;
        handler(caller, request, plan).await
    }
    .await;
    let mut resp = outcome.unwrap_or_else(|e| actix_web::ResponseError::error_response(&e));
    rate.apply(&mut resp);
    Ok(resp)
}

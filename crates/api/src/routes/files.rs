//! `GET /v1/files/{key}?expires=..&signature=..`: downloads from the local file store.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use enconvert_storage::LinkError;
use futures_util::TryStreamExt;
use serde::Deserialize;

use crate::error::ApiError;
use crate::routes::convert::content_type_of;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct LinkQuery {
    expires: Option<u64>,
    signature: Option<String>,
}

pub async fn download(
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<LinkQuery>,
) -> Result<HttpResponse, ApiError> {
    let key = path.into_inner();
    let (Some(expires), Some(signature)) = (query.expires, query.signature.as_deref()) else {
        return Err(ApiError::Forbidden(
            "This download link is not signed.".into(),
        ));
    };
    match state.signer.verify(&key, expires, signature) {
        Ok(()) => {}
        Err(LinkError::BadSignature) => {
            return Err(ApiError::Forbidden(
                "This download link's signature is not valid.".into(),
            ));
        }
        Err(LinkError::Expired) => {
            return Err(ApiError::Gone {
                detail: "This download link has expired; poll the status again for a fresh one.",
            });
        }
    }
    let Some((size, stream)) = state.storage.open(&key).await.map_err(ApiError::internal)? else {
        return Err(ApiError::NotFound(
            "File not found; it may have passed its retention period.",
        ));
    };
    let filename = key.rsplit('/').next().unwrap_or("file").to_string();
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type_of(&filename)))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .insert_header((header::CONTENT_LENGTH, size))
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .streaming(stream.map_err(|e| actix_web::error::ErrorInternalServerError(e.to_string()))))
}

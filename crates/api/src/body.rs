//! Reading a JSON body with a size limit that answers `413` in the API's error shape.

use actix_web::web;
use futures_util::StreamExt;

use crate::error::ApiError;

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

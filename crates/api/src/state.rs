//! What every handler shares.

use std::sync::Arc;
use std::time::Duration;

use enconvert_db::Db;
use enconvert_domain::AllowList;
use enconvert_storage::{LinkSigner, Storage};
use tokio::sync::Notify;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub storage: Storage,
    pub signer: LinkSigner,
    /// Wakes the outbox relay after a commit, so work is published at once.
    pub relay_wake: Arc<Notify>,
    pub public_url: String,
    pub env: String,
    pub allow_private: AllowList,
    pub max_body_bytes: usize,
    pub sync_timeout: Duration,
    /// Finished sync jobs, announced by PostgreSQL `NOTIFY`.
    pub finished: enconvert_db::finished::Listener,
    /// How long a website submit waits for discovery before answering without the counts.
    pub discovery_wait: Duration,
    /// How long a dashboard sign-in lasts.
    pub session_ttl: Duration,
    /// Dashboard cookies get `Secure`.
    pub secure_cookies: bool,
    /// What `/readyz` checks (PostgreSQL; RabbitMQ is reported).
    pub ready: enconvert_metrics::Check,
    /// Callers found by their key, kept while no change is announced.
    pub callers: Arc<crate::auth::Callers>,
    /// Requests counted per key, added to the shared rate windows in the background.
    pub rates: Arc<crate::rate::RateCounter>,
}

impl AppState {
    /// A download link for a stored file: the bucket's presigned URL, or for the local store
    /// an HMAC-signed link to `/v1/files/...` on this api. Both expire after the link TTL.
    pub async fn link(&self, key: &str) -> Result<String, crate::error::ApiError> {
        match self
            .storage
            .presigned_url(key, self.signer.ttl())
            .await
            .map_err(crate::error::ApiError::internal)?
        {
            Some(url) => Ok(url),
            None => Ok(self.signer.sign(&self.public_url, key)),
        }
    }
}

#![doc = include_str!("../README.md")]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};
use sha2::Sha256;

pub use object_store::Error as StoreError;

/// The file store every process shares.
#[derive(Clone, Debug)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// Set for buckets that hand out presigned URLs themselves (S3).
    signer: Option<Arc<object_store::aws::AmazonS3>>,
}

impl Storage {
    /// The store named by `ENCONVERT_STORAGE_URL`: `s3://bucket` (credentials, region and an
    /// optional endpoint for S3-compatible services come from the usual `AWS_*` variables),
    /// or, when it is unset, the local directory.
    /// `overrides` are object_store S3 settings (e.g. `("aws_endpoint", ...)`) applied over
    /// the environment's.
    pub fn connect(
        url: Option<&str>,
        dir: &Path,
        overrides: &[(String, String)],
    ) -> Result<Self, StoreError> {
        match url {
            None => Self::local(dir),
            Some(url) => {
                let mut builder = object_store::aws::AmazonS3Builder::from_env().with_url(url);
                for (k, v) in overrides {
                    let key: object_store::aws::AmazonS3ConfigKey = k.parse()?;
                    builder = builder.with_config(key, v);
                }
                let s3 = builder.build()?;
                let s3 = Arc::new(s3);
                Ok(Storage {
                    store: s3.clone(),
                    signer: Some(s3),
                })
            }
        }
    }

    /// A presigned download link, for stores that make their own (S3); `None` for the local
    /// store, whose links the api signs and serves.
    pub async fn presigned_url(
        &self,
        key: &str,
        ttl: Duration,
    ) -> Result<Option<String>, StoreError> {
        use object_store::signer::Signer;
        match &self.signer {
            None => Ok(None),
            Some(s3) => Ok(Some(
                s3.signed_url(http::Method::GET, &ObjectPath::from(key), ttl)
                    .await?
                    .to_string(),
            )),
        }
    }

    /// A store rooted at a local directory (created if missing).
    pub fn local(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Generic {
            store: "local",
            source: Box::new(e),
        })?;
        let store = LocalFileSystem::new_with_prefix(dir)?;
        Ok(Storage {
            store: Arc::new(store),
            signer: None,
        })
    }

    pub async fn put(&self, key: &str, data: Bytes) -> Result<(), StoreError> {
        self.store
            .put(&ObjectPath::from(key), PutPayload::from_bytes(data))
            .await?;
        Ok(())
    }

    /// Stores `data` under `key` unless the key exists; `false` when it does.
    pub async fn put_new(&self, key: &str, data: Bytes) -> Result<bool, StoreError> {
        let opts = object_store::PutOptions {
            mode: object_store::PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(&ObjectPath::from(key), PutPayload::from_bytes(data), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(StoreError::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Stores a file that is on disk already, without reading it into memory at once.
    pub async fn put_file(&self, key: &str, path: &Path) -> Result<u64, StoreError> {
        use tokio::io::AsyncReadExt;
        let mut file = tokio::fs::File::open(path).await.map_err(io_err)?;
        let mut upload = object_store::WriteMultipart::new(
            self.store.put_multipart(&ObjectPath::from(key)).await?,
        );
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = file.read(&mut buf).await.map_err(io_err)?;
            if n == 0 {
                break;
            }
            total += n as u64;
            upload.write(&buf[..n]);
        }
        upload.finish().await?;
        Ok(total)
    }

    pub async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        self.store.get(&ObjectPath::from(key)).await?.bytes().await
    }

    /// Streams an object (for downloads); `None` when it does not exist.
    pub async fn open(
        &self,
        key: &str,
    ) -> Result<
        Option<(
            u64,
            futures_util::stream::BoxStream<'static, Result<Bytes, StoreError>>,
        )>,
        StoreError,
    > {
        match self.store.get(&ObjectPath::from(key)).await {
            Ok(r) => {
                let size = r.meta.size;
                Ok(Some((size, r.into_stream())))
            }
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        match self.store.head(&ObjectPath::from(key)).await {
            Ok(_) => Ok(true),
            Err(StoreError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self.store.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(StoreError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn io_err(e: std::io::Error) -> StoreError {
    StoreError::Generic {
        store: "local",
        source: Box::new(e),
    }
}

/// Signs and checks download links of the local store:
/// `{base}/v1/files/{key}?expires={unix}&signature={base64url(HMAC-SHA256(key \n expires))}`.
#[derive(Clone)]
pub struct LinkSigner {
    secret: Vec<u8>,
    ttl: Duration,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkSigner")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// Why a link was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link's signature is not valid")]
    BadSignature,
    #[error("the link has expired")]
    Expired,
}

impl LinkSigner {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        LinkSigner {
            secret: secret.to_vec(),
            ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn mac(&self, key: &str, expires: u64) -> Hmac<Sha256> {
        // HMAC accepts keys of any length.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.secret) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        mac.update(key.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// A link valid for the signer's TTL from now.
    pub fn sign(&self, base_url: &str, key: &str) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.sign_until(base_url, key, (now + self.ttl).as_secs())
    }

    pub fn sign_until(&self, base_url: &str, key: &str, expires: u64) -> String {
        let sig = URL_SAFE_NO_PAD.encode(self.mac(key, expires).finalize().into_bytes());
        let path: String = key
            .split('/')
            .map(|seg| url::form_urlencoded::byte_serialize(seg.as_bytes()).collect::<String>())
            .collect::<Vec<_>>()
            .join("/");
        format!("{base_url}/v1/files/{path}?expires={expires}&signature={sig}")
    }

    /// Checks a link's signature (in constant time) and expiry.
    pub fn verify(&self, key: &str, expires: u64, signature: &str) -> Result<(), LinkError> {
        let sig = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| LinkError::BadSignature)?;
        self.mac(key, expires)
            .verify_slice(&sig)
            .map_err(|_| LinkError::BadSignature)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        if now > expires {
            return Err(LinkError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(link: &str) -> (String, u64, String) {
        let (path, query) = link.split_once('?').expect("query");
        let key = path.split_once("/v1/files/").expect("path").1.to_string();
        let mut expires = 0;
        let mut sig = String::new();
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("expires", v)) => expires = v.parse().expect("number"),
                Some(("signature", v)) => sig = v.to_string(),
                _ => {}
            }
        }
        (key, expires, sig)
    }

    #[test]
    fn signed_links_verify_and_tampering_fails() {
        let signer = LinkSigner::new(b"secret", Duration::from_secs(60));
        let link = signer.sign("http://h", "dev/files/p/url-to-pdf/a_1.pdf");
        let (key, expires, sig) = parts(&link);
        assert_eq!(signer.verify(&key, expires, &sig), Ok(()));
        assert_eq!(
            signer.verify("dev/files/p/url-to-pdf/b_1.pdf", expires, &sig),
            Err(LinkError::BadSignature)
        );
        assert_eq!(
            signer.verify(&key, expires + 1, &sig),
            Err(LinkError::BadSignature)
        );
        let other = LinkSigner::new(b"other", Duration::from_secs(60));
        assert_eq!(
            other.verify(&key, expires, &sig),
            Err(LinkError::BadSignature)
        );
    }

    #[test]
    fn expired_links_fail() {
        let signer = LinkSigner::new(b"secret", Duration::from_secs(60));
        let link = signer.sign_until("http://h", "k", 1000);
        let (key, expires, sig) = parts(&link);
        assert_eq!(signer.verify(&key, expires, &sig), Err(LinkError::Expired));
    }

    #[tokio::test]
    async fn local_store_round_trip() {
        let dir = std::env::temp_dir().join(format!("enc-store-{}", std::process::id()));
        let store = Storage::local(&dir).expect("store");
        store
            .put("a/b/c.pdf", Bytes::from_static(b"%PDF-1.7"))
            .await
            .expect("put");
        assert_eq!(
            store.get("a/b/c.pdf").await.expect("get"),
            Bytes::from_static(b"%PDF-1.7")
        );
        assert!(store.exists("a/b/c.pdf").await.expect("head"));
        store.delete("a/b/c.pdf").await.expect("delete");
        assert!(!store.exists("a/b/c.pdf").await.expect("head"));
        let _ = std::fs::remove_dir_all(dir);
    }
}

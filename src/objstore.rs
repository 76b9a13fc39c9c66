//! S3-compatible object storage (AWS S3, Cloudflare R2, MinIO, moto…) through the
//! `object_store` crate: the settings of one bucket ([`S3Config`], a config section such
//! as `[cdn.s3]`), and a [`Bucket`] that puts bytes or files with HTTP headers, deletes
//! and lists below a key prefix. Generic on purpose: the CDN upload (`cdn::upload`) and
//! snapshot uploads share it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as Key;
use object_store::prefix::PrefixStore;
use object_store::{
    Attribute, Attributes, BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutOptions,
    PutPayload, RetryConfig,
};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

/// Files at most this large are sent in one `PUT`; larger ones as a multipart upload.
const SINGLE_PUT_BYTES: usize = 16 * 1024 * 1024;

/// The settings of one S3-compatible bucket. An empty `bucket` means "off".
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// Endpoint URL (`https://<account>.r2.cloudflarestorage.com`,
    /// `http://127.0.0.1:9000`); empty = AWS S3 itself. Plain `http://` is accepted only
    /// for loopback hosts.
    pub endpoint: String,
    /// Bucket name; empty = off.
    pub bucket: String,
    /// Region (`us-east-1`; R2 wants `auto`).
    pub region: String,
    /// Key prefix inside the bucket (`""`, or e.g. `memora/prod`): every key is
    /// `{prefix}/{path}`.
    pub prefix: String,
    /// Access key id; empty = the `AWS_*` environment / instance credentials. Redacted
    /// by `print-config`.
    pub access_key_id: String,
    /// Secret access key. A secret: prefer the `…_FILE` variable; redacted.
    pub secret_access_key: String,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |s: &str| if s.is_empty() { "" } else { "<redacted>" };
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("prefix", &self.prefix)
            .field("access_key_id", &redact(&self.access_key_id))
            .field("secret_access_key", &redact(&self.secret_access_key))
            .finish()
    }
}

/// The keys of [`S3Config`] that hold secrets (redacted when printed).
pub const SECRET_FIELDS: [&str; 2] = ["access_key_id", "secret_access_key"];

impl S3Config {
    /// Whether a bucket is configured.
    pub fn enabled(&self) -> bool {
        !self.bucket.trim().is_empty()
    }

    /// Checks the settings (nothing when off): returns the field at fault and why.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if !self.enabled() {
            return None;
        }
        if !self.endpoint.is_empty() {
            let url = match reqwest::Url::parse(&self.endpoint) {
                Ok(u) => u,
                Err(e) => return Some(("endpoint", format!("not a URL: {e}"))),
            };
            match url.scheme() {
                "https" => {}
                "http" if is_loopback(&url) => {}
                "http" => {
                    return Some((
                        "endpoint",
                        "plain http is accepted only for loopback hosts (127.0.0.1, ::1, localhost); use https".into(),
                    ));
                }
                other => return Some(("endpoint", format!("scheme `{other}`: use https"))),
            }
        }
        if self.region.trim().is_empty() {
            return Some((
                "region",
                "must not be empty (e.g. us-east-1, or auto for R2)".into(),
            ));
        }
        if self.access_key_id.is_empty() != self.secret_access_key.is_empty() {
            return Some((
                "secret_access_key",
                "access_key_id and secret_access_key go together (both or neither)".into(),
            ));
        }
        if self.prefix.split('/').any(|s| s == "." || s == "..") {
            return Some(("prefix", "must not contain `.` or `..` segments".into()));
        }
        if let Err(e) = Bucket::open(self) {
            return Some(("bucket", e.to_string()));
        }
        None
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// What an object is served with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headers {
    /// `Content-Type`.
    pub content_type: String,
    /// `Cache-Control`, if any.
    pub cache_control: Option<String>,
}

impl Headers {
    fn attributes(&self) -> Attributes {
        let mut a = Attributes::new();
        a.insert(Attribute::ContentType, self.content_type.clone().into());
        if let Some(c) = &self.cache_control {
            a.insert(Attribute::CacheControl, c.clone().into());
        }
        a
    }
}

/// An object found by [`Bucket::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// Key relative to the bucket's prefix (`plans/p1/manifest.json`).
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// The ETag without quotes (for a single `PUT` on S3 and its clones: the body's MD5
    /// in hex).
    pub e_tag: Option<String>,
}

/// Why an object-store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ObjError {
    /// The store answered an error or could not be reached (after its own few retries).
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    /// A key is not a valid object path.
    #[error("bad object key `{key}`: {message}")]
    Key {
        /// The key.
        key: String,
        /// Why.
        message: String,
    },
    /// A streamed (multipart) upload failed.
    #[error("upload of `{key}`: {source}")]
    Upload {
        /// The key.
        key: String,
        /// The cause (the store's error, as `BufWriter` reports it).
        source: std::io::Error,
    },
    /// A local file could not be read.
    #[error("read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// One bucket (below its prefix). Cheap to clone; methods are async and need a tokio
/// runtime.
#[derive(Debug, Clone)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
}

impl Bucket {
    /// A client of the configured bucket (no network I/O yet). Requests retry at most 3
    /// times within 30 s (object_store's own retry; callers add their own backoff), and
    /// time out after 60 s.
    ///
    /// # Errors
    /// [`ObjError::Store`] when the settings are unusable.
    pub fn open(config: &S3Config) -> Result<Bucket, ObjError> {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(config.bucket.trim())
            .with_region(config.region.trim())
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 3,
                retry_timeout: Duration::from_secs(30),
            })
            .with_client_options(
                ClientOptions::new()
                    .with_timeout(Duration::from_secs(60))
                    .with_connect_timeout(Duration::from_secs(5)),
            );
        if !config.endpoint.is_empty() {
            builder = builder
                .with_endpoint(config.endpoint.trim_end_matches('/'))
                .with_allow_http(config.endpoint.starts_with("http://"));
        }
        if !config.access_key_id.is_empty() {
            builder = builder
                .with_access_key_id(&config.access_key_id)
                .with_secret_access_key(&config.secret_access_key);
        }
        let s3: Arc<dyn ObjectStore> = Arc::new(builder.build()?);
        Ok(Bucket::from_store(s3, &config.prefix))
    }

    /// A bucket over any store (tests wrap the real one), keys below `prefix`.
    pub fn from_store(store: Arc<dyn ObjectStore>, prefix: &str) -> Bucket {
        let prefix = prefix.trim_matches('/');
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            store
        } else {
            Arc::new(PrefixStore::new(store, prefix))
        };
        Bucket { store }
    }

    /// The underlying store (already below the prefix).
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    fn key(rel: &str) -> Result<Key, ObjError> {
        Key::parse(rel).map_err(|e| ObjError::Key {
            key: rel.to_owned(),
            message: e.to_string(),
        })
    }

    /// Stores `bytes` at `rel` with `headers`, replacing any object there.
    ///
    /// # Errors
    /// [`ObjError`].
    pub async fn put(&self, rel: &str, bytes: Bytes, headers: &Headers) -> Result<(), ObjError> {
        let opts = PutOptions {
            attributes: headers.attributes(),
            ..PutOptions::default()
        };
        self.store
            .put_opts(&Self::key(rel)?, PutPayload::from(bytes), opts)
            .await?;
        Ok(())
    }

    /// Stores the local file `path` at `rel` with `headers`: one `PUT` up to 16 MiB, a
    /// multipart upload above (so a multi-GB snapshot is streamed, not loaded). Returns
    /// the bytes sent.
    ///
    /// # Errors
    /// [`ObjError::Io`] when the file cannot be read; [`ObjError::Store`].
    pub async fn put_file(
        &self,
        rel: &str,
        path: &Path,
        headers: &Headers,
    ) -> Result<u64, ObjError> {
        let io = |source| ObjError::Io {
            path: path.display().to_string(),
            source,
        };
        let len = tokio::fs::metadata(path).await.map_err(io)?.len();
        if len <= SINGLE_PUT_BYTES as u64 {
            let bytes = tokio::fs::read(path).await.map_err(io)?;
            let sent = bytes.len() as u64;
            self.put(rel, Bytes::from(bytes), headers).await?;
            return Ok(sent);
        }
        let mut file = tokio::fs::File::open(path).await.map_err(io)?;
        let mut writer = object_store::buffered::BufWriter::with_capacity(
            self.store.clone(),
            Self::key(rel)?,
            SINGLE_PUT_BYTES,
        )
        .with_attributes(headers.attributes());
        let copied = tokio::io::copy(&mut file, &mut writer).await;
        match copied {
            Ok(n) => {
                writer.shutdown().await.map_err(|e| store_io(rel, e))?;
                Ok(n)
            }
            Err(e) => {
                let _ = writer.abort().await;
                Err(store_io(rel, e))
            }
        }
    }

    /// Deletes the object at `rel`; a missing object is not an error.
    ///
    /// # Errors
    /// [`ObjError`].
    pub async fn delete(&self, rel: &str) -> Result<(), ObjError> {
        match self.store.delete(&Self::key(rel)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every object whose key starts with the folder `under` (`""`: all), keys relative
    /// to the prefix.
    ///
    /// # Errors
    /// [`ObjError`].
    pub async fn list(&self, under: &str) -> Result<Vec<Remote>, ObjError> {
        let folder = if under.is_empty() {
            None
        } else {
            Some(Self::key(under)?)
        };
        let metas: Vec<object_store::ObjectMeta> =
            self.store.list(folder.as_ref()).try_collect().await?;
        Ok(metas
            .into_iter()
            .map(|m| Remote {
                key: m.location.to_string(),
                size: m.size,
                e_tag: m.e_tag.map(|t| t.trim_matches('"').to_owned()),
            })
            .collect())
    }

    /// The object's bytes.
    ///
    /// # Errors
    /// [`ObjError`] (`object_store::Error::NotFound` inside when it is missing).
    pub async fn get(&self, rel: &str) -> Result<Bytes, ObjError> {
        Ok(self.store.get(&Self::key(rel)?).await?.bytes().await?)
    }
}

/// `BufWriter` reports store errors as `io::Error`.
fn store_io(rel: &str, source: std::io::Error) -> ObjError {
    ObjError::Upload {
        key: rel.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(endpoint: &str) -> S3Config {
        S3Config {
            endpoint: endpoint.into(),
            bucket: "b".into(),
            region: "us-east-1".into(),
            prefix: "".into(),
            access_key_id: "k".into(),
            secret_access_key: "s".into(),
        }
    }

    #[test]
    fn endpoints_are_checked() {
        assert_eq!(S3Config::default().problem(), None, "off is fine");
        for ok in [
            "",
            "https://acc.r2.cloudflarestorage.com",
            "http://127.0.0.1:9000",
            "http://localhost:5000/",
            "http://[::1]:9000",
        ] {
            assert_eq!(config(ok).problem(), None, "{ok}");
        }
        for bad in ["http://10.0.0.5:9000", "ftp://x", "not a url"] {
            let (field, _) = config(bad).problem().expect(bad);
            assert_eq!(field, "endpoint", "{bad}");
        }
        let mut half = config("");
        half.secret_access_key.clear();
        assert_eq!(half.problem().map(|p| p.0), Some("secret_access_key"));
        let mut dots = config("");
        dots.prefix = "a/../b".into();
        assert_eq!(dots.problem().map(|p| p.0), Some("prefix"));
    }

    #[test]
    fn secrets_are_not_debug_printed() {
        let c = config("");
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("\"k\"") && !shown.contains("\"s\""),
            "{shown}"
        );
    }
}

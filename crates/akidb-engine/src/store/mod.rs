//! Object-store wiring: turns a configured URL into an [`ObjectStore`].
//!
//! - `file://DIR` (or a plain path): the local filesystem, with fsync on every write, so a
//!   stored manifest is durable when the put returns. The embedded default is
//!   `<data dir>/objects`.
//! - `s3://BUCKET/PREFIX`: AWS S3 or any S3-compatible server (MinIO, SeaweedFS, ...).
//!   Endpoint, region and credentials come from [`S3Options`] or, where unset, the usual
//!   `AWS_*` environment variables (`AWS_ENDPOINT`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
//!   `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_ALLOW_HTTP`). An `http://` endpoint is
//!   allowed (loopback test servers). Path-style requests; create-only puts use
//!   `If-None-Match: *`.
//! - `memory://`: in RAM, for tests (not durable).
//!
//! # Retries
//! object_store retries each HTTP request itself. AkiDB keeps those retries short
//! ([`REQUEST_MAX_RETRIES`] within [`REQUEST_RETRY_TIMEOUT`]) so that a failing request
//! surfaces quickly; whole operations are retried by the caller. One owner per retry level:
//! attempts do not multiply into minutes.

use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ClientOptions, RetryConfig};

use crate::error::EngineError;

pub mod classify;
pub mod faulty;
pub mod observed;

/// Retries object_store makes of one HTTP request before giving up.
pub const REQUEST_MAX_RETRIES: usize = 2;
/// Longest object_store keeps retrying one request.
pub const REQUEST_RETRY_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest one HTTP request may take (large segment uploads go as several requests).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// S3 settings that override the `AWS_*` environment variables.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Allow plain-HTTP endpoints. Defaults to true when the endpoint starts with `http://`.
    pub allow_http: Option<bool>,
}

impl S3Options {
    /// Settings for one S3-compatible server with static credentials (region `us-east-1`,
    /// plain HTTP allowed when the endpoint is `http://`): loopback servers in tests and tools.
    pub fn static_credentials(
        endpoint: &str,
        access_key_id: &str,
        secret_access_key: &str,
    ) -> S3Options {
        S3Options {
            endpoint: Some(endpoint.to_string()),
            region: Some("us-east-1".into()),
            access_key_id: Some(access_key_id.to_string()),
            secret_access_key: Some(secret_access_key.to_string()),
            allow_http: Some(endpoint.starts_with("http://")),
        }
    }
}

pub fn open_store(url: &str, s3: &S3Options) -> Result<Arc<dyn ObjectStore>, EngineError> {
    if url == "memory://" || url == "memory:///" {
        return Ok(Arc::new(InMemory::new()));
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        return open_s3(url, rest, s3);
    }
    let dir = url.strip_prefix("file://").unwrap_or(url);
    if dir.contains("://") {
        return Err(EngineError::InvalidConfig(format!(
            "object store url {url:?}: supported schemes are file://, s3:// and memory://"
        )));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| EngineError::InvalidConfig(format!("object store directory {dir:?}: {e}")))?;
    let fs = LocalFileSystem::new_with_prefix(dir)
        .map_err(|e| EngineError::InvalidConfig(format!("object store directory {dir:?}: {e}")))?
        .with_fsync(true)
        .with_automatic_cleanup(true);
    Ok(Arc::new(fs))
}

fn open_s3(url: &str, rest: &str, s3: &S3Options) -> Result<Arc<dyn ObjectStore>, EngineError> {
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(EngineError::InvalidConfig(format!(
            "object store url {url:?}: no bucket; use s3://BUCKET/PREFIX"
        )));
    }
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_conditional_put(S3ConditionalPut::ETagMatch)
        .with_retry(RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: REQUEST_MAX_RETRIES,
            retry_timeout: REQUEST_RETRY_TIMEOUT,
        })
        .with_client_options(ClientOptions::new().with_timeout(REQUEST_TIMEOUT))
        .with_http_connector(observed::ObservingConnector);
    if let Some(endpoint) = &s3.endpoint {
        builder = builder.with_endpoint(endpoint);
        if s3.allow_http.is_none() && endpoint.starts_with("http://") {
            builder = builder.with_allow_http(true);
        }
    }
    if let Some(allow) = s3.allow_http {
        builder = builder.with_allow_http(allow);
    }
    if let Some(region) = &s3.region {
        builder = builder.with_region(region);
    }
    if let Some(key) = &s3.access_key_id {
        builder = builder.with_access_key_id(key);
    }
    if let Some(secret) = &s3.secret_access_key {
        builder = builder.with_secret_access_key(secret);
    }
    let store = builder
        .build()
        .map_err(|e| EngineError::InvalidConfig(format!("object store url {url:?}: {e}")))?;
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        Ok(Arc::new(store))
    } else {
        Ok(Arc::new(PrefixStore::new(store, Path::from(prefix))))
    }
}

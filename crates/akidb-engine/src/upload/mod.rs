//! The one door to the object store.
//!
//! Every call to the store (get, head, list, put, create-only put, delete) goes through the
//! [`Uploader`]; nothing else holds the raw store. Every call gets the same classified retries,
//! the same circuit breaker and the same counters. Uploads also get:
//!
//! - **bounded parallelism**: at most `max_in_flight` uploads at once across all collections
//!   (a semaphore); a flush uploads its segments in parallel under that bound;
//! - **multipart** for objects over `multipart_threshold`, in `multipart_part_size` parts with
//!   at most `multipart_concurrency` parts in flight; a failed multipart upload is aborted;
//! - **retries** of whole operations (every call) with exponential backoff and jitter, classified by error
//!   kind and S3 status/code ([`retry`], [`crate::store::classify`]);
//! - a **circuit breaker** ([`breaker`]) consulted before every attempt;
//! - the **dead-letter queue** ([`dlq`]) for permanent failures.
//!
//! Every call is a `tracing` span named `object_store.<op>` (a child of whatever request,
//! tier move or flush made it) with the object's `path`, the `bytes` moved and the `retries`
//! it took: with `--otlp-endpoint` set these become the client spans of a trace.
//!
//! Batching (many small writes become few larger objects) is the flush policy: a collection's
//! writes accumulate in its WAL and memtable until `flush_max_docs` of them, or a timer, seal
//! them; a flush cuts them into segments of at most `flush_max_docs` rows.

pub mod breaker;
pub mod dlq;
pub mod retry;

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    GetOptions, ListResult, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions,
    PutPayload, WriteMultipart,
};
use parking_lot::Mutex;
use tokio::sync::Semaphore;

use self::breaker::Breaker;
use self::retry::{Attempts, RetryError, RetryPolicy, retry};

/// Uploads in flight at once, across all collections.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 8;
/// The most `max_in_flight` may be set to.
pub const MAX_MAX_IN_FLIGHT: usize = 64;
/// Objects larger than this go as multipart uploads.
pub const DEFAULT_MULTIPART_THRESHOLD: usize = 32 * 1024 * 1024;
/// Size of each multipart part (S3's minimum is 5 MiB).
pub const DEFAULT_MULTIPART_PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts of one multipart upload in flight at once.
pub const DEFAULT_MULTIPART_CONCURRENCY: usize = 4;

#[derive(Debug, Clone)]
pub struct UploadConfig {
    pub max_in_flight: usize,
    pub multipart_threshold: usize,
    pub multipart_part_size: usize,
    pub multipart_concurrency: usize,
    pub retry: RetryPolicy,
    pub breaker_failure_threshold: u32,
    pub breaker_cool_down: Duration,
}

impl Default for UploadConfig {
    fn default() -> Self {
        UploadConfig {
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            multipart_threshold: DEFAULT_MULTIPART_THRESHOLD,
            multipart_part_size: DEFAULT_MULTIPART_PART_SIZE,
            multipart_concurrency: DEFAULT_MULTIPART_CONCURRENCY,
            retry: RetryPolicy::default(),
            breaker_failure_threshold: breaker::DEFAULT_FAILURE_THRESHOLD,
            breaker_cool_down: breaker::DEFAULT_COOL_DOWN,
        }
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct UploadStats {
    pub uploads: AtomicU64,
    pub bytes: AtomicU64,
    /// Attempts beyond the first.
    pub retries: AtomicU64,
    pub failures_transient: AtomicU64,
    pub failures_permanent: AtomicU64,
    pub breaker_rejections: AtomicU64,
    /// Sum of upload durations, in microseconds (with `uploads`, the mean).
    pub upload_micros: AtomicU64,
    pub multipart_uploads: AtomicU64,
    /// Objects deleted (replaced graphs, compacted segments, orphans, deleted collections).
    pub deletes: AtomicU64,
    /// Successful gets and heads.
    pub reads: AtomicU64,
    /// Successful GET requests, whole and ranged (each range is a request of its own).
    pub gets: AtomicU64,
    /// Bytes those GETs returned.
    pub get_bytes: AtomicU64,
    /// Successful listings.
    pub lists: AtomicU64,
}

pub struct Uploader {
    store: Arc<dyn ObjectStore>,
    config: UploadConfig,
    breaker: Arc<Mutex<Breaker>>,
    permits: Arc<Semaphore>,
    pub stats: UploadStats,
    seed: AtomicU64,
}

impl Uploader {
    pub fn new(store: Arc<dyn ObjectStore>, mut config: UploadConfig) -> Uploader {
        config.max_in_flight = config.max_in_flight.clamp(1, MAX_MAX_IN_FLIGHT);
        config.multipart_part_size = config.multipart_part_size.max(5 * 1024 * 1024);
        Uploader {
            breaker: Arc::new(Mutex::new(Breaker::new(
                config.breaker_failure_threshold,
                config.breaker_cool_down,
            ))),
            permits: Arc::new(Semaphore::new(config.max_in_flight)),
            store,
            config,
            stats: UploadStats::default(),
            seed: AtomicU64::new(0x9e37_79b9_7f4a_7c15),
        }
    }

    /// What the store is (its `Display`: kind and bucket or root), for logs and identity.
    pub fn describe(&self) -> String {
        self.store.to_string()
    }

    pub fn breaker_open(&self) -> bool {
        self.breaker.lock().is_open()
    }

    pub fn breaker_opened_total(&self) -> u64 {
        self.breaker.lock().opened
    }

    fn next_seed(&self) -> u64 {
        self.seed
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
    }

    fn account<T>(&self, attempts: &Attempts, result: &Result<T, RetryError>) {
        self.count_retries(attempts);
        match result {
            Ok(_) => {}
            Err(RetryError::Permanent { .. }) => {
                self.stats
                    .failures_permanent
                    .fetch_add(1, Ordering::Relaxed);
            }
            Err(RetryError::Exhausted { .. }) => {
                self.stats
                    .failures_transient
                    .fetch_add(1, Ordering::Relaxed);
            }
            Err(RetryError::BreakerOpen) => {
                self.stats
                    .breaker_rejections
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Runs one store call with the classified retries and the circuit breaker every call
    /// goes through, and counts it (a `NotFound` is an answer, not a failure).
    async fn call<T, F, Fut>(&self, op: F) -> Result<T, RetryError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, object_store::Error>>,
    {
        let (result, attempts) =
            retry(&self.config.retry, &self.breaker, self.next_seed(), op).await;
        match &result {
            Err(RetryError::Permanent {
                source: object_store::Error::NotFound { .. },
                ..
            }) => self.count_retries(&attempts),
            _ => self.account(&attempts, &result),
        }
        result
    }

    /// Counts the attempts beyond the first, and records them on the call's span.
    fn count_retries(&self, attempts: &Attempts) {
        let retries = attempts.count.saturating_sub(1) as u64;
        self.stats.retries.fetch_add(retries, Ordering::Relaxed);
        tracing::Span::current().record("retries", retries);
    }

    /// An object's bytes.
    #[tracing::instrument(name = "object_store.get", skip_all, fields(otel.kind = "client", %path, bytes, retries))]
    pub async fn get(&self, path: &Path) -> Result<Bytes, RetryError> {
        let result = self
            .call(|| async { self.store.get(path).await?.bytes().await })
            .await;
        self.count_get(&result);
        result
    }

    /// An object's bytes as a stream, for copies too large to hold in RAM: the GET is opened
    /// with the retries and breaker of every call and counted; its bytes are counted as they
    /// arrive. A stream that breaks part-way is the caller's to open again.
    #[tracing::instrument(name = "object_store.get_stream", skip_all, fields(otel.kind = "client", %path, retries))]
    pub async fn get_stream(
        &self,
        path: &Path,
    ) -> Result<BoxStream<'_, object_store::Result<Bytes>>, RetryError> {
        let opened = self.call(|| self.store.get(path)).await?;
        self.stats.reads.fetch_add(1, Ordering::Relaxed);
        self.stats.gets.fetch_add(1, Ordering::Relaxed);
        Ok(opened
            .into_stream()
            .inspect_ok(|chunk| {
                self.stats
                    .get_bytes
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            })
            .boxed())
    }

    /// Bytes `range` of an object: one GET with a `Range` header, retried and counted like
    /// every call. Callers plan ranges from sizes they know (the manifest's): a range past the
    /// end is refused with 416 by S3 (permanent) but by `memory://` and `file://` with an error
    /// object_store does not expose, which is retried like any unknown one.
    #[tracing::instrument(name = "object_store.get_range", skip_all, fields(otel.kind = "client", %path, offset = range.start, bytes, retries))]
    pub async fn get_range(&self, path: &Path, range: Range<u64>) -> Result<Bytes, RetryError> {
        let result = self
            .call(|| async {
                let options = GetOptions::new().with_range(Some(range.clone()));
                self.store.get_opts(path, options).await?.bytes().await
            })
            .await;
        self.count_get(&result);
        result
    }

    /// Several ranges of one object, one GET each, all in flight at once. Not `object_store`'s
    /// `get_ranges`: that merges ranges up to 1 MiB apart and splits large ones into requests
    /// these counters and the retry policy would not see; a caller that wants ranges merged
    /// plans them so.
    pub async fn get_ranges(
        &self,
        path: &Path,
        ranges: &[Range<u64>],
    ) -> Result<Vec<Bytes>, RetryError> {
        futures::future::try_join_all(ranges.iter().map(|r| self.get_range(path, r.clone()))).await
    }

    fn count_get(&self, result: &Result<Bytes, RetryError>) {
        if let Ok(bytes) = result {
            tracing::Span::current().record("bytes", bytes.len());
            self.stats.reads.fetch_add(1, Ordering::Relaxed);
            self.stats.gets.fetch_add(1, Ordering::Relaxed);
            self.stats
                .get_bytes
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        }
    }

    /// An object's metadata (whether it exists: `NotFound` otherwise).
    #[tracing::instrument(name = "object_store.head", skip_all, fields(otel.kind = "client", %path, retries))]
    pub async fn head(&self, path: &Path) -> Result<ObjectMeta, RetryError> {
        let result = self.call(|| self.store.head(path)).await;
        if result.is_ok() {
            self.stats.reads.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Every object under `prefix`.
    #[tracing::instrument(name = "object_store.list", skip_all, fields(otel.kind = "client", path = %prefix, retries))]
    pub async fn list(&self, prefix: &Path) -> Result<Vec<ObjectMeta>, RetryError> {
        use futures::TryStreamExt;
        let result = self
            .call(|| self.store.list(Some(prefix)).try_collect())
            .await;
        if result.is_ok() {
            self.stats.lists.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// The objects and common prefixes directly under `prefix` (one level).
    #[tracing::instrument(name = "object_store.list", skip_all, fields(otel.kind = "client", path = %prefix, retries))]
    pub async fn list_with_delimiter(&self, prefix: &Path) -> Result<ListResult, RetryError> {
        let result = self
            .call(|| self.store.list_with_delimiter(Some(prefix)))
            .await;
        if result.is_ok() {
            self.stats.lists.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Deletes an object (one that is already gone counts as deleted), with the same retries,
    /// breaker and counters as uploads.
    #[tracing::instrument(name = "object_store.delete", skip_all, fields(otel.kind = "client", %path, retries))]
    pub async fn delete(&self, path: &Path) -> Result<(), RetryError> {
        let (result, attempts) = retry(
            &self.config.retry,
            &self.breaker,
            self.next_seed(),
            || async move {
                match self.store.delete(path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(e),
                }
            },
        )
        .await;
        self.account(&attempts, &result);
        if result.is_ok() {
            self.stats.deletes.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Stores an immutable object (a segment), retrying transient failures. Idempotent:
    /// segment keys are unique, so a retry after a lost response rewrites identical bytes.
    #[tracing::instrument(name = "object_store.put", skip_all, fields(otel.kind = "client", %path, bytes = data.len(), retries))]
    pub async fn put_object(&self, path: &Path, data: Bytes) -> Result<(), RetryError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore never closed");
        let started = tokio::time::Instant::now();
        let len = data.len();
        let multipart = len > self.config.multipart_threshold;
        let (result, attempts) = retry(&self.config.retry, &self.breaker, self.next_seed(), || {
            let data = data.clone();
            async move {
                if multipart {
                    self.put_multipart(path, data).await
                } else {
                    self.store
                        .put(path, PutPayload::from(data))
                        .await
                        .map(|_| ())
                }
            }
        })
        .await;
        self.account(&attempts, &result);
        if result.is_ok() {
            self.stats.uploads.fetch_add(1, Ordering::Relaxed);
            self.stats.bytes.fetch_add(len as u64, Ordering::Relaxed);
            self.stats
                .upload_micros
                .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            if multipart {
                self.stats.multipart_uploads.fetch_add(1, Ordering::Relaxed);
            }
        }
        result
    }

    async fn put_multipart(&self, path: &Path, data: Bytes) -> object_store::Result<()> {
        let upload = self.store.put_multipart(path).await?;
        let mut writer =
            WriteMultipart::new_with_chunk_size(upload, self.config.multipart_part_size);
        for chunk in data.chunks(self.config.multipart_part_size) {
            if let Err(e) = writer
                .wait_for_capacity(self.config.multipart_concurrency)
                .await
            {
                // Abort so the store does not keep (and bill for) the uploaded parts.
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(%path, error = %abort, "aborting a failed multipart upload failed");
                }
                return Err(e);
            }
            writer.put(data.slice_ref(chunk));
        }
        // `finish` aborts the upload itself when a part or the completion fails.
        writer.finish().await.map(|_| ())
    }

    /// Commits an object with a create-only put (manifests). If the object exists with the
    /// same bytes, an earlier attempt succeeded and lost its response: that is success.
    #[tracing::instrument(name = "object_store.put", skip_all, fields(otel.kind = "client", %path, bytes = data.len(), retries))]
    pub async fn put_create_only(&self, path: &Path, data: Bytes) -> Result<(), RetryError> {
        let (result, attempts) = retry(&self.config.retry, &self.breaker, self.next_seed(), || {
            let data = data.clone();
            async move {
                let opts = PutOptions {
                    mode: PutMode::Create,
                    ..Default::default()
                };
                match self
                    .store
                    .put_opts(path, PutPayload::from(data.clone()), opts)
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(object_store::Error::AlreadyExists { path: p, source }) => {
                        let existing = self.store.get(path).await?.bytes().await?;
                        if existing == data {
                            Ok(())
                        } else {
                            Err(object_store::Error::AlreadyExists { path: p, source })
                        }
                    }
                    Err(e) => Err(e),
                }
            }
        })
        .await;
        self.account(&attempts, &result);
        result
    }
}

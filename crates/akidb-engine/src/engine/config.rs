//! The engine's configuration: every knob with its default and unit, and [`EngineConfig::validate`],
//! the one place that checks ranges (the server calls it; so does [`super::Engine::open`]).

use std::path::PathBuf;
use std::time::Duration;

use akidb_core::HnswParams;

use crate::store::S3Options;
use crate::tier::PolicyConfig;
use crate::upload::UploadConfig;

/// Engine configuration. Every field has a named default below.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Local directory for WALs (and, by default, the object store).
    pub data_dir: PathBuf,
    /// Object store URL; `None` means `file://<data_dir>/objects`.
    pub object_store: Option<String>,
    /// S3 settings for `s3://` URLs (unset fields come from `AWS_*` variables).
    pub s3: S3Options,
    /// Flush a collection once this many documents and deletes are unflushed.
    pub flush_max_docs: usize,
    /// Flush a collection whose last write is this old.
    pub flush_idle: Duration,
    /// Flush a collection whose oldest unflushed write is this old.
    pub flush_max_age: Duration,
    /// Vectors the indexer inserts per lock acquisition.
    pub index_chunk: usize,
    /// HNSW parameters for collections created without their own.
    pub default_index: HnswParams,
    /// Uploads: parallelism, multipart, retries, circuit breaker.
    pub upload: UploadConfig,
    /// Largest amount of WAL kept on local disk, across collections, before writes are
    /// refused with backpressure (503 + Retry-After). It bounds local disk use while the
    /// object store is unreachable.
    pub wal_budget_bytes: u64,
    /// Run the background flusher (the size and timer triggers). Tests that drive flushes
    /// themselves turn it off so that two flushes never race for the same faults.
    pub background_flush: bool,
    /// Automatic tier moves (idle times, access rate, RAM and disk budgets).
    pub tiering: TieringConfig,
    /// Writes are refused (507 `insufficient_storage`) while the data directory's disk has
    /// less than this many bytes free, so that a flush always has room to free WAL space.
    /// 0 turns the guard off.
    pub min_free_disk_bytes: u64,
    /// WAL files open at once, across collections (least recently used ones are closed).
    pub max_open_files: usize,
    /// How often, at most, the catalog checkpoint is written again when collections changed
    /// (it is also written at shutdown). It makes a start read one object instead of a
    /// manifest per collection.
    pub checkpoint_interval: Duration,
    /// FOR TESTING ONLY: wrap the object store in a [`FaultyStore`] with these faults, so the
    /// load tool can measure behaviour under latency and failures. Never set in production.
    pub test_faults: Option<TestFaults>,
}

/// Faults injected into every object-store call (testing only; see [`EngineConfig::test_faults`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TestFaults {
    /// Added before every call.
    pub latency: Duration,
    /// Probability that a call fails with a transient 503 SlowDown.
    pub fail_rate: f64,
    /// Seed of the failure draws.
    pub seed: u64,
}

/// The tiering task's settings.
#[derive(Debug, Clone)]
pub struct TieringConfig {
    /// The rules; see [`PolicyConfig`] for each knob and its default.
    pub policy: PolicyConfig,
    /// How often the policy runs. Default 5 s.
    pub interval: Duration,
    /// Run the policy in the background (manual moves work either way). Default on.
    pub enabled: bool,
    /// Objects under a collection's `segments/` that no manifest names are deleted once they
    /// are this old (a crash between an upload and its manifest leaves them). Default 1 hour:
    /// far longer than any flush, so an upload whose manifest is still coming is never taken.
    pub orphan_grace: Duration,
}

impl Default for TieringConfig {
    fn default() -> Self {
        TieringConfig {
            policy: PolicyConfig::default(),
            interval: Duration::from_secs(5),
            enabled: true,
            orphan_grace: Duration::from_secs(3600),
        }
    }
}

pub const DEFAULT_WAL_BUDGET_BYTES: u64 = 1024 * 1024 * 1024;
pub const DEFAULT_MIN_FREE_DISK_BYTES: u64 = 256 * 1024 * 1024;
pub const DEFAULT_MAX_OPEN_FILES: usize = 512;
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(300);

pub const DEFAULT_FLUSH_MAX_DOCS: usize = 50_000;
pub const DEFAULT_FLUSH_IDLE: Duration = Duration::from_secs(10);
pub const DEFAULT_FLUSH_MAX_AGE: Duration = Duration::from_secs(300);
pub const DEFAULT_INDEX_CHUNK: usize = 32;

impl EngineConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        EngineConfig {
            data_dir: data_dir.into(),
            object_store: None,
            s3: S3Options::default(),
            flush_max_docs: DEFAULT_FLUSH_MAX_DOCS,
            flush_idle: DEFAULT_FLUSH_IDLE,
            flush_max_age: DEFAULT_FLUSH_MAX_AGE,
            index_chunk: DEFAULT_INDEX_CHUNK,
            default_index: HnswParams::default(),
            upload: UploadConfig::default(),
            wal_budget_bytes: DEFAULT_WAL_BUDGET_BYTES,
            background_flush: true,
            tiering: TieringConfig::default(),
            min_free_disk_bytes: DEFAULT_MIN_FREE_DISK_BYTES,
            max_open_files: DEFAULT_MAX_OPEN_FILES,
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
            test_faults: None,
        }
    }
}

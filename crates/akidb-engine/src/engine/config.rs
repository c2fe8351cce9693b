//! The engine's configuration: every knob with its default and unit, and [`EngineConfig::validate`],
//! the one place that checks ranges (the server calls it; so does [`super::Engine::open`]).

use std::path::PathBuf;
use std::time::Duration;

use akidb_core::HnswParams;

use crate::error::EngineError;
use crate::store::S3Options;
use crate::tier::PolicyConfig;
use crate::upload::{MAX_MAX_IN_FLIGHT, UploadConfig};

/// S3 rejects multipart parts below 5 MiB, so smaller thresholds cannot work against it.
pub const MIN_MULTIPART_THRESHOLD: usize = 5 * 1024 * 1024;

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
    /// Threads that plan graph insertions in parallel (the indexer, compaction). Default: every
    /// core. The graph is the same for any number.
    pub index_threads: usize,
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
    /// The partitioned base: when a collection gets one, and how a base is built.
    pub partitions: PartitionConfig,
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

impl std::str::FromStr for TestFaults {
    type Err = String;

    /// Parses `latency_ms=50,fail_rate=0.1,seed=7` (every key optional).
    fn from_str(spec: &str) -> Result<TestFaults, String> {
        let mut f = TestFaults {
            latency: Duration::ZERO,
            fail_rate: 0.0,
            seed: 1,
        };
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("test_faults: {part:?} is not key=value"))?;
            let bad = || format!("test_faults: bad value for {key}: {value:?}");
            match key {
                "latency_ms" => {
                    f.latency = Duration::from_millis(value.parse().map_err(|_| bad())?)
                }
                "fail_rate" => {
                    let rate: f64 = value.parse().map_err(|_| bad())?;
                    if !(0.0..=1.0).contains(&rate) {
                        return Err("test_faults: fail_rate must be in 0..=1".into());
                    }
                    f.fail_rate = rate;
                }
                "seed" => f.seed = value.parse().map_err(|_| bad())?,
                _ => {
                    return Err(format!(
                        "test_faults: unknown key {key:?} (latency_ms, fail_rate, seed)"
                    ));
                }
            }
        }
        Ok(f)
    }
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

/// The partitioned base (see the engine's `partitioned` module): a warm or cold query reads
/// only its header and the partitions nearest the query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PartitionConfig {
    /// A collection gets a base once it holds this many sealed rows (slots); below, a warm or
    /// cold read loads the whole collection, which at this size is quick. Default 50,000.
    pub min_rows: usize,
    /// The base is rebuilt once the rows sealed after it (read whole by every warm or cold
    /// query) reach this share of all sealed rows. Default 0.1.
    pub tail_fraction: f64,
    /// Threads a base build uses (k-means training and assignment). Default: every core.
    pub threads: usize,
    /// Local disk for the ranges of partitioned bases that cold queries fetched, across all
    /// collections (least recently used out). Default 4 GiB.
    pub cache_disk_budget_bytes: u64,
}

impl Default for PartitionConfig {
    fn default() -> Self {
        PartitionConfig {
            min_rows: 50_000,
            tail_fraction: 0.1,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cache_disk_budget_bytes: 4 << 30,
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
    /// Checks every range in one place; the message names the setting by its configuration key
    /// (`flush_max_docs`, `hnsw_m`, ...). [`super::Engine::open`] calls it, and so does the server
    /// before it binds its port, so a bad value stops a start with one clear line.
    pub fn validate(&self) -> Result<(), EngineError> {
        let i = &self.default_index;
        let u = &self.upload;
        let p = &self.tiering.policy;
        let checks = [
            (
                self.flush_max_docs >= 1,
                "flush_max_docs must be at least 1",
            ),
            (self.index_chunk >= 1, "index_chunk must be at least 1"),
            (
                (1..=256).contains(&self.index_threads),
                "index_threads must be between 1 and 256",
            ),
            ((2..=128).contains(&i.m), "hnsw_m must be between 2 and 128"),
            (
                (1..=10_000).contains(&i.ef_construction),
                "hnsw_ef_construction must be between 1 and 10000",
            ),
            (
                (1..=10_000).contains(&i.ef_search),
                "hnsw_ef_search must be between 1 and 10000",
            ),
            (
                (1..=MAX_MAX_IN_FLIGHT).contains(&u.max_in_flight),
                "upload_max_in_flight must be between 1 and 64",
            ),
            (
                u.multipart_threshold >= MIN_MULTIPART_THRESHOLD,
                "upload_multipart_threshold_bytes must be at least 5 MiB (S3's smallest part)",
            ),
            (
                u.retry.max_attempts >= 1,
                "upload_max_attempts must be at least 1",
            ),
            (
                u.breaker_failure_threshold >= 1,
                "breaker_failure_threshold must be at least 1",
            ),
            (
                self.max_open_files >= 1,
                "max_open_files must be at least 1",
            ),
            (
                !self.checkpoint_interval.is_zero(),
                "catalog_checkpoint_interval must be more than 0",
            ),
            (
                !self.tiering.interval.is_zero(),
                "tier_interval must be more than 0",
            ),
            (
                p.promote_window_ms > 0,
                "tier_promote_window must be more than 0",
            ),
            (
                self.partitions.min_rows >= 1,
                "partition_min_rows must be at least 1",
            ),
            (
                self.partitions.tail_fraction > 0.0 && self.partitions.tail_fraction <= 1.0,
                "partition_tail_fraction must be more than 0 and at most 1",
            ),
            (
                (1..=256).contains(&self.partitions.threads),
                "partition_threads must be between 1 and 256",
            ),
        ];
        match checks.into_iter().find(|(ok, _)| !ok) {
            Some((_, message)) => Err(EngineError::InvalidConfig(message.to_string())),
            None => Ok(()),
        }
    }

    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        EngineConfig {
            data_dir: data_dir.into(),
            object_store: None,
            s3: S3Options::default(),
            flush_max_docs: DEFAULT_FLUSH_MAX_DOCS,
            flush_idle: DEFAULT_FLUSH_IDLE,
            flush_max_age: DEFAULT_FLUSH_MAX_AGE,
            index_chunk: DEFAULT_INDEX_CHUNK,
            index_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            default_index: HnswParams::default(),
            upload: UploadConfig::default(),
            wal_budget_bytes: DEFAULT_WAL_BUDGET_BYTES,
            background_flush: true,
            tiering: TieringConfig::default(),
            min_free_disk_bytes: DEFAULT_MIN_FREE_DISK_BYTES,
            max_open_files: DEFAULT_MAX_OPEN_FILES,
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
            partitions: PartitionConfig::default(),
            test_faults: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_names_the_key_out_of_range() {
        assert!(EngineConfig::new("d").validate().is_ok());
        let mut c = EngineConfig::new("d");
        c.default_index.m = 1;
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("hnsw_m"), "{err}");
        let mut c = EngineConfig::new("d");
        c.upload.multipart_threshold = 1024;
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("upload_multipart_threshold"), "{err}");
        let mut c = EngineConfig::new("d");
        c.tiering.interval = Duration::ZERO;
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("tier_interval"), "{err}");
        c.tiering.interval = Duration::from_millis(50);
        assert!(
            c.validate().is_ok(),
            "sub-second intervals are fine (tests use them)"
        );
    }

    #[test]
    fn test_faults_parse_and_reject() {
        let f: TestFaults = "latency_ms=50, fail_rate=0.25,seed=9".parse().unwrap();
        assert_eq!(f.latency, Duration::from_millis(50));
        assert_eq!(f.fail_rate, 0.25);
        assert_eq!(f.seed, 9);
        assert!("fail_rate=2".parse::<TestFaults>().is_err());
        assert!("latency=5".parse::<TestFaults>().is_err());
        assert!("latency_ms".parse::<TestFaults>().is_err());
    }
}

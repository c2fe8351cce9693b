//! Server configuration: defaults, then a TOML file, then `AKIDB_*` environment variables,
//! then command-line flags, each overriding the one before.
//!
//! | key (TOML / flag `--key-with-dashes` / env `AKIDB_KEY`) | unit | default |
//! |---|---|---|
//! | `listen` | host:port (port 0 picks a free port) | `127.0.0.1:8080` |
//! | `data_dir` | path | `./akidb-data` |
//! | `object_store` | URL: `file://DIR`, `s3://BUCKET/PREFIX`, `memory://` | `file://<data_dir>/objects` |
//! | `s3_endpoint` | URL, e.g. `http://127.0.0.1:9000` | `AWS_ENDPOINT`, else AWS |
//! | `s3_region` | region name | `AWS_REGION`, else `us-east-1` |
//! | `s3_access_key_id`, `s3_secret_access_key` | credentials | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` |
//! | `s3_allow_http` | bool | true for an `http://` endpoint, else false |
//! | `max_body_bytes` | bytes | 134217728 (128 MiB) |
//! | `flush_max_docs` | documents | 50000 |
//! | `flush_idle_secs` | seconds | 10 |
//! | `flush_max_age_secs` | seconds | 300 |
//! | `index_chunk` | vectors per indexer lock | 32 |
//! | `hnsw_m` | links per node | 16 |
//! | `hnsw_ef_construction` | candidates | 200 |
//! | `hnsw_ef_search` | candidates | 24 (`akidb_core::index::DEFAULT_EF_SEARCH`) |
//! | `upload_max_in_flight` | uploads at once, 1..=64 | 8 |
//! | `upload_multipart_threshold_bytes` | bytes | 33554432 (32 MiB) |
//! | `upload_max_attempts` | attempts per upload, the first included | 6 |
//! | `breaker_failure_threshold` | consecutive transient failures | 5 |
//! | `breaker_cool_down_secs` | seconds | 5 |
//! | `wal_budget_bytes` | bytes of unflushed WAL, all collections | 1073741824 (1 GiB) |
//! | `min_free_disk_bytes` | writes get 507 below this much free disk (0 = off) | 268435456 (256 MiB) |
//! | `max_open_files` | WAL files open at once (LRU closed beyond) | half the open-file limit, at least 16 |
//! | `worker_threads` | async runtime threads | the number of cores |
//! | `max_blocking_threads` | threads for blocking work (fsync, search, Parquet) | 64 |
//! | `catalog_checkpoint_interval_secs` | the catalog checkpoint is rewritten at most this often when collections changed (and at shutdown) | 300 |
//! | `tiering` | run the tiering policy in the background | true |
//! | `tier_interval_secs` | seconds between policy runs | 5 |
//! | `tier_hot_idle_secs` | a hot collection idle this long goes warm (0 = never) | 600 |
//! | `tier_warm_idle_secs` | a warm collection idle this long goes cold (0 = never) | 3600 |
//! | `tier_promote_accesses` | accesses within the window that promote to hot (0 = never) | 2 |
//! | `tier_promote_window_secs` | the access-rate window | 60 |
//! | `tier_ram_budget_bytes` | RAM of hot collections; LRU ones go warm above it (0 = unlimited) | 0 |
//! | `tier_disk_budget_bytes` | local disk of hot and warm collections; LRU ones go cold above it (0 = unlimited) | 0 |
//! | `orphan_grace_secs` | unreferenced objects older than this are deleted | 3600 |
//! | `test_faults` | TESTING ONLY: `latency_ms=50,fail_rate=0.1,seed=7` injected into every object-store call | off |
//! | `log` | tracing filter | `info` |

use std::path::PathBuf;
use std::time::Duration;

use akidb_engine::EngineConfig;
use anyhow::Context;
use clap::Args;
use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./akidb-data";
pub const DEFAULT_MAX_BODY_BYTES: usize = 128 * 1024 * 1024;
pub const DEFAULT_LOG: &str = "info";

/// Flags of `akidb serve`. Each also reads its `AKIDB_*` variable.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "AKIDB_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory for WALs and (by default) the object store. Default ./akidb-data.
    #[arg(long, env = "AKIDB_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on, host:port; port 0 picks a free port. Default 127.0.0.1:8080.
    #[arg(long, env = "AKIDB_LISTEN")]
    pub listen: Option<String>,
    /// Object store URL: file://DIR, s3://BUCKET/PREFIX or memory:// (tests). Default file://<data-dir>/objects.
    #[arg(long, env = "AKIDB_OBJECT_STORE")]
    pub object_store: Option<String>,
    /// S3 endpoint for s3:// URLs, e.g. http://127.0.0.1:9000 for MinIO. Default: AWS_ENDPOINT, else AWS.
    #[arg(long, env = "AKIDB_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// S3 region. Default: AWS_REGION, else us-east-1.
    #[arg(long, env = "AKIDB_S3_REGION")]
    pub s3_region: Option<String>,
    /// S3 access key id. Default: AWS_ACCESS_KEY_ID.
    #[arg(long, env = "AKIDB_S3_ACCESS_KEY_ID")]
    pub s3_access_key_id: Option<String>,
    /// S3 secret access key. Default: AWS_SECRET_ACCESS_KEY.
    #[arg(long, env = "AKIDB_S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<String>,
    /// Allow a plain-HTTP S3 endpoint. Default: true for an http:// endpoint.
    #[arg(long, env = "AKIDB_S3_ALLOW_HTTP")]
    pub s3_allow_http: Option<bool>,
    /// Largest request body, in bytes. Default 134217728 (128 MiB).
    #[arg(long, env = "AKIDB_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Flush a collection to a segment once this many documents are unflushed. Default 50000.
    #[arg(long, env = "AKIDB_FLUSH_MAX_DOCS")]
    pub flush_max_docs: Option<usize>,
    /// Flush a collection after this many seconds without writes. Default 10.
    #[arg(long, env = "AKIDB_FLUSH_IDLE_SECS")]
    pub flush_idle_secs: Option<u64>,
    /// Flush unflushed data at the latest after this many seconds. Default 300.
    #[arg(long, env = "AKIDB_FLUSH_MAX_AGE_SECS")]
    pub flush_max_age_secs: Option<u64>,
    /// Vectors the background indexer inserts per lock acquisition. Default 32.
    #[arg(long, env = "AKIDB_INDEX_CHUNK")]
    pub index_chunk: Option<usize>,
    /// Default HNSW links per node for new collections. Default 16.
    #[arg(long, env = "AKIDB_HNSW_M")]
    pub hnsw_m: Option<usize>,
    /// Default HNSW build breadth for new collections. Default 200.
    #[arg(long, env = "AKIDB_HNSW_EF_CONSTRUCTION")]
    pub hnsw_ef_construction: Option<usize>,
    /// Default HNSW search breadth for new collections. Default 24.
    #[arg(long, env = "AKIDB_HNSW_EF_SEARCH")]
    pub hnsw_ef_search: Option<usize>,
    /// Uploads to the object store in flight at once, 1 to 64. Default 8.
    #[arg(long, env = "AKIDB_UPLOAD_MAX_IN_FLIGHT")]
    pub upload_max_in_flight: Option<usize>,
    /// Objects larger than this many bytes are uploaded in 8 MiB parts. Default 33554432.
    #[arg(long, env = "AKIDB_UPLOAD_MULTIPART_THRESHOLD_BYTES")]
    pub upload_multipart_threshold_bytes: Option<usize>,
    /// Attempts per upload on transient errors, the first included. Default 6.
    #[arg(long, env = "AKIDB_UPLOAD_MAX_ATTEMPTS")]
    pub upload_max_attempts: Option<u32>,
    /// Consecutive transient failures that open the object-store circuit breaker. Default 5.
    #[arg(long, env = "AKIDB_BREAKER_FAILURE_THRESHOLD")]
    pub breaker_failure_threshold: Option<u32>,
    /// Seconds the breaker stays open before one probe. Default 5.
    #[arg(long, env = "AKIDB_BREAKER_COOL_DOWN_SECS")]
    pub breaker_cool_down_secs: Option<u64>,
    /// Unflushed WAL bytes (all collections) at which writes get 503 + Retry-After. Default 1 GiB.
    #[arg(long, env = "AKIDB_WAL_BUDGET_BYTES")]
    pub wal_budget_bytes: Option<u64>,
    /// Writes get 507 insufficient_storage while the data directory's disk has less free (0 = off). Default 268435456 (256 MiB).
    #[arg(long, env = "AKIDB_MIN_FREE_DISK_BYTES")]
    pub min_free_disk_bytes: Option<u64>,
    /// WAL files open at once across collections (least recently used closed beyond). Default: half the open-file limit.
    #[arg(long, env = "AKIDB_MAX_OPEN_FILES")]
    pub max_open_files: Option<usize>,
    /// Threads of the async runtime. Default: the number of cores.
    #[arg(long, env = "AKIDB_WORKER_THREADS")]
    pub worker_threads: Option<usize>,
    /// Threads for blocking work (WAL fsync, search, Parquet encode and decode). Default 64.
    #[arg(long, env = "AKIDB_MAX_BLOCKING_THREADS")]
    pub max_blocking_threads: Option<usize>,
    /// Seconds between catalog checkpoints while collections change (one is also written at shutdown). Default 300.
    #[arg(long, env = "AKIDB_CATALOG_CHECKPOINT_INTERVAL_SECS")]
    pub catalog_checkpoint_interval_secs: Option<u64>,
    /// Run the tiering policy in the background. Default true.
    #[arg(long, env = "AKIDB_TIERING")]
    pub tiering: Option<bool>,
    /// Seconds between tiering policy runs. Default 5.
    #[arg(long, env = "AKIDB_TIER_INTERVAL_SECS")]
    pub tier_interval_secs: Option<u64>,
    /// A hot collection without access for this many seconds goes warm (0 = never). Default 600.
    #[arg(long, env = "AKIDB_TIER_HOT_IDLE_SECS")]
    pub tier_hot_idle_secs: Option<u64>,
    /// A warm collection without access for this many seconds goes cold (0 = never). Default 3600.
    #[arg(long, env = "AKIDB_TIER_WARM_IDLE_SECS")]
    pub tier_warm_idle_secs: Option<u64>,
    /// This many accesses within the window promote a warm or cold collection to hot (0 = never). Default 2.
    #[arg(long, env = "AKIDB_TIER_PROMOTE_ACCESSES")]
    pub tier_promote_accesses: Option<usize>,
    /// The access-rate window, in seconds. Default 60.
    #[arg(long, env = "AKIDB_TIER_PROMOTE_WINDOW_SECS")]
    pub tier_promote_window_secs: Option<u64>,
    /// RAM for hot collections; above it the least recently used go warm (0 = unlimited). Default 0.
    #[arg(long, env = "AKIDB_TIER_RAM_BUDGET_BYTES")]
    pub tier_ram_budget_bytes: Option<u64>,
    /// Local disk for hot and warm collections; above it the least recently used go cold (0 = unlimited). Default 0.
    #[arg(long, env = "AKIDB_TIER_DISK_BUDGET_BYTES")]
    pub tier_disk_budget_bytes: Option<u64>,
    /// Objects no manifest names are deleted once this many seconds old. Default 3600.
    #[arg(long, env = "AKIDB_ORPHAN_GRACE_SECS")]
    pub orphan_grace_secs: Option<u64>,
    /// TESTING ONLY: inject faults into every object-store call, e.g. latency_ms=50,fail_rate=0.1,seed=7.
    #[arg(long, env = "AKIDB_TEST_FAULTS")]
    pub test_faults: Option<String>,
    /// Log filter (tracing EnvFilter syntax), e.g. info or akidb_engine=debug. Default info.
    #[arg(long, env = "AKIDB_LOG")]
    pub log: Option<String>,
}

/// Parses `latency_ms=50,fail_rate=0.1,seed=7` (every key optional).
fn parse_test_faults(spec: &str) -> anyhow::Result<akidb_engine::TestFaults> {
    let mut f = akidb_engine::TestFaults {
        latency: Duration::ZERO,
        fail_rate: 0.0,
        seed: 1,
    };
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once('=')
            .with_context(|| format!("test_faults: {part:?} is not key=value"))?;
        let bad = || format!("test_faults: bad value for {key}: {value:?}");
        match key {
            "latency_ms" => f.latency = Duration::from_millis(value.parse().with_context(bad)?),
            "fail_rate" => {
                let rate: f64 = value.parse().with_context(bad)?;
                anyhow::ensure!(
                    (0.0..=1.0).contains(&rate),
                    "test_faults: fail_rate must be in 0..=1"
                );
                f.fail_rate = rate;
            }
            "seed" => f.seed = value.parse().with_context(bad)?,
            _ => anyhow::bail!("test_faults: unknown key {key:?} (latency_ms, fail_rate, seed)"),
        }
    }
    Ok(f)
}

/// The TOML file: the same keys as the flags, with underscores.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<String>,
    object_store: Option<String>,
    s3_endpoint: Option<String>,
    s3_region: Option<String>,
    s3_access_key_id: Option<String>,
    s3_secret_access_key: Option<String>,
    s3_allow_http: Option<bool>,
    max_body_bytes: Option<usize>,
    flush_max_docs: Option<usize>,
    flush_idle_secs: Option<u64>,
    flush_max_age_secs: Option<u64>,
    index_chunk: Option<usize>,
    hnsw_m: Option<usize>,
    hnsw_ef_construction: Option<usize>,
    hnsw_ef_search: Option<usize>,
    upload_max_in_flight: Option<usize>,
    upload_multipart_threshold_bytes: Option<usize>,
    upload_max_attempts: Option<u32>,
    breaker_failure_threshold: Option<u32>,
    breaker_cool_down_secs: Option<u64>,
    wal_budget_bytes: Option<u64>,
    min_free_disk_bytes: Option<u64>,
    max_open_files: Option<usize>,
    worker_threads: Option<usize>,
    max_blocking_threads: Option<usize>,
    catalog_checkpoint_interval_secs: Option<u64>,
    tiering: Option<bool>,
    tier_interval_secs: Option<u64>,
    tier_hot_idle_secs: Option<u64>,
    tier_warm_idle_secs: Option<u64>,
    tier_promote_accesses: Option<usize>,
    tier_promote_window_secs: Option<u64>,
    tier_ram_budget_bytes: Option<u64>,
    tier_disk_budget_bytes: Option<u64>,
    orphan_grace_secs: Option<u64>,
    test_faults: Option<String>,
    log: Option<String>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    pub max_body_bytes: usize,
    pub log: String,
    /// Async runtime threads (`None`: one per core).
    pub worker_threads: Option<usize>,
    pub max_blocking_threads: usize,
    /// Whether `max_open_files` was given (otherwise it follows the open-file limit at start).
    pub max_open_files_set: bool,
    pub engine: EngineConfig,
}

pub const DEFAULT_MAX_BLOCKING_THREADS: usize = 64;

impl Config {
    pub fn resolve(args: ServeArgs) -> anyhow::Result<Config> {
        let file: FileConfig = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("parsing config file {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let data_dir = args
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let mut engine = EngineConfig::new(data_dir);
        engine.object_store = args.object_store.or(file.object_store);
        engine.s3 = akidb_engine::S3Options {
            endpoint: args.s3_endpoint.or(file.s3_endpoint),
            region: args.s3_region.or(file.s3_region),
            access_key_id: args.s3_access_key_id.or(file.s3_access_key_id),
            secret_access_key: args.s3_secret_access_key.or(file.s3_secret_access_key),
            allow_http: args.s3_allow_http.or(file.s3_allow_http),
        };
        if let Some(v) = args.flush_max_docs.or(file.flush_max_docs) {
            anyhow::ensure!(v > 0, "flush_max_docs must be at least 1");
            engine.flush_max_docs = v;
        }
        if let Some(v) = args.flush_idle_secs.or(file.flush_idle_secs) {
            engine.flush_idle = Duration::from_secs(v);
        }
        if let Some(v) = args.flush_max_age_secs.or(file.flush_max_age_secs) {
            engine.flush_max_age = Duration::from_secs(v);
        }
        if let Some(v) = args.index_chunk.or(file.index_chunk) {
            anyhow::ensure!(v > 0, "index_chunk must be at least 1");
            engine.index_chunk = v;
        }
        if let Some(v) = args.hnsw_m.or(file.hnsw_m) {
            anyhow::ensure!((2..=128).contains(&v), "hnsw_m must be between 2 and 128");
            engine.default_index.m = v;
        }
        if let Some(v) = args.hnsw_ef_construction.or(file.hnsw_ef_construction) {
            anyhow::ensure!(
                (1..=10_000).contains(&v),
                "hnsw_ef_construction must be between 1 and 10000"
            );
            engine.default_index.ef_construction = v;
        }
        if let Some(v) = args.hnsw_ef_search.or(file.hnsw_ef_search) {
            anyhow::ensure!(
                (1..=10_000).contains(&v),
                "hnsw_ef_search must be between 1 and 10000"
            );
            engine.default_index.ef_search = v;
        }
        if let Some(v) = args.upload_max_in_flight.or(file.upload_max_in_flight) {
            anyhow::ensure!(
                (1..=akidb_engine::MAX_MAX_IN_FLIGHT).contains(&v),
                "upload_max_in_flight must be between 1 and {}",
                akidb_engine::MAX_MAX_IN_FLIGHT
            );
            engine.upload.max_in_flight = v;
        }
        if let Some(v) = args
            .upload_multipart_threshold_bytes
            .or(file.upload_multipart_threshold_bytes)
        {
            anyhow::ensure!(
                v >= 5 * 1024 * 1024,
                "upload_multipart_threshold_bytes must be at least 5 MiB (S3's smallest part)"
            );
            engine.upload.multipart_threshold = v;
        }
        if let Some(v) = args.upload_max_attempts.or(file.upload_max_attempts) {
            anyhow::ensure!(v >= 1, "upload_max_attempts must be at least 1");
            engine.upload.retry.max_attempts = v;
        }
        if let Some(v) = args
            .breaker_failure_threshold
            .or(file.breaker_failure_threshold)
        {
            anyhow::ensure!(v >= 1, "breaker_failure_threshold must be at least 1");
            engine.upload.breaker_failure_threshold = v;
        }
        if let Some(v) = args.breaker_cool_down_secs.or(file.breaker_cool_down_secs) {
            engine.upload.breaker_cool_down = Duration::from_secs(v);
        }
        if let Some(v) = args.wal_budget_bytes.or(file.wal_budget_bytes) {
            engine.wal_budget_bytes = v;
        }
        if let Some(v) = args.min_free_disk_bytes.or(file.min_free_disk_bytes) {
            engine.min_free_disk_bytes = v;
        }
        let max_open_files = args.max_open_files.or(file.max_open_files);
        if let Some(v) = max_open_files {
            anyhow::ensure!(v >= 1, "max_open_files must be at least 1");
            engine.max_open_files = v;
        }
        let worker_threads = args.worker_threads.or(file.worker_threads);
        if let Some(v) = worker_threads {
            anyhow::ensure!(
                (1..=1024).contains(&v),
                "worker_threads must be between 1 and 1024"
            );
        }
        if let Some(v) = args
            .catalog_checkpoint_interval_secs
            .or(file.catalog_checkpoint_interval_secs)
        {
            anyhow::ensure!(
                v >= 1,
                "catalog_checkpoint_interval_secs must be at least 1"
            );
            engine.checkpoint_interval = Duration::from_secs(v);
        }
        let max_blocking_threads = args
            .max_blocking_threads
            .or(file.max_blocking_threads)
            .unwrap_or(DEFAULT_MAX_BLOCKING_THREADS);
        anyhow::ensure!(
            (1..=4096).contains(&max_blocking_threads),
            "max_blocking_threads must be between 1 and 4096"
        );
        let t = &mut engine.tiering;
        if let Some(v) = args.tiering.or(file.tiering) {
            t.enabled = v;
        }
        if let Some(v) = args.tier_interval_secs.or(file.tier_interval_secs) {
            anyhow::ensure!(v >= 1, "tier_interval_secs must be at least 1");
            t.interval = Duration::from_secs(v);
        }
        if let Some(v) = args.tier_hot_idle_secs.or(file.tier_hot_idle_secs) {
            t.policy.hot_idle_ms = v.saturating_mul(1000);
        }
        if let Some(v) = args.tier_warm_idle_secs.or(file.tier_warm_idle_secs) {
            t.policy.warm_idle_ms = v.saturating_mul(1000);
        }
        if let Some(v) = args.tier_promote_accesses.or(file.tier_promote_accesses) {
            t.policy.promote_accesses = v;
        }
        if let Some(v) = args
            .tier_promote_window_secs
            .or(file.tier_promote_window_secs)
        {
            anyhow::ensure!(v >= 1, "tier_promote_window_secs must be at least 1");
            t.policy.promote_window_ms = v.saturating_mul(1000);
        }
        if let Some(v) = args.tier_ram_budget_bytes.or(file.tier_ram_budget_bytes) {
            t.policy.ram_budget_bytes = v;
        }
        if let Some(v) = args.tier_disk_budget_bytes.or(file.tier_disk_budget_bytes) {
            t.policy.disk_budget_bytes = v;
        }
        if let Some(v) = args.orphan_grace_secs.or(file.orphan_grace_secs) {
            t.orphan_grace = Duration::from_secs(v);
        }
        if let Some(spec) = args.test_faults.or(file.test_faults) {
            engine.test_faults = Some(parse_test_faults(&spec)?);
        }
        Ok(Config {
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or_else(|| DEFAULT_LISTEN.to_string()),
            max_body_bytes: args
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(DEFAULT_MAX_BODY_BYTES),
            log: args
                .log
                .or(file.log)
                .unwrap_or_else(|| DEFAULT_LOG.to_string()),
            worker_threads,
            max_blocking_threads,
            max_open_files_set: max_open_files.is_some(),
            engine,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("akidb.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9999\"\nflush_max_docs = 7\nhnsw_m = 8\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path.clone()),
            hnsw_m: Some(32),
            ..Default::default()
        };
        let c = Config::resolve(args).unwrap();
        assert_eq!(c.listen, "127.0.0.1:9999");
        assert_eq!(c.engine.flush_max_docs, 7);
        assert_eq!(c.engine.default_index.m, 32); // the flag wins over the file
        assert_eq!(c.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        std::fs::write(&path, "lisen = 1\n").unwrap();
        let err = Config::resolve(ServeArgs {
            config: Some(path),
            ..Default::default()
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("lisen"), "{err:#}");
    }

    #[test]
    fn test_faults_parse_and_reject() {
        let f = parse_test_faults("latency_ms=50, fail_rate=0.25,seed=9").unwrap();
        assert_eq!(f.latency, Duration::from_millis(50));
        assert_eq!(f.fail_rate, 0.25);
        assert_eq!(f.seed, 9);
        assert!(parse_test_faults("fail_rate=2").is_err());
        assert!(parse_test_faults("latency=5").is_err());
        assert!(parse_test_faults("latency_ms").is_err());
    }
}

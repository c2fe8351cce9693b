//! Every configuration key, defined once: its TOML key, its flag, its `AKIDB_*` variable, its
//! type with unit and its help text are all on one field below. `clap` reads flags and variables
//! into these structs and `serde` reads the TOML file into the same structs, so a key cannot
//! exist in one place and be missing in another.
//!
//! TOML sections match the structs (`[flush] idle = "10s"`). The older flat keys keep working:
//! `flush_idle_secs = 10` is read as `[flush] idle_secs` (see [`super::nest_flat_keys`]), and each
//! renamed field lists its old name as an alias. Flags keep their old names as visible aliases
//! (`--flush-idle-secs` beside `--flush-idle`), variables keep their names, and every size or
//! duration accepts units (`512MiB`, `10s`) while a bare number keeps its old unit (bytes,
//! seconds). Defaults are the engine's ([`akidb_engine::EngineConfig::new`]); ranges are checked
//! by [`akidb_engine::EngineConfig::validate`].

use std::path::PathBuf;

use clap::Args;
use serde::{Deserialize, Serialize};

use super::units::{Secs, Size};

/// Flags of `akidb serve`, and the whole TOML file.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeArgs {
    /// TOML configuration file (its keys are these flags' names with underscores, or sections).
    #[arg(long, env = "AKIDB_CONFIG")]
    #[serde(skip)]
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
    /// Largest request body (larger ones get 413). Default 128MiB.
    #[arg(
        long = "max-body",
        visible_alias = "max-body-bytes",
        env = "AKIDB_MAX_BODY_BYTES",
        value_name = "SIZE"
    )]
    #[serde(alias = "max_body_bytes")]
    pub max_body: Option<Size>,
    /// Writes get 507 insufficient_storage while the data directory's disk has less free (0 = off). Default 256MiB.
    #[arg(
        long = "min-free-disk",
        visible_alias = "min-free-disk-bytes",
        env = "AKIDB_MIN_FREE_DISK_BYTES",
        value_name = "SIZE"
    )]
    #[serde(alias = "min_free_disk_bytes")]
    pub min_free_disk: Option<Size>,
    /// WAL files open at once across collections (least recently used closed beyond). Default: half the open-file limit.
    #[arg(long, env = "AKIDB_MAX_OPEN_FILES")]
    pub max_open_files: Option<usize>,
    /// Threads of the async runtime, 1 to 1024. Default: the number of cores.
    #[arg(long, env = "AKIDB_WORKER_THREADS")]
    pub worker_threads: Option<usize>,
    /// Threads for blocking work (WAL fsync, search, Parquet encode and decode), 1 to 4096. Default 64.
    #[arg(long, env = "AKIDB_MAX_BLOCKING_THREADS")]
    pub max_blocking_threads: Option<usize>,
    /// Objects no manifest names are deleted once this old. Default 1h.
    #[arg(
        long = "orphan-grace",
        visible_alias = "orphan-grace-secs",
        env = "AKIDB_ORPHAN_GRACE_SECS",
        value_name = "DURATION"
    )]
    #[serde(alias = "orphan_grace_secs")]
    pub orphan_grace: Option<Secs>,
    /// Log filter (tracing EnvFilter syntax), e.g. info or akidb_engine=debug. Default info.
    #[arg(long, env = "AKIDB_LOG")]
    pub log: Option<String>,
    /// TESTING ONLY: inject faults into every object-store call, e.g. latency_ms=50,fail_rate=0.1,seed=7.
    #[arg(long, env = "AKIDB_TEST_FAULTS")]
    pub test_faults: Option<String>,
    #[command(flatten)]
    #[serde(default)]
    pub s3: S3,
    #[command(flatten)]
    #[serde(default)]
    pub flush: Flush,
    #[command(flatten)]
    #[serde(default)]
    pub index: Index,
    #[command(flatten)]
    #[serde(default)]
    pub hnsw: Hnsw,
    #[command(flatten)]
    #[serde(default)]
    pub partition: Partition,
    #[command(flatten)]
    #[serde(default)]
    pub cache: Cache,
    #[command(flatten)]
    #[serde(default)]
    pub wal: Wal,
    #[command(flatten)]
    #[serde(default)]
    pub upload: Upload,
    #[command(flatten)]
    #[serde(default)]
    pub breaker: Breaker,
    #[command(flatten)]
    #[serde(default)]
    pub catalog: Catalog,
    #[command(flatten)]
    #[serde(default)]
    pub tier: Tier,
    #[command(flatten)]
    #[serde(default)]
    pub auth: Auth,
    #[command(flatten)]
    #[serde(default)]
    pub tls: Tls,
    #[command(flatten)]
    #[serde(default)]
    pub limits: Limits,
    #[command(flatten)]
    #[serde(default)]
    pub quota: QuotaSettings,
    #[command(flatten)]
    #[serde(default)]
    pub otlp: Otlp,
}

/// `[s3]`: the S3 client for `s3://` object-store URLs.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[command(next_help_heading = "S3 (TOML [s3])")]
pub struct S3 {
    /// S3 endpoint, e.g. http://127.0.0.1:9000 for MinIO. Default: AWS_ENDPOINT, else AWS.
    #[arg(long = "s3-endpoint", env = "AKIDB_S3_ENDPOINT")]
    pub endpoint: Option<String>,
    /// S3 region. Default: AWS_REGION, else us-east-1.
    #[arg(long = "s3-region", env = "AKIDB_S3_REGION")]
    pub region: Option<String>,
    /// S3 access key id. Default: AWS_ACCESS_KEY_ID.
    #[arg(long = "s3-access-key-id", env = "AKIDB_S3_ACCESS_KEY_ID")]
    pub access_key_id: Option<String>,
    /// S3 secret access key (prefer the variable or the file: flags show in the process list). Default: AWS_SECRET_ACCESS_KEY.
    #[arg(
        long = "s3-secret-access-key",
        env = "AKIDB_S3_SECRET_ACCESS_KEY",
        hide_env_values = true
    )]
    pub secret_access_key: Option<String>,
    /// A file holding the S3 secret access key (trailing whitespace ignored).
    #[arg(
        long = "s3-secret-access-key-file",
        env = "AKIDB_S3_SECRET_ACCESS_KEY_FILE",
        value_name = "PATH"
    )]
    pub secret_access_key_file: Option<PathBuf>,
    /// Allow a plain-HTTP S3 endpoint. Default: true for an http:// endpoint.
    #[arg(long = "s3-allow-http", env = "AKIDB_S3_ALLOW_HTTP")]
    pub allow_http: Option<bool>,
}

/// `[flush]`: when unflushed writes are sealed into segments.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[command(next_help_heading = "Flushing (TOML [flush])")]
pub struct Flush {
    /// Flush a collection once this many documents are unflushed; also the most rows per segment. Default 50000.
    #[arg(long = "flush-max-docs", env = "AKIDB_FLUSH_MAX_DOCS")]
    pub max_docs: Option<usize>,
    /// Flush a collection this long after its last write. Default 10s.
    #[arg(
        long = "flush-idle",
        visible_alias = "flush-idle-secs",
        env = "AKIDB_FLUSH_IDLE_SECS",
        value_name = "DURATION"
    )]
    #[serde(alias = "idle_secs")]
    pub idle: Option<Secs>,
    /// Flush unflushed data at the latest when its oldest write is this old. Default 5m.
    #[arg(
        long = "flush-max-age",
        visible_alias = "flush-max-age-secs",
        env = "AKIDB_FLUSH_MAX_AGE_SECS",
        value_name = "DURATION"
    )]
    #[serde(alias = "max_age_secs")]
    pub max_age: Option<Secs>,
}

/// `[index]`: the background indexer.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[command(next_help_heading = "Indexing (TOML [index] and [hnsw])")]
pub struct Index {
    /// Vectors the background indexer inserts per lock hold (smaller: shorter search stalls). Default 32.
    #[arg(long = "index-chunk", env = "AKIDB_INDEX_CHUNK")]
    pub chunk: Option<usize>,
    /// Threads that plan graph insertions in parallel (indexer, compaction), 1 to 256. Default: the number of cores.
    // An explicit id: the field name alone would clash with `[partition] threads`.
    #[arg(
        id = "index_threads",
        long = "index-threads",
        env = "AKIDB_INDEX_THREADS"
    )]
    pub threads: Option<usize>,
}

/// `[hnsw]`: graph parameters of collections created without their own.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[command(next_help_heading = "Indexing (TOML [index] and [hnsw])")]
pub struct Hnsw {
    /// Links per node, 2 to 128. Default 16.
    #[arg(long = "hnsw-m", env = "AKIDB_HNSW_M")]
    pub m: Option<usize>,
    /// Build breadth, 1 to 10000. Default 200.
    #[arg(long = "hnsw-ef-construction", env = "AKIDB_HNSW_EF_CONSTRUCTION")]
    pub ef_construction: Option<usize>,
    /// Search breadth, 1 to 10000 (a query's `ef` overrides it). Default 64.
    #[arg(long = "hnsw-ef-search", env = "AKIDB_HNSW_EF_SEARCH")]
    pub ef_search: Option<usize>,
}

/// `[partition]`: the partitioned base that warm and cold queries read in part.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[command(next_help_heading = "Partitioned base (TOML [partition])")]
pub struct Partition {
    /// Sealed rows from which a collection gets a partitioned base (below, warm and cold reads load it whole). Default 50000.
    #[arg(long = "partition-min-rows", env = "AKIDB_PARTITION_MIN_ROWS")]
    pub min_rows: Option<usize>,
    /// The base is rebuilt when rows sealed after it reach this share of all sealed rows, (0, 1]. Default 0.1.
    #[arg(
        long = "partition-tail-fraction",
        env = "AKIDB_PARTITION_TAIL_FRACTION"
    )]
    pub tail_fraction: Option<f64>,
    /// Threads a base build uses (k-means), 1 to 256. Default: the number of cores.
    #[arg(
        id = "partition_threads",
        long = "partition-threads",
        env = "AKIDB_PARTITION_THREADS"
    )]
    pub threads: Option<usize>,
}

/// `[cache]`: local disk for what cold queries fetched.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[command(next_help_heading = "Partitioned base (TOML [partition])")]
pub struct Cache {
    /// Disk for the ranges cold queries fetched from partitioned bases, all collections, least recently used out. Default 4GiB.
    #[arg(
        id = "cache_disk_budget",
        long = "cache-disk-budget",
        visible_alias = "cache-disk-budget-bytes",
        env = "AKIDB_CACHE_DISK_BUDGET_BYTES",
        value_name = "SIZE"
    )]
    #[serde(alias = "disk_budget_bytes")]
    pub disk_budget: Option<Size>,
}

/// `[wal]`: the write-ahead logs.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[command(next_help_heading = "WAL and uploads (TOML [wal], [upload], [breaker])")]
pub struct Wal {
    /// Unflushed WAL (all collections) at which writes get 503 + Retry-After. Default 1GiB.
    #[arg(
        long = "wal-budget",
        visible_alias = "wal-budget-bytes",
        env = "AKIDB_WAL_BUDGET_BYTES",
        value_name = "SIZE"
    )]
    #[serde(alias = "budget_bytes")]
    pub budget: Option<Size>,
}

/// `[upload]`: the upload pipeline to the object store.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[command(next_help_heading = "WAL and uploads (TOML [wal], [upload], [breaker])")]
pub struct Upload {
    /// Uploads to the object store in flight at once, 1 to 64. Default 8.
    #[arg(long = "upload-max-in-flight", env = "AKIDB_UPLOAD_MAX_IN_FLIGHT")]
    pub max_in_flight: Option<usize>,
    /// Objects larger than this are uploaded in 8 MiB parts; at least 5MiB. Default 32MiB.
    #[arg(
        long = "upload-multipart-threshold",
        visible_alias = "upload-multipart-threshold-bytes",
        env = "AKIDB_UPLOAD_MULTIPART_THRESHOLD_BYTES",
        value_name = "SIZE"
    )]
    #[serde(alias = "multipart_threshold_bytes")]
    pub multipart_threshold: Option<Size>,
    /// Attempts per object-store call on transient errors, the first included. Default 6.
    #[arg(long = "upload-max-attempts", env = "AKIDB_UPLOAD_MAX_ATTEMPTS")]
    pub max_attempts: Option<u32>,
}

/// `[breaker]`: the object-store circuit breaker.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[command(next_help_heading = "WAL and uploads (TOML [wal], [upload], [breaker])")]
pub struct Breaker {
    /// Consecutive transient failures that open the breaker. Default 5.
    #[arg(
        long = "breaker-failure-threshold",
        env = "AKIDB_BREAKER_FAILURE_THRESHOLD"
    )]
    pub failure_threshold: Option<u32>,
    /// How long the breaker stays open before one probe. Default 5s.
    #[arg(
        long = "breaker-cool-down",
        visible_alias = "breaker-cool-down-secs",
        env = "AKIDB_BREAKER_COOL_DOWN_SECS",
        value_name = "DURATION"
    )]
    #[serde(alias = "cool_down_secs")]
    pub cool_down: Option<Secs>,
}

/// `[catalog]`: the catalog checkpoint.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[command(next_help_heading = "Catalog (TOML [catalog])")]
pub struct Catalog {
    /// The catalog checkpoint is rewritten at most this often while collections change (and at shutdown). Default 5m.
    #[arg(
        long = "catalog-checkpoint-interval",
        visible_alias = "catalog-checkpoint-interval-secs",
        env = "AKIDB_CATALOG_CHECKPOINT_INTERVAL_SECS",
        value_name = "DURATION"
    )]
    #[serde(alias = "checkpoint_interval_secs")]
    pub checkpoint_interval: Option<Secs>,
}

/// `[tier]`: automatic moves between hot, warm and cold.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[command(next_help_heading = "Tiering (TOML [tier])")]
pub struct Tier {
    /// Run the tiering policy in the background (manual moves work either way). Default true.
    #[arg(long = "tiering", env = "AKIDB_TIERING")]
    pub enabled: Option<bool>,
    /// Time between policy runs. Default 5s.
    #[arg(
        long = "tier-interval",
        visible_alias = "tier-interval-secs",
        env = "AKIDB_TIER_INTERVAL_SECS",
        value_name = "DURATION"
    )]
    #[serde(alias = "interval_secs")]
    pub interval: Option<Secs>,
    /// A hot collection without access this long goes warm (0 = never). Default 10m.
    #[arg(
        long = "tier-hot-idle",
        visible_alias = "tier-hot-idle-secs",
        env = "AKIDB_TIER_HOT_IDLE_SECS",
        value_name = "DURATION"
    )]
    #[serde(alias = "hot_idle_secs")]
    pub hot_idle: Option<Secs>,
    /// A warm collection without access this long goes cold (0 = never). Default 1h.
    #[arg(
        long = "tier-warm-idle",
        visible_alias = "tier-warm-idle-secs",
        env = "AKIDB_TIER_WARM_IDLE_SECS",
        value_name = "DURATION"
    )]
    #[serde(alias = "warm_idle_secs")]
    pub warm_idle: Option<Secs>,
    /// This many accesses within the window promote a warm or cold collection to hot (0 = never). Default 2.
    #[arg(long = "tier-promote-accesses", env = "AKIDB_TIER_PROMOTE_ACCESSES")]
    pub promote_accesses: Option<usize>,
    /// The access-rate window. Default 1m.
    #[arg(
        long = "tier-promote-window",
        visible_alias = "tier-promote-window-secs",
        env = "AKIDB_TIER_PROMOTE_WINDOW_SECS",
        value_name = "DURATION"
    )]
    #[serde(alias = "promote_window_secs")]
    pub promote_window: Option<Secs>,
    /// RAM for hot collections; above it the least recently used go warm (0 = unlimited). Default 0.
    #[arg(
        long = "tier-ram-budget",
        visible_alias = "tier-ram-budget-bytes",
        env = "AKIDB_TIER_RAM_BUDGET_BYTES",
        value_name = "SIZE"
    )]
    #[serde(alias = "ram_budget_bytes")]
    pub ram_budget: Option<Size>,
    /// Local disk for hot and warm collections; above it the least recently used go cold (0 = unlimited). Default 0.
    #[arg(
        id = "tier_disk_budget",
        long = "tier-disk-budget",
        visible_alias = "tier-disk-budget-bytes",
        env = "AKIDB_TIER_DISK_BUDGET_BYTES",
        value_name = "SIZE"
    )]
    #[serde(alias = "disk_budget_bytes")]
    pub disk_budget: Option<Size>,
}

/// `[auth]`: API keys. With none configured, authentication is off (allowed on loopback only,
/// unless `insecure_no_auth`).
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[command(next_help_heading = "Authentication (TOML [auth])")]
pub struct Auth {
    /// The bootstrap admin API key (16 characters or more); prefer the variable or the file, since flags show in the process list.
    #[arg(
        long = "admin-api-key",
        env = "AKIDB_ADMIN_API_KEY",
        hide_env_values = true
    )]
    pub admin_api_key: Option<String>,
    /// A file holding the bootstrap admin API key (trailing whitespace ignored).
    #[arg(
        long = "admin-api-key-file",
        env = "AKIDB_ADMIN_API_KEY_FILE",
        value_name = "PATH"
    )]
    pub admin_api_key_file: Option<PathBuf>,
    /// Serve without any API key on a non-loopback address (logged as a warning). Default false.
    #[arg(
        long = "insecure-no-auth",
        env = "AKIDB_INSECURE_NO_AUTH",
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub insecure_no_auth: Option<bool>,
    /// `open`: /metrics needs no key; `key`: any valid key. Default key.
    #[arg(
        long = "metrics-auth",
        env = "AKIDB_METRICS_AUTH",
        value_name = "open|key"
    )]
    pub metrics: Option<String>,
    /// Keys from the file: `[[auth.keys]] id, sha256 (hex SHA-256 of the key), role, collections`.
    #[arg(skip)]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<crate::auth::KeyRecord>,
}

/// `[tls]`: HTTPS on the listener.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[command(next_help_heading = "TLS (TOML [tls])")]
pub struct Tls {
    /// PEM certificate chain; with --tls-key, the listener speaks only TLS.
    #[arg(long = "tls-cert", env = "AKIDB_TLS_CERT", value_name = "PATH")]
    pub cert: Option<PathBuf>,
    /// PEM private key of the certificate.
    #[arg(long = "tls-key", env = "AKIDB_TLS_KEY", value_name = "PATH")]
    pub key: Option<PathBuf>,
    /// How often the certificate files are checked for changes (they are also reloaded on SIGHUP). Default 10s.
    #[arg(
        long = "tls-reload-interval",
        env = "AKIDB_TLS_RELOAD_INTERVAL",
        value_name = "DURATION"
    )]
    pub reload_interval: Option<Secs>,
}

/// `[limits]`: what one connection or request may hold.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[command(next_help_heading = "Limits (TOML [limits])")]
pub struct Limits {
    /// Client connections open at once; more wait in the kernel's backlog. Default: a quarter of the open-file limit, at most 4096.
    #[arg(long = "max-connections", env = "AKIDB_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// A client must send a request's headers (and a TLS handshake) within this, or the connection is closed; also how long a kept-alive connection may idle between requests. Default 30s.
    #[arg(
        long = "header-timeout",
        env = "AKIDB_HEADER_TIMEOUT",
        value_name = "DURATION"
    )]
    pub header_timeout: Option<Secs>,
    /// A client must send a request's body within this (408 otherwise). Default 60s.
    #[arg(
        long = "body-timeout",
        env = "AKIDB_BODY_TIMEOUT",
        value_name = "DURATION"
    )]
    pub body_timeout: Option<Secs>,
    /// Requests in flight across all clients; more get 429. Default 512.
    #[arg(
        id = "limits_max_in_flight",
        long = "max-in-flight",
        env = "AKIDB_MAX_IN_FLIGHT"
    )]
    pub max_in_flight: Option<u32>,
    /// Memory for request bodies being read at once; a body that does not fit waits up to 5 s, then gets 503. Default 512MiB.
    #[arg(
        long = "max-body-memory",
        env = "AKIDB_MAX_BODY_MEMORY",
        value_name = "SIZE"
    )]
    pub body_memory: Option<Size>,
    /// A search without `timeout_ms` stops after this (504). Default 10s.
    #[arg(
        long = "search-timeout",
        env = "AKIDB_SEARCH_TIMEOUT",
        value_name = "DURATION"
    )]
    pub search_timeout: Option<Secs>,
}

/// `[quota]`: defaults for every API key (a key's own limits replace them); 0 = unlimited.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[command(next_help_heading = "Quotas (TOML [quota])")]
pub struct QuotaSettings {
    /// Requests per second per key. Default 0.
    #[arg(
        long = "quota-requests-per-second",
        env = "AKIDB_QUOTA_REQUESTS_PER_SECOND"
    )]
    pub requests_per_second: Option<u32>,
    /// Requests in flight per key. Default 64.
    #[arg(
        id = "quota_max_in_flight",
        long = "quota-max-in-flight",
        env = "AKIDB_QUOTA_MAX_IN_FLIGHT"
    )]
    pub max_in_flight: Option<u32>,
    /// Collections in a key's scope. Default 0.
    #[arg(long = "quota-max-collections", env = "AKIDB_QUOTA_MAX_COLLECTIONS")]
    pub max_collections: Option<u64>,
    /// Live vectors across a key's scope. Default 0.
    #[arg(long = "quota-max-vectors", env = "AKIDB_QUOTA_MAX_VECTORS")]
    pub max_vectors: Option<u64>,
    /// Stored bytes (segments and WAL) across a key's scope. Default 0.
    #[arg(
        long = "quota-max-bytes",
        env = "AKIDB_QUOTA_MAX_BYTES",
        value_name = "SIZE"
    )]
    pub max_bytes: Option<Size>,
    /// Live vectors in one collection. Default 0.
    #[arg(
        long = "quota-max-vectors-per-collection",
        env = "AKIDB_QUOTA_MAX_VECTORS_PER_COLLECTION"
    )]
    pub max_vectors_per_collection: Option<u64>,
    /// Stored bytes of one collection. Default 0.
    #[arg(
        long = "quota-max-bytes-per-collection",
        env = "AKIDB_QUOTA_MAX_BYTES_PER_COLLECTION",
        value_name = "SIZE"
    )]
    pub max_bytes_per_collection: Option<Size>,
}

/// `[otlp]`: traces exported over OTLP/HTTP (protobuf). Off unless an endpoint is given.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[command(next_help_heading = "Traces (TOML [otlp])")]
pub struct Otlp {
    /// Export traces to this OTLP/HTTP collector, e.g. http://127.0.0.1:4318 (`/v1/traces` is added unless the URL ends with it). Default: off.
    #[arg(
        id = "otlp_endpoint",
        long = "otlp-endpoint",
        env = "AKIDB_OTLP_ENDPOINT",
        value_name = "URL"
    )]
    pub endpoint: Option<String>,
    /// Share of requests traced, 0 to 1 (a request that arrives with a sampled W3C `traceparent` is always traced). Default 1.
    #[arg(
        id = "otlp_sample_ratio",
        long = "otlp-sample-ratio",
        env = "AKIDB_OTLP_SAMPLE_RATIO",
        value_name = "RATIO"
    )]
    pub sample_ratio: Option<f64>,
}

//! Server configuration: defaults, then a TOML file, then `AKIDB_*` environment variables,
//! then command-line flags, each overriding the one before.
//!
//! - [`settings`]: every key, defined once (TOML key, flag, variable, unit, help).
//! - [`units`]: sizes and durations with units.
//! - this file: reading the file, laying flags over it, and turning the result into the
//!   engine's [`EngineConfig`] (whose `validate` checks every range) and the server's own
//!   settings. The README's configuration table lists every key with its default.

mod settings;
mod units;

use std::path::{Path, PathBuf};
use std::time::Duration;

use akidb_engine::EngineConfig;
use anyhow::Context;

pub use self::settings::ServeArgs;
pub use self::units::{Secs, Size};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./akidb-data";
pub const DEFAULT_MAX_BODY_BYTES: usize = 128 * 1024 * 1024;
pub const DEFAULT_LOG: &str = "info";
pub const DEFAULT_MAX_BLOCKING_THREADS: usize = 64;

/// TOML sections; a flat key `<section>_<rest>` (the older spelling) is read as `[section] rest`.
const SECTIONS: [&str; 11] = [
    "s3",
    "flush",
    "index",
    "hnsw",
    "wal",
    "upload",
    "breaker",
    "catalog",
    "tier",
    "partition",
    "cache",
];

/// A secret read from a flag, a variable or a file; never printed.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// `[auth]`, resolved.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    pub admin_api_key: Option<Secret>,
    pub insecure_no_auth: bool,
    pub metrics_open: bool,
    pub keys: Vec<crate::auth::KeyRecord>,
}

/// `[tls]`, resolved: both files or neither.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub reload_interval: Duration,
}

/// `[limits]`, resolved (the in-flight limit is in [`crate::quota::QuotaConfig`]).
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// `None`: from the open-file limit at start.
    pub max_connections: Option<usize>,
    /// Also the idle keep-alive limit.
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub body_memory: usize,
    pub search_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: None,
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(60),
            body_memory: 512 << 20,
            search_timeout: Duration::from_secs(10),
        }
    }
}

/// `[otlp]`, resolved: where traces go and which share of requests is traced.
#[derive(Debug, Clone)]
pub struct OtlpConfig {
    /// The collector's traces URL (`.../v1/traces`).
    pub endpoint: String,
    pub sample_ratio: f64,
}

/// A secret given directly or as a file (not both); the file's trailing whitespace is dropped.
fn secret(
    value: Option<String>,
    file: Option<&Path>,
    what: &str,
) -> anyhow::Result<Option<Secret>> {
    match (value, file) {
        (Some(_), Some(_)) => anyhow::bail!("give {what} or {what}_file, not both"),
        (Some(v), None) => Ok(Some(Secret(v))),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {what}_file {}", path.display()))?;
            let text = text.trim_end().to_string();
            anyhow::ensure!(!text.is_empty(), "{what}_file {} is empty", path.display());
            Ok(Some(Secret(text)))
        }
        (None, None) => Ok(None),
    }
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    pub auth: AuthConfig,
    pub tls: Option<TlsConfig>,
    pub limits: ServerLimits,
    pub quota: crate::quota::QuotaConfig,
    pub max_body_bytes: usize,
    pub log: String,
    /// Trace export (`None`: off).
    pub otlp: Option<OtlpConfig>,
    /// Async runtime threads (`None`: one per core).
    pub worker_threads: Option<usize>,
    pub max_blocking_threads: usize,
    /// Whether `max_open_files` was given (otherwise it follows the open-file limit at start).
    pub max_open_files_set: bool,
    pub engine: EngineConfig,
}

impl Config {
    /// Lays the flags and variables in `args` over the TOML file it names, then builds and
    /// validates the configuration.
    pub fn resolve(args: ServeArgs) -> anyhow::Result<Config> {
        let settings = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                over_file(&text, args.clone())
                    .with_context(|| format!("config file {}", path.display()))?
            }
            None => args,
        };
        Config::from_settings(settings)
    }

    fn from_settings(s: ServeArgs) -> anyhow::Result<Config> {
        let data_dir = s
            .data_dir
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let mut e = EngineConfig::new(data_dir);
        e.object_store = s.object_store;
        e.s3 = akidb_engine::S3Options {
            endpoint: s.s3.endpoint,
            region: s.s3.region,
            access_key_id: s.s3.access_key_id,
            secret_access_key: secret(
                s.s3.secret_access_key,
                s.s3.secret_access_key_file.as_deref(),
                "s3_secret_access_key",
            )?
            .map(|s| s.0),
            allow_http: s.s3.allow_http,
        };
        set(&mut e.min_free_disk_bytes, s.min_free_disk.map(Size::bytes));
        set(&mut e.max_open_files, s.max_open_files);
        set(&mut e.flush_max_docs, s.flush.max_docs);
        set(&mut e.flush_idle, s.flush.idle.map(|d| d.0));
        set(&mut e.flush_max_age, s.flush.max_age.map(|d| d.0));
        set(&mut e.index_chunk, s.index.chunk);
        set(&mut e.index_threads, s.index.threads);
        set(&mut e.partitions.min_rows, s.partition.min_rows);
        set(&mut e.partitions.tail_fraction, s.partition.tail_fraction);
        set(&mut e.partitions.threads, s.partition.threads);
        set(
            &mut e.partitions.cache_disk_budget_bytes,
            s.cache.disk_budget.map(Size::bytes),
        );
        set(&mut e.default_index.m, s.hnsw.m);
        set(&mut e.default_index.ef_construction, s.hnsw.ef_construction);
        set(&mut e.default_index.ef_search, s.hnsw.ef_search);
        set(&mut e.wal_budget_bytes, s.wal.budget.map(Size::bytes));
        set(&mut e.upload.max_in_flight, s.upload.max_in_flight);
        set(
            &mut e.upload.multipart_threshold,
            s.upload.multipart_threshold.map(Size::usize),
        );
        set(&mut e.upload.retry.max_attempts, s.upload.max_attempts);
        set(
            &mut e.upload.breaker_failure_threshold,
            s.breaker.failure_threshold,
        );
        set(
            &mut e.upload.breaker_cool_down,
            s.breaker.cool_down.map(|d| d.0),
        );
        set(
            &mut e.checkpoint_interval,
            s.catalog.checkpoint_interval.map(|d| d.0),
        );
        let t = &mut e.tiering;
        set(&mut t.enabled, s.tier.enabled);
        set(&mut t.interval, s.tier.interval.map(|d| d.0));
        set(&mut t.orphan_grace, s.orphan_grace.map(|d| d.0));
        set(&mut t.policy.hot_idle_ms, s.tier.hot_idle.map(millis));
        set(&mut t.policy.warm_idle_ms, s.tier.warm_idle.map(millis));
        set(&mut t.policy.promote_accesses, s.tier.promote_accesses);
        set(
            &mut t.policy.promote_window_ms,
            s.tier.promote_window.map(millis),
        );
        set(
            &mut t.policy.ram_budget_bytes,
            s.tier.ram_budget.map(Size::bytes),
        );
        set(
            &mut t.policy.disk_budget_bytes,
            s.tier.disk_budget.map(Size::bytes),
        );
        if let Some(spec) = s.test_faults {
            e.test_faults = Some(spec.parse().map_err(anyhow::Error::msg)?);
        }
        e.validate()?;
        if let Some(v) = s.worker_threads {
            anyhow::ensure!(
                (1..=1024).contains(&v),
                "worker_threads must be between 1 and 1024"
            );
        }
        let max_blocking_threads = s
            .max_blocking_threads
            .unwrap_or(DEFAULT_MAX_BLOCKING_THREADS);
        anyhow::ensure!(
            (1..=4096).contains(&max_blocking_threads),
            "max_blocking_threads must be between 1 and 4096"
        );
        let auth = AuthConfig {
            admin_api_key: secret(
                s.auth.admin_api_key,
                s.auth.admin_api_key_file.as_deref(),
                "admin_api_key",
            )?,
            insecure_no_auth: s.auth.insecure_no_auth.unwrap_or(false),
            metrics_open: match s.auth.metrics.as_deref() {
                None | Some("key") => false,
                Some("open") => true,
                Some(other) => anyhow::bail!("auth.metrics must be open or key, not {other:?}"),
            },
            keys: s.auth.keys,
        };
        let tls = match (s.tls.cert, s.tls.key) {
            (Some(cert), Some(key)) => Some(TlsConfig {
                cert,
                key,
                reload_interval: s
                    .tls
                    .reload_interval
                    .map_or(Duration::from_secs(10), |d| d.0),
            }),
            (None, None) => None,
            _ => anyhow::bail!("tls_cert and tls_key go together: give both or neither"),
        };
        let d = ServerLimits::default();
        let limits = ServerLimits {
            max_connections: s.limits.max_connections,
            header_timeout: s.limits.header_timeout.map_or(d.header_timeout, |t| t.0),
            body_timeout: s.limits.body_timeout.map_or(d.body_timeout, |t| t.0),
            body_memory: s.limits.body_memory.map_or(d.body_memory, Size::usize),
            search_timeout: s.limits.search_timeout.map_or(d.search_timeout, |t| t.0),
        };
        for (name, t) in [
            ("header_timeout", limits.header_timeout),
            ("body_timeout", limits.body_timeout),
            ("search_timeout", limits.search_timeout),
        ] {
            anyhow::ensure!(!t.is_zero(), "limits.{name} must be more than 0");
        }
        if let Some(n) = limits.max_connections {
            anyhow::ensure!(n >= 1, "limits.max_connections must be at least 1");
        }
        let otlp = otlp_config(&s.otlp)?;
        let mut quota = crate::quota::QuotaConfig::default();
        set(&mut quota.max_in_flight, s.limits.max_in_flight);
        let q = &s.quota;
        let k = &mut quota.key;
        k.requests_per_second = q.requests_per_second.or(k.requests_per_second);
        k.max_in_flight = q.max_in_flight.or(k.max_in_flight);
        k.max_collections = q.max_collections.or(k.max_collections);
        k.max_vectors = q.max_vectors.or(k.max_vectors);
        k.max_bytes = q.max_bytes.map(Size::bytes).or(k.max_bytes);
        set(
            &mut quota.max_vectors_per_collection,
            q.max_vectors_per_collection,
        );
        set(
            &mut quota.max_bytes_per_collection,
            q.max_bytes_per_collection.map(Size::bytes),
        );
        Ok(Config {
            listen: s.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string()),
            auth,
            tls,
            limits,
            quota,
            max_body_bytes: s.max_body.map_or(DEFAULT_MAX_BODY_BYTES, Size::usize),
            log: s.log.unwrap_or_else(|| DEFAULT_LOG.to_string()),
            otlp,
            worker_threads: s.worker_threads,
            max_blocking_threads,
            max_open_files_set: s.max_open_files.is_some(),
            engine: e,
        })
    }
}

/// `[otlp]`: the endpoint must be an http(s) URL; the traces path is added to a base URL, as
/// OpenTelemetry's `OTEL_EXPORTER_OTLP_ENDPOINT` does.
fn otlp_config(s: &settings::Otlp) -> anyhow::Result<Option<OtlpConfig>> {
    let ratio = s.sample_ratio.unwrap_or(1.0);
    anyhow::ensure!(
        (0.0..=1.0).contains(&ratio),
        "otlp.sample_ratio must be between 0 and 1, got {ratio}"
    );
    let Some(url) = s
        .endpoint
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    else {
        anyhow::ensure!(
            s.sample_ratio.is_none(),
            "otlp.sample_ratio is set but otlp.endpoint is not: nothing would be exported"
        );
        return Ok(None);
    };
    anyhow::ensure!(
        url.starts_with("http://") || url.starts_with("https://"),
        "otlp.endpoint must be an http:// or https:// URL (OTLP/HTTP), got {url:?}"
    );
    let base = url.trim_end_matches('/');
    let endpoint = if base.ends_with("/v1/traces") {
        base.to_string()
    } else {
        format!("{base}/v1/traces")
    };
    Ok(Some(OtlpConfig {
        endpoint,
        sample_ratio: ratio,
    }))
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

fn millis(d: Secs) -> u64 {
    u64::try_from(d.0.as_millis()).unwrap_or(u64::MAX)
}

/// The TOML file's settings with the flags and variables in `args` laid over them: both become
/// TOML tables, `args`'s keys replace the file's, and the result is read once, so an error names
/// the key (`flush.max_docs: invalid type ...`).
fn over_file(text: &str, args: ServeArgs) -> anyhow::Result<ServeArgs> {
    let mut file = nest_flat_keys(toml::from_str(text)?)?;
    let flags = toml::Table::try_from(&args).context("laying flags over the file")?;
    lay_over(&mut file, flags);
    let mut settings: ServeArgs = serde_path_to_error::deserialize(toml::Value::Table(file))
        .map_err(|e| anyhow::anyhow!("{}: {}", e.path(), e.inner().message()))?;
    settings.config = args.config;
    Ok(settings)
}

/// Reads the older flat keys as their sections' keys: `flush_idle_secs` as `[flush] idle_secs`
/// (an alias of `idle`), `tiering` as `[tier] enabled`. Giving both spellings is an error.
fn nest_flat_keys(table: toml::Table) -> anyhow::Result<toml::Table> {
    let mut out = toml::Table::new();
    let mut flat = Vec::new();
    for (key, value) in table {
        let nested = match key.as_str() {
            "tiering" => Some(("tier", "enabled".to_string())),
            _ => SECTIONS.iter().find_map(|section| {
                let rest = key.strip_prefix(section)?.strip_prefix('_')?;
                Some((*section, rest.to_string()))
            }),
        };
        match nested {
            Some((section, rest)) if !value.is_table() => flat.push((key, section, rest, value)),
            _ => {
                out.insert(key, value);
            }
        }
    }
    for (key, section, rest, value) in flat {
        let entry = out
            .entry(section)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let Some(table) = entry.as_table_mut() else {
            anyhow::bail!("{section} must be a table ([{section}])");
        };
        anyhow::ensure!(
            table.insert(rest.clone(), value).is_none(),
            "{key} and [{section}] {rest} are the same setting; give one"
        );
    }
    Ok(out)
}

/// Replaces `base`'s values with `top`'s, table by table.
fn lay_over(base: &mut toml::Table, top: toml::Table) {
    for (key, value) in top {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(t)) => lay_over(b, t),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn parse(argv: &[&str]) -> ServeArgs {
        let argv = std::iter::once("akidb").chain(argv.iter().copied());
        Cli::try_parse_from(argv).unwrap().args
    }

    fn with_file(text: &str, argv: &[&str]) -> anyhow::Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("akidb.toml");
        std::fs::write(&path, text).unwrap();
        let mut args = parse(argv);
        args.config = Some(path);
        Config::resolve(args)
    }

    #[test]
    fn every_flag_is_well_formed() {
        Cli::command().debug_assert();
    }

    /// Flags whose fields share a name (`threads`, `disk_budget`) each set their own setting.
    /// clap's `debug_assert` checks for clashing ids only in debug builds, and the suite runs
    /// in release, where two such flags silently set both fields.
    #[test]
    fn flags_with_the_same_field_name_set_their_own_setting() {
        let c = Config::resolve(parse(&[
            "--index-threads",
            "3",
            "--partition-threads",
            "5",
            "--cache-disk-budget",
            "1GiB",
            "--tier-disk-budget",
            "2GiB",
        ]))
        .unwrap();
        assert_eq!(c.engine.index_threads, 3);
        assert_eq!(c.engine.partitions.threads, 5);
        assert_eq!(c.engine.partitions.cache_disk_budget_bytes, 1 << 30);
        assert_eq!(c.engine.tiering.policy.disk_budget_bytes, 2 << 30);
        let c = Config::resolve(parse(&["--cache-disk-budget", "1GiB"])).unwrap();
        assert_eq!(c.engine.tiering.policy.disk_budget_bytes, 0);
        let c = Config::resolve(parse(&["--otlp-endpoint", "http://127.0.0.1:4318"])).unwrap();
        assert_eq!(c.engine.s3.endpoint, None);
    }

    #[test]
    fn traces_are_off_unless_an_endpoint_is_given() {
        assert!(Config::resolve(parse(&[])).unwrap().otlp.is_none());
        for (url, endpoint) in [
            ("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"),
            ("http://collector:4318/", "http://collector:4318/v1/traces"),
            (
                "https://otel.example/v1/traces",
                "https://otel.example/v1/traces",
            ),
        ] {
            let c = Config::resolve(parse(&["--otlp-endpoint", url])).unwrap();
            let otlp = c.otlp.unwrap();
            assert_eq!(otlp.endpoint, endpoint);
            assert_eq!(otlp.sample_ratio, 1.0);
        }
        let c = with_file(
            "[otlp]\nendpoint = \"http://c:4318\"\nsample_ratio = 0.1\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.otlp.unwrap().sample_ratio, 0.1);
        for (argv, says) in [
            (&["--otlp-endpoint", "grpc://c:4317"][..], "otlp.endpoint"),
            (
                &["--otlp-endpoint", "http://c", "--otlp-sample-ratio", "2"],
                "otlp.sample_ratio",
            ),
            (&["--otlp-sample-ratio", "0.5"], "otlp.endpoint is not"),
        ] {
            let err = Config::resolve(parse(argv)).unwrap_err();
            assert!(format!("{err:#}").contains(says), "{argv:?}: {err:#}");
        }
    }

    #[test]
    fn file_then_flags() {
        let c = with_file(
            "listen = \"127.0.0.1:9999\"\nflush_max_docs = 7\nhnsw_m = 8\n",
            &["--hnsw-m", "32"],
        )
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:9999");
        assert_eq!(c.engine.flush_max_docs, 7);
        assert_eq!(c.engine.default_index.m, 32); // the flag wins over the file
        assert_eq!(c.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        let err = with_file("lisen = 1\n", &[]).unwrap_err();
        assert!(format!("{err:#}").contains("lisen"), "{err:#}");
    }

    #[test]
    fn old_flat_keys_and_new_sections_with_units_mean_the_same() {
        let old = with_file(
            "flush_idle_secs = 10\nwal_budget_bytes = 536870912\ntiering = false\n\
             tier_hot_idle_secs = 60\norphan_grace_secs = 7200\nmax_body_bytes = 1024\n",
            &[],
        )
        .unwrap();
        let new = with_file(
            "orphan_grace = \"2h\"\nmax_body = \"1KiB\"\n\
             [flush]\nidle = \"10s\"\n[wal]\nbudget = \"512MiB\"\n\
             [tier]\nenabled = false\nhot_idle = \"1m\"\n",
            &[],
        )
        .unwrap();
        for c in [&old, &new] {
            assert_eq!(c.engine.flush_idle, Duration::from_secs(10));
            assert_eq!(c.engine.wal_budget_bytes, 512 << 20);
            assert!(!c.engine.tiering.enabled);
            assert_eq!(c.engine.tiering.policy.hot_idle_ms, 60_000);
            assert_eq!(c.engine.tiering.orphan_grace, Duration::from_secs(7200));
            assert_eq!(c.max_body_bytes, 1024);
        }
        let both = with_file("flush_max_docs = 1\n[flush]\nmax_docs = 2\n", &[]).unwrap_err();
        assert!(format!("{both:#}").contains("same setting"), "{both:#}");
    }

    #[test]
    fn old_and_new_flags_take_units() {
        let a = parse(&["--flush-idle-secs", "30", "--tier-ram-budget", "2GiB"]);
        let b = parse(&[
            "--flush-idle",
            "30s",
            "--tier-ram-budget-bytes",
            "2147483648",
        ]);
        for args in [a, b] {
            let c = Config::resolve(args).unwrap();
            assert_eq!(c.engine.flush_idle, Duration::from_secs(30));
            assert_eq!(c.engine.tiering.policy.ram_budget_bytes, 2 << 30);
        }
    }

    #[test]
    fn errors_name_the_key() {
        let err = with_file("[flush]\nmax_docs = \"many\"\n", &[]).unwrap_err();
        assert!(format!("{err:#}").contains("flush.max_docs"), "{err:#}");
        let err = with_file("[tier]\ninterval = \"soon\"\n", &[]).unwrap_err();
        assert!(format!("{err:#}").contains("tier.interval"), "{err:#}");
        let err = Config::resolve(parse(&["--hnsw-m", "1"])).unwrap_err();
        assert!(format!("{err:#}").contains("hnsw_m"), "{err:#}");
        let err = Config::resolve(parse(&["--worker-threads", "0"])).unwrap_err();
        assert!(format!("{err:#}").contains("worker_threads"), "{err:#}");
    }
}

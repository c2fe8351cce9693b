//! Command-line flags, and their resolution against the scenario's defaults into a [`Config`].

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Parser;
use serde::Serialize;

use crate::mix::Mix;
use crate::scenario::{Load, Scenario};
use crate::tiered::split::MIN_COLLECTIONS;

/// Default cap on requests in flight in open loop; a request due while the cap is reached is
/// dropped (not sent) and counted as a failure.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "akidb-load",
    version,
    about = "Load generator for the AkiDB HTTP API: open or closed loop, HDR latency \
             percentiles, server RSS/CPU, JSON and Markdown reports.",
    after_help = "Flags marked [scenario] default to the scenario's value (see README.md); \
                  explicit flags override.\n\
                  Exit codes: 0 ok, 1 error (server unreachable, bad input, ...), \
                  2 bad usage (or a scenario not available), 3 a --max-* threshold failed or \
                  no request succeeded."
)]
pub struct Args {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Named scenario that sets the knob defaults.
    #[arg(long, value_enum, default_value = "baseline")]
    pub scenario: Scenario,
    /// Measured phase, seconds. [scenario: baseline 10, sustained 600, spike 60, many-collections
    /// 60, tiered 30, failure-injection 30, churn 120]
    #[arg(long)]
    pub duration: Option<f64>,
    /// Warm-up before the measured phase, seconds, excluded from the statistics.
    /// [scenario: baseline 2, sustained 10, spike 5, many-collections 5, tiered 0,
    /// failure-injection 2]
    #[arg(long)]
    pub warmup: Option<f64>,
    /// Run the measured phase N times back to back (one warm-up, same preloaded collections)
    /// and report each repeat, min/median/max across repeats and the throughput spread (the
    /// noise of the run). Thresholds (--max-*) then apply to the median repeat's figures.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub repeat: usize,
    /// Open loop at this many requests per second (overrides --workers).
    /// [scenario: sustained 100, spike 50 (x spike factor in the middle third), many-collections
    /// 100, tiered 50]
    #[arg(long)]
    pub qps: Option<f64>,
    /// Closed loop with this many concurrent workers, when no --qps is given.
    /// [scenario: baseline 4, failure-injection 4, churn 4]
    #[arg(long)]
    pub workers: Option<usize>,
    /// Open loop only: rate multiplier for the middle third of the measured phase.
    /// [scenario: spike 5, others 1]
    #[arg(long)]
    pub spike_factor: Option<f64>,
    /// Operation weights. Known operations: search, insert, tier (tier = tier control: in turn
    /// a status read, pin, demote one tier, unpin and promote to hot, on the chosen collection;
    /// churn only reads the status).
    #[arg(long, default_value = Mix::DEFAULT)]
    pub mix: Mix,
    /// Number of collections, named load-<scenario>-<i>. [scenario: baseline 2, many-collections
    /// 100, tiered 20 (at least 3: a tenth stay hot, a fifth go warm, the rest cold), churn 1]
    #[arg(long)]
    pub collections: Option<usize>,
    /// Vector dimension (with --dataset: taken from the files; a different value is an error).
    /// [scenario: baseline 64, sustained 128, spike 128, many-collections 64, tiered 64]
    #[arg(long)]
    pub dimension: Option<usize>,
    /// Vectors preloaded into each collection before the run, in batches of 1000.
    /// [scenario: baseline 1000, sustained 10000, spike 5000, many-collections 100, tiered 2000,
    /// churn 10000]
    #[arg(long)]
    pub vectors_per_collection: Option<usize>,
    /// Neighbours per search.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// HNSW beam width sent with every search (the server uses max(ef, k)). Default: none sent,
    /// so the collection's own default applies.
    #[arg(long)]
    pub ef: Option<usize>,
    /// Seed of the random vectors and of the operation sequence.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// texmex folder (base.fvecs, queries.fvecs, groundtruth.ivecs): preload base vectors, search
    /// with the queries, check recall@k. Default: seeded random vectors.
    #[arg(long)]
    pub dataset: Option<PathBuf>,
    /// Documents per insert request.
    #[arg(long, default_value_t = 1)]
    pub insert_batch: usize,
    /// Open loop: most requests in flight; requests due beyond it are dropped and counted.
    #[arg(long, default_value_t = DEFAULT_MAX_IN_FLIGHT)]
    pub max_in_flight: usize,
    /// Per-request timeout, seconds (a timed-out request is a transport error).
    #[arg(long, default_value_t = 30.0)]
    pub request_timeout: f64,
    /// Longest wait, seconds, for the server to finish indexing the preloaded vectors before the
    /// run starts (the run starts anyway afterwards, with a note in the report).
    #[arg(long, default_value_t = 300.0)]
    pub index_timeout: f64,
    /// PID of the server for RSS/CPU sampling. Default: found by the --url port via /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Delete the collections at the end. [scenario: baseline, tiered, failure-injection true;
    /// others false]
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub cleanup: Option<bool>,
    /// Write the JSON report here.
    #[arg(long)]
    pub report_json: Option<PathBuf>,
    /// Write the Markdown report here (it is also printed on stdout).
    #[arg(long)]
    pub report_md: Option<PathBuf>,
    /// Scenario churn only: how far a replacement moves a document, as the norm of the noise
    /// added to its original (unit) vector; 0 re-upserts it unchanged. [default 0.2]
    #[arg(long)]
    pub churn_noise: Option<f64>,
    /// Fail (exit 3) when the p95 latency of any operation exceeds this, ms.
    #[arg(long)]
    pub max_p95_ms: Option<f64>,
    /// Fail (exit 3) when the p99 latency of any operation exceeds this, ms.
    #[arg(long)]
    pub max_p99_ms: Option<f64>,
    /// Fail (exit 3) when failed/attempted requests (HTTP errors, transport errors, dropped)
    /// exceeds this fraction, 0..1.
    #[arg(long)]
    pub max_error_rate: Option<f64>,
    /// Fail (exit 3) when the server's RSS grew by more than this over the measured phase
    /// (last sample minus first, MiB). Needs the server's process (found by its port or
    /// `--server-pid`).
    #[arg(long)]
    pub max_rss_growth_mib: Option<f64>,
    /// Fail (exit 3) when the server's mean CPU over the measured phase exceeds this, in
    /// percent of one core (200 = both cores of a 2-core machine).
    #[arg(long)]
    pub max_cpu_percent: Option<f64>,
}

/// The resolved settings of a run (recorded in the report).
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub url: String,
    pub scenario: Scenario,
    pub duration_secs: f64,
    pub warmup_secs: f64,
    /// `--repeat`: measured phases of `duration_secs` back to back; only in the JSON when > 1,
    /// so a single run's report keeps its fields.
    #[serde(skip_serializing_if = "is_one")]
    pub repeat: usize,
    /// `open` or `closed`.
    pub mode: &'static str,
    pub qps: Option<f64>,
    pub workers: Option<usize>,
    pub spike_factor: f64,
    pub mix: String,
    #[serde(skip)]
    pub mix_parsed: Mix,
    pub collections: usize,
    /// `None` until the dataset (if any) is read.
    pub dimension: Option<usize>,
    pub vectors_per_collection: usize,
    pub k: usize,
    /// `--ef`, when given (absent: the collection's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ef: Option<usize>,
    pub seed: u64,
    pub dataset: Option<PathBuf>,
    pub insert_batch: usize,
    pub max_in_flight: usize,
    pub request_timeout_secs: f64,
    pub index_timeout_secs: f64,
    pub server_pid: Option<u32>,
    pub cleanup: bool,
    pub max_p95_ms: Option<f64>,
    pub max_p99_ms: Option<f64>,
    pub max_error_rate: Option<f64>,
    pub max_rss_growth_mib: Option<f64>,
    pub max_cpu_percent: Option<f64>,
    /// Scenario `churn` only (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub churn_noise: Option<f64>,
}

impl Config {
    pub fn load(&self) -> Load {
        match (self.qps, self.workers) {
            (Some(qps), _) => Load::Open { qps },
            (None, Some(workers)) => Load::Closed { workers },
            (None, None) => unreachable!("resolve sets one"),
        }
    }

    pub fn collection_name(&self, i: usize) -> String {
        format!("load-{}-{i}", self.scenario.name())
    }
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

fn positive(name: &str, v: f64) -> Result<f64> {
    if !(v.is_finite() && v > 0.0) {
        bail!("{name} must be a positive number, got {v}");
    }
    Ok(v)
}

/// Applies the scenario defaults under the explicit flags and checks the values.
pub fn resolve(args: &Args) -> Result<Config> {
    let d = args.scenario.defaults();
    let url = args.url.trim_end_matches('/').to_string();
    if !url.starts_with("http://") && !url.starts_with("https://") {
        bail!("--url must start with http:// (got {url:?})");
    }
    let duration_secs = positive("--duration", args.duration.unwrap_or(d.duration_secs))?;
    let warmup_secs = args.warmup.unwrap_or(d.warmup_secs);
    if !(warmup_secs.is_finite() && warmup_secs >= 0.0) {
        bail!("--warmup must be >= 0, got {warmup_secs}");
    }
    if args.repeat == 0 {
        bail!("--repeat must be at least 1");
    }
    let load = match (args.qps, args.workers) {
        (Some(qps), _) => Load::Open {
            qps: positive("--qps", qps)?,
        },
        (None, Some(workers)) => Load::Closed { workers },
        (None, None) => d.load,
    };
    let (qps, workers) = match load {
        Load::Open { qps } => (Some(qps), None),
        Load::Closed { workers } => {
            if workers == 0 {
                bail!("--workers must be at least 1");
            }
            (None, Some(workers))
        }
    };
    let spike_factor = match (args.spike_factor, load) {
        (Some(f), Load::Closed { .. }) if f != 1.0 => {
            bail!("--spike-factor needs open loop (--qps); closed loop has no target rate")
        }
        (Some(f), _) => positive("--spike-factor", f)?,
        (None, Load::Open { .. }) => d.spike_factor,
        (None, Load::Closed { .. }) => 1.0,
    };
    let collections = args.collections.unwrap_or(d.collections);
    if collections == 0 {
        bail!("--collections must be at least 1");
    }
    if args.scenario == Scenario::Tiered && collections < MIN_COLLECTIONS {
        bail!(
            "--collections {collections}: the tiered scenario needs at least {MIN_COLLECTIONS} \
             (one hot, one warm, one cold)"
        );
    }
    let dimension = match (&args.dataset, args.dimension) {
        (Some(_), explicit) => explicit, // checked against the files once they are read
        (None, explicit) => Some(explicit.unwrap_or(d.dimension)),
    };
    if dimension == Some(0) {
        bail!("--dimension must be at least 1");
    }
    let vectors_per_collection = args
        .vectors_per_collection
        .unwrap_or(d.vectors_per_collection);
    if vectors_per_collection == 0 {
        bail!("--vectors-per-collection must be at least 1");
    }
    if !(1..=10_000).contains(&args.k) {
        bail!("--k must be in 1..=10000, got {}", args.k);
    }
    if args.ef == Some(0) {
        bail!("--ef must be at least 1");
    }
    if !(1..=1000).contains(&args.insert_batch) {
        bail!(
            "--insert-batch must be in 1..=1000, got {}",
            args.insert_batch
        );
    }
    if args.max_in_flight == 0 {
        bail!("--max-in-flight must be at least 1");
    }
    positive("--request-timeout", args.request_timeout)?;
    if !(args.index_timeout.is_finite() && args.index_timeout >= 0.0) {
        bail!("--index-timeout must be >= 0");
    }
    for (name, v) in [
        ("--max-p95-ms", args.max_p95_ms),
        ("--max-p99-ms", args.max_p99_ms),
        ("--max-cpu-percent", args.max_cpu_percent),
    ] {
        if let Some(v) = v {
            positive(name, v)?;
        }
    }
    if let Some(g) = args.max_rss_growth_mib
        && !(g.is_finite() && g >= 0.0)
    {
        bail!("--max-rss-growth-mib must be >= 0, got {g}");
    }
    if let Some(r) = args.max_error_rate
        && !(0.0..=1.0).contains(&r)
    {
        bail!("--max-error-rate is a fraction in 0..1, got {r}");
    }
    let churn_noise = match (args.scenario, args.churn_noise) {
        (Scenario::Churn, noise) => {
            let noise = noise.unwrap_or(crate::churn::log::DEFAULT_NOISE);
            if !(noise.is_finite() && noise >= 0.0) {
                bail!("--churn-noise must be >= 0, got {noise}");
            }
            Some(noise)
        }
        (_, Some(_)) => bail!("--churn-noise applies to --scenario churn only"),
        (_, None) => None,
    };
    Ok(Config {
        url,
        scenario: args.scenario,
        duration_secs,
        warmup_secs,
        repeat: args.repeat,
        mode: if qps.is_some() { "open" } else { "closed" },
        qps,
        workers,
        spike_factor,
        mix: args.mix.to_string(),
        mix_parsed: args.mix,
        collections,
        dimension,
        vectors_per_collection,
        k: args.k,
        ef: args.ef,
        seed: args.seed,
        dataset: args.dataset.clone(),
        insert_batch: args.insert_batch,
        max_in_flight: args.max_in_flight,
        request_timeout_secs: args.request_timeout,
        index_timeout_secs: args.index_timeout,
        server_pid: args.server_pid,
        cleanup: args.cleanup.unwrap_or(d.cleanup),
        max_p95_ms: args.max_p95_ms,
        max_p99_ms: args.max_p99_ms,
        max_error_rate: args.max_error_rate,
        max_rss_growth_mib: args.max_rss_growth_mib,
        max_cpu_percent: args.max_cpu_percent,
        churn_noise,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &[&str]) -> Result<Config> {
        let mut argv = vec!["akidb-load"];
        argv.extend_from_slice(extra);
        resolve(&Args::try_parse_from(argv)?)
    }

    #[test]
    fn scenario_defaults_and_explicit_overrides() {
        let c = parse(&["--scenario", "baseline"]).unwrap();
        assert_eq!((c.mode, c.workers, c.qps), ("closed", Some(4), None));
        assert_eq!(
            (c.collections, c.dimension, c.vectors_per_collection),
            (2, Some(64), 1000)
        );
        assert!(c.cleanup);
        assert_eq!(c.collection_name(1), "load-baseline-1");
        let c = parse(&[
            "--scenario",
            "baseline",
            "--qps",
            "20",
            "--cleanup",
            "false",
        ])
        .unwrap();
        assert_eq!((c.mode, c.qps, c.spike_factor), ("open", Some(20.0), 1.0));
        assert!(!c.cleanup);
        let c = parse(&["--scenario", "spike"]).unwrap();
        assert_eq!((c.mode, c.spike_factor), ("open", 5.0));
        let c = parse(&["--scenario", "spike", "--workers", "3"]).unwrap();
        assert_eq!((c.mode, c.spike_factor), ("closed", 1.0));
        let c = parse(&["--scenario", "sustained", "--cleanup"]).unwrap();
        assert!(c.cleanup);
        let c = parse(&["--dataset", "/x", "--mix", "search=1"]).unwrap();
        assert_eq!(c.dimension, None);
        assert_eq!(c.mix, "search=1,insert=0,tier=0");
        assert_eq!(c.repeat, 1);
        assert_eq!(parse(&["--repeat", "3"]).unwrap().repeat, 3);
        let c = parse(&["--scenario", "tiered"]).unwrap();
        assert_eq!((c.mode, c.qps, c.warmup_secs), ("open", Some(50.0), 0.0));
        assert_eq!((c.collections, c.vectors_per_collection), (20, 2000));
        assert_eq!(c.collection_name(19), "load-tiered-19");
        assert!(c.cleanup);
        let c = parse(&["--scenario", "churn"]).unwrap();
        assert_eq!((c.mode, c.workers, c.collections), ("closed", Some(4), 1));
        assert_eq!(c.churn_noise, Some(crate::churn::log::DEFAULT_NOISE));
        assert_eq!(c.collection_name(0), "load-churn-0");
        let c = parse(&["--scenario", "churn", "--churn-noise", "0"]).unwrap();
        assert_eq!(c.churn_noise, Some(0.0));
        assert_eq!(c.ef, None);
        assert_eq!(parse(&["--ef", "64"]).unwrap().ef, Some(64));
        assert_eq!(
            parse(&["--scenario", "baseline"]).unwrap().churn_noise,
            None
        );
        let c = parse(&["--scenario", "failure-injection"]).unwrap();
        assert_eq!(
            (c.mode, c.workers, c.duration_secs),
            ("closed", Some(4), 30.0)
        );
    }

    #[test]
    fn rejects_bad_values() {
        for bad in [
            &["--duration", "0"][..],
            &["--qps", "-3"],
            &["--workers", "0"],
            &["--repeat", "0"],
            &["--spike-factor", "2"],
            &["--max-error-rate", "1.5"],
            &["--k", "0"],
            &["--ef", "0"],
            &["--mix", "search=0"],
            &["--mix", "bogus=1"],
            &["--url", "localhost:8080"],
            &["--scenario", "tiered", "--collections", "2"],
            &["--scenario", "churn", "--churn-noise", "-1"],
            &["--churn-noise", "0.1"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}

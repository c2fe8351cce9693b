//! The run report: JSON (`--report-json`) and Markdown (`--report-md`, also printed on stdout).

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::cli::Config;
use crate::faults::FaultsReport;
use crate::mix::{Mix, Op};
use crate::procmon::ProcessSummary;
use crate::section::{counts, opt};
use crate::stats::{LatencySummary, OpStats, Spread, ThresholdCheck, error_rate, summarize};
use crate::tiered::TieredReport;

/// Counts and latency of one operation (or of all: `totals`) in the measured phase.
#[derive(Debug, Clone, Serialize)]
pub struct OpReport {
    /// Share of the mix, percent (absent for totals).
    pub mix_percent: Option<f64>,
    /// ok + errors + dropped.
    pub attempted: u64,
    pub ok: u64,
    /// HTTP errors + transport errors (dropped are counted apart).
    pub errors: u64,
    pub http_errors: u64,
    /// HTTP errors whose answer carried a `Retry-After` header (the server's backpressure).
    pub http_errors_with_retry_after: u64,
    pub transport_errors: u64,
    pub dropped: u64,
    /// (errors + dropped) / attempted; absent when nothing was attempted.
    pub error_rate: Option<f64>,
    /// Successful requests per second of the measured phase.
    pub throughput_per_sec: f64,
    /// Of successful requests; absent when there were none.
    pub latency_ms: Option<LatencySummary>,
    pub errors_by_status: BTreeMap<String, u64>,
    pub errors_by_code: BTreeMap<String, u64>,
    pub transport_errors_by_kind: BTreeMap<String, u64>,
}

impl OpReport {
    pub fn new(stats: &OpStats, measured_secs: f64, mix_percent: Option<f64>) -> OpReport {
        OpReport {
            mix_percent,
            attempted: stats.attempted(),
            ok: stats.ok,
            errors: stats.http_errors + stats.transport_errors,
            http_errors: stats.http_errors,
            http_errors_with_retry_after: stats.retry_after,
            transport_errors: stats.transport_errors,
            dropped: stats.dropped,
            error_rate: error_rate(stats.failed(), stats.attempted()),
            throughput_per_sec: stats.ok as f64 / measured_secs,
            latency_ms: summarize(&stats.latency),
            errors_by_status: stats
                .by_status
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            errors_by_code: stats.by_code.clone(),
            transport_errors_by_kind: stats.by_transport.clone(),
        }
    }
}

/// One [`OpReport`] per operation, keyed by its name.
pub fn op_reports(
    stats: &BTreeMap<Op, OpStats>,
    measured_secs: f64,
    mix: &Mix,
) -> BTreeMap<String, OpReport> {
    stats
        .iter()
        .map(|(op, s)| {
            (
                op.name().to_string(),
                OpReport::new(s, measured_secs, Some(mix.fraction(*op) * 100.0)),
            )
        })
        .collect()
}

/// All operations of one set of stats together.
pub fn totals_of(stats: &BTreeMap<Op, OpStats>) -> OpStats {
    let mut all = OpStats::default();
    for s in stats.values() {
        all.merge(s);
    }
    all
}

/// One measured phase of a `--repeat N` run.
#[derive(Debug, Clone, Serialize)]
pub struct RepeatRun {
    /// 1-based.
    pub repeat: usize,
    /// Seconds from the start of the run (warm-up included) at which this repeat began and ended.
    pub start_secs: f64,
    pub end_secs: f64,
    pub totals: OpReport,
    pub operations: BTreeMap<String, OpReport>,
}

/// Min / median / max over the repeats of one operation's latency percentiles (absent when the
/// operation never succeeded).
#[derive(Debug, Clone, Serialize)]
pub struct OpSpread {
    pub p50_ms: Option<Spread>,
    pub p95_ms: Option<Spread>,
    pub p99_ms: Option<Spread>,
}

/// `--repeat N` (N > 1): every repeat's figures and their spread.
#[derive(Debug, Clone, Serialize)]
pub struct RepeatsReport {
    pub count: usize,
    /// Each repeat's measured phase, seconds.
    pub duration_secs: f64,
    /// The noise of this run: (max - min) / median of the overall throughput across the
    /// repeats, percent (= `throughput_per_sec.spread_percent`).
    pub noise_percent: Option<f64>,
    /// Overall successful requests per second, across the repeats.
    pub throughput_per_sec: Spread,
    /// Per operation: p50 / p95 / p99 across the repeats.
    pub operations: BTreeMap<String, OpSpread>,
    pub runs: Vec<RepeatRun>,
}

impl RepeatsReport {
    /// `repeats[r]` holds the stats of repeat r, which ran from `warmup + r * duration` for
    /// `duration` seconds. Panics on an empty slice (there is always at least one repeat).
    pub fn new(
        repeats: &[BTreeMap<Op, OpStats>],
        warmup_secs: f64,
        duration_secs: f64,
        mix: &Mix,
    ) -> RepeatsReport {
        let runs: Vec<RepeatRun> = repeats
            .iter()
            .enumerate()
            .map(|(r, stats)| RepeatRun {
                repeat: r + 1,
                start_secs: warmup_secs + duration_secs * r as f64,
                end_secs: warmup_secs + duration_secs * (r + 1) as f64,
                totals: OpReport::new(&totals_of(stats), duration_secs, None),
                operations: op_reports(stats, duration_secs, mix),
            })
            .collect();
        let throughput: Vec<f64> = runs.iter().map(|r| r.totals.throughput_per_sec).collect();
        let throughput_per_sec = Spread::of(&throughput).expect("at least one repeat");
        let names: Vec<&String> = runs
            .iter()
            .flat_map(|r| r.operations.keys())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let operations = names
            .into_iter()
            .map(|name| {
                let latencies: Vec<&LatencySummary> = runs
                    .iter()
                    .filter_map(|r| r.operations.get(name)?.latency_ms.as_ref())
                    .collect();
                let of = |f: fn(&LatencySummary) -> f64| {
                    Spread::of(&latencies.iter().map(|l| f(l)).collect::<Vec<_>>())
                };
                let spread = OpSpread {
                    p50_ms: of(|l| l.p50_ms),
                    p95_ms: of(|l| l.p95_ms),
                    p99_ms: of(|l| l.p99_ms),
                };
                (name.clone(), spread)
            })
            .collect();
        RepeatsReport {
            count: runs.len(),
            duration_secs,
            noise_percent: throughput_per_sec.spread_percent,
            throughput_per_sec,
            operations,
            runs,
        }
    }

    /// `open_loop`: the throughput is the target rate while the server keeps up, so its spread
    /// says little there; the Markdown says so.
    fn to_markdown(&self, s: &mut String, open_loop: bool) {
        let _ = writeln!(
            s,
            "\n## Repeats\n\n{} measured phases of {} s back to back after one warm-up, against \
             the same collections.\n",
            self.count, self.duration_secs
        );
        let _ = writeln!(
            s,
            "**Noise of this run: {}** (spread of the throughput across the repeats, \
             (max - min) / median). Differences between runs smaller than this are noise.{}\n",
            self.noise_percent
                .map_or("n/a".into(), |p| format!("{p:.1} %")),
            if open_loop {
                " Open loop: the throughput follows the target rate while the server keeps up, \
                 so the latency spreads below are the telling figures."
            } else {
                ""
            }
        );
        let _ = writeln!(s, "| figure | min | median | max | spread |");
        let _ = writeln!(s, "|---|---:|---:|---:|---:|");
        let row = |s: &mut String, figure: &str, sp: &Spread, digits: usize| {
            let _ = writeln!(
                s,
                "| {figure} | {:.digits$} | {:.digits$} | {:.digits$} | {} |",
                sp.min,
                sp.median,
                sp.max,
                sp.spread_percent
                    .map_or("n/a".into(), |p| format!("{p:.1} %"))
            );
        };
        row(s, "throughput, ok/s", &self.throughput_per_sec, 1);
        for (name, o) in &self.operations {
            for (p, sp) in [("p50", &o.p50_ms), ("p95", &o.p95_ms), ("p99", &o.p99_ms)] {
                match sp {
                    Some(sp) if sp.n == self.count => row(s, &format!("{name} {p} ms"), sp, 2),
                    Some(sp) => row(
                        s,
                        &format!("{name} {p} ms ({} of {} repeats)", sp.n, self.count),
                        sp,
                        2,
                    ),
                    None => {
                        let _ = writeln!(s, "| {name} {p} ms | n/a | n/a | n/a | n/a |");
                    }
                }
            }
        }
        let _ = writeln!(s, "\nEach repeat:\n");
        let _ = writeln!(
            s,
            "| repeat | op | ok/s | ok | errors | dropped | p50 ms | p95 ms | p99 ms | max ms |"
        );
        let _ = writeln!(s, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for r in &self.runs {
            let rows = r
                .operations
                .iter()
                .map(|(k, v)| (k.as_str(), v))
                .chain([("all", &r.totals)]);
            for (name, o) in rows {
                let l = o.latency_ms.as_ref();
                let _ = writeln!(
                    s,
                    "| {} | {name} | {:.1} | {} | {} | {} | {} | {} | {} | {} |",
                    r.repeat,
                    o.throughput_per_sec,
                    o.ok,
                    o.errors,
                    o.dropped,
                    opt(l.map(|l| l.p50_ms), 2),
                    opt(l.map(|l| l.p95_ms), 2),
                    opt(l.map(|l| l.p99_ms), 2),
                    opt(l.map(|l| l.max_ms), 2),
                );
            }
        }
    }
}

/// Open-loop schedule adherence.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleReport {
    pub target_qps: f64,
    pub spike_factor: f64,
    /// Requests due in the measured phase.
    pub scheduled: u64,
    /// Of those, sent (the rest were dropped at the in-flight cap).
    pub sent: u64,
    pub dropped: u64,
    /// Sent more than `late_threshold_ms` after their due time (generator starved of CPU).
    pub late: u64,
    pub late_threshold_ms: f64,
    pub max_send_lag_ms: f64,
    pub max_in_flight: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecallReport {
    pub k: usize,
    /// Searches whose recall was checked.
    pub checked: u64,
    pub mean: Option<f64>,
    pub min: Option<f64>,
    /// Why recall was not (or not fully) checked.
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CollectionReport {
    pub name: String,
    /// Created by this run (false: it existed with the right dimension).
    pub created: bool,
    pub dimension: usize,
    pub count_after_preload: u64,
    pub deleted_at_end: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PreloadReport {
    pub vectors: u64,
    pub batch: usize,
    pub secs: f64,
    /// Waiting for the server's index to absorb the preload.
    pub index_wait_secs: f64,
    pub index_pending_at_start: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tool: &'static str,
    pub version: &'static str,
    pub started_unix_secs: u64,
    pub config: Config,
    pub dimension: usize,
    pub vector_source: String,
    /// The whole measured time: `duration_secs * repeat`.
    pub measured_secs: f64,
    /// All repeats together.
    pub totals: OpReport,
    pub operations: BTreeMap<String, OpReport>,
    /// `--repeat N` with N > 1 only (absent for a single run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeats: Option<RepeatsReport>,
    pub schedule: Option<ScheduleReport>,
    pub recall: Option<RecallReport>,
    pub preload: PreloadReport,
    pub collections: Vec<CollectionReport>,
    /// Scenario `tiered` only: tier moves, first query per tier, tier counts before/after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tiered: Option<TieredReport>,
    /// Scenario `failure-injection` only: what the tool checked (`/ready`, object-store
    /// counters, 503s and `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_injection: Option<FaultsReport>,
    pub server_process: ProcessSummary,
    pub generator_process: ProcessSummary,
    pub thresholds: Vec<ThresholdCheck>,
    /// Built-in failures independent of thresholds (e.g. nothing succeeded).
    pub problems: Vec<String>,
    /// No problem and every threshold passed.
    pub passed: bool,
    pub notes: Vec<String>,
}

fn process_md(out: &mut String, title: &str, p: &ProcessSummary) {
    let _ = writeln!(out, "\n### {title}\n");
    if let (Some(pid), Some(by)) = (p.pid, &p.found_by) {
        let _ = writeln!(
            out,
            "PID {pid} (found by {by}), {} samples in the measured phase (1/s).\n",
            p.samples_measured
        );
    }
    if let Some(r) = &p.unavailable_reason {
        let _ = writeln!(out, "**Not (fully) available:** {r}\n");
    }
    if p.samples_measured > 0 {
        let _ = writeln!(out, "| RSS min | RSS max | RSS mean | CPU mean | CPU max |");
        let _ = writeln!(out, "|---:|---:|---:|---:|---:|");
        let _ = writeln!(
            out,
            "| {} MiB | {} MiB | {} MiB | {} % | {} % |",
            opt(p.rss_mib_min, 1),
            opt(p.rss_mib_max, 1),
            opt(p.rss_mib_mean, 1),
            opt(p.cpu_percent_mean, 1),
            opt(p.cpu_percent_max, 1)
        );
        let _ = writeln!(out, "\nCPU % is of one core (200 % = two cores busy).");
    }
}

impl Report {
    pub fn to_markdown(&self) -> String {
        let c = &self.config;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# akidb-load report: {} ({})\n",
            c.scenario.name(),
            if self.passed { "PASSED" } else { "FAILED" }
        );
        let load = match (c.qps, c.workers) {
            (Some(q), _) if c.spike_factor != 1.0 => format!(
                "open loop, {q} req/s ({} req/s in the middle third)",
                q * c.spike_factor
            ),
            (Some(q), _) => format!("open loop, {q} req/s"),
            (None, Some(w)) => format!("closed loop, {w} workers"),
            _ => String::new(),
        };
        let _ = writeln!(s, "| setting | value |\n|---|---|");
        let mut rows = vec![
            ("server", c.url.clone()),
            ("load", load),
            (
                "duration",
                if c.repeat > 1 {
                    format!(
                        "{} x {} s measured back to back after {} s warm-up",
                        c.repeat, c.duration_secs, c.warmup_secs
                    )
                } else {
                    format!(
                        "{} s measured after {} s warm-up",
                        c.duration_secs, c.warmup_secs
                    )
                },
            ),
            ("mix", c.mix.clone()),
            (
                "collections",
                format!(
                    "{} x {} vectors, dimension {}",
                    c.collections, c.vectors_per_collection, self.dimension
                ),
            ),
            ("vectors", self.vector_source.clone()),
            ("k / insert batch", format!("{} / {}", c.k, c.insert_batch)),
            ("seed", c.seed.to_string()),
        ];
        if let Some(f) = &self.failure_injection {
            rows.extend(f.header_rows());
        }
        for (k, v) in rows {
            let _ = writeln!(s, "| {k} | {v} |");
        }

        if c.repeat > 1 {
            let _ = writeln!(
                s,
                "\n## Operations (measured phase: all {} repeats together, {} s)\n",
                c.repeat, self.measured_secs
            );
        } else {
            let _ = writeln!(s, "\n## Operations (measured phase)\n");
        }
        let _ = writeln!(
            s,
            "| op | mix | ok | errors | dropped | ok/s | p50 ms | p95 ms | p99 ms | p99.9 ms | max ms |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        let rows = self
            .operations
            .iter()
            .map(|(k, v)| (k.as_str(), v))
            .chain([("all", &self.totals)]);
        for (name, o) in rows {
            let l = o.latency_ms.as_ref();
            let _ = writeln!(
                s,
                "| {name} | {} | {} | {} | {} | {:.1} | {} | {} | {} | {} | {} |",
                o.mix_percent.map_or("".into(), |p| format!("{p:.0}%")),
                o.ok,
                o.errors,
                o.dropped,
                o.throughput_per_sec,
                opt(l.map(|l| l.p50_ms), 2),
                opt(l.map(|l| l.p95_ms), 2),
                opt(l.map(|l| l.p99_ms), 2),
                opt(l.map(|l| l.p999_ms), 2),
                opt(l.map(|l| l.max_ms), 2),
            );
        }
        let latency_from = if c.qps.is_some() {
            "the request's scheduled time (coordinated omission corrected)"
        } else {
            "the send time (closed loop: service time)"
        };
        let _ = writeln!(
            s,
            "\nLatency of successful requests, measured from {latency_from}."
        );

        if let Some(r) = &self.repeats {
            r.to_markdown(&mut s, c.qps.is_some());
        }
        if let Some(t) = &self.tiered {
            t.to_markdown(&mut s);
        }

        let _ = writeln!(s, "\n## Errors\n");
        if self.totals.errors + self.totals.dropped == 0 {
            let _ = writeln!(s, "None.");
        } else {
            let _ = writeln!(
                s,
                "| op | by HTTP status | by error code | with Retry-After | transport | dropped |"
            );
            let _ = writeln!(s, "|---|---|---|---:|---|---:|");
            for (name, o) in &self.operations {
                let _ = writeln!(
                    s,
                    "| {name} | {} | {} | {} | {} | {} |",
                    counts(&o.errors_by_status),
                    counts(&o.errors_by_code),
                    o.http_errors_with_retry_after,
                    counts(&o.transport_errors_by_kind),
                    o.dropped
                );
            }
        }
        let _ = writeln!(
            s,
            "\nError rate (errors + dropped) / attempted: {}",
            opt(self.totals.error_rate, 6)
        );

        if let Some(f) = &self.failure_injection {
            f.to_markdown(&mut s);
        }

        if let Some(sch) = &self.schedule {
            let _ = writeln!(s, "\n## Open-loop schedule\n");
            let _ = writeln!(
                s,
                "{} requests due in the measured phase, {} sent, {} dropped at the in-flight cap of {}; \
                 {} sent more than {} ms late; largest send lag {:.2} ms.",
                sch.scheduled,
                sch.sent,
                sch.dropped,
                sch.max_in_flight,
                sch.late,
                sch.late_threshold_ms,
                sch.max_send_lag_ms
            );
        }
        if let Some(r) = &self.recall {
            let _ = writeln!(s, "\n## Recall\n");
            let _ = writeln!(
                s,
                "recall@{} over {} searches: mean {}, min {}.",
                r.k,
                r.checked,
                opt(r.mean, 4),
                opt(r.min, 4)
            );
            if let Some(n) = &r.note {
                let _ = writeln!(s, "\n{n}");
            }
        }

        let _ = writeln!(s, "\n## Resources");
        process_md(&mut s, "Server", &self.server_process);
        process_md(
            &mut s,
            "Load generator (this process)",
            &self.generator_process,
        );

        let p = &self.preload;
        let _ = writeln!(
            s,
            "\n## Preload\n\n{} vectors in batches of {} in {:.1} s; waited {:.1} s for indexing \
             ({} vectors still pending at the start).",
            p.vectors, p.batch, p.secs, p.index_wait_secs, p.index_pending_at_start
        );
        let names: Vec<String> = self
            .collections
            .iter()
            .map(|c| format!("{}{}", c.name, if c.created { "" } else { " (existed)" }))
            .collect();
        let shown = names
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        let more = names.len().saturating_sub(10);
        let _ = writeln!(
            s,
            "\nCollections: {shown}{}; {}.",
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            },
            if self.collections.iter().all(|c| c.deleted_at_end) {
                "deleted at the end"
            } else {
                "kept"
            }
        );

        if !self.problems.is_empty() {
            let _ = writeln!(s, "\n## Problems\n");
            for p in &self.problems {
                let _ = writeln!(s, "- **FAIL:** {p}");
            }
        }
        if !self.thresholds.is_empty() {
            let _ = writeln!(s, "\n## Thresholds\n");
            if c.repeat > 1 {
                let _ = writeln!(
                    s,
                    "Checked against the median repeat: each figure is its median over the {} \
                     repeats.\n",
                    c.repeat
                );
            }
            for t in &self.thresholds {
                let _ = writeln!(
                    s,
                    "- {} {}",
                    if t.passed { "pass:" } else { "**FAIL:**" },
                    t.describe()
                );
            }
        }
        if !self.notes.is_empty() {
            let _ = writeln!(s, "\n## Notes\n");
            for n in &self.notes {
                let _ = writeln!(s, "- {n}");
            }
        }
        s
    }
}

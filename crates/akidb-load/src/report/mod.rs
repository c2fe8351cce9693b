//! The run report: JSON (`--report-json`) and Markdown (`--report-md`, also printed on stdout).
//! [`Report`] and its smaller parts (schedule, recall, preload, collections) are here, with the
//! Markdown page; per-operation figures are in `ops.rs`, the `--repeat` figures in `repeats.rs`.

mod ops;
mod repeats;

pub use ops::{OpReport, op_reports, totals_of};
pub use repeats::{OpSpread, RepeatRun, RepeatsReport};

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::cli::Config;
use crate::procmon::ProcessSummary;
use crate::section::{ReportSection, Section, counts, opt};
use crate::stats::ThresholdCheck;

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
    /// Vectors acknowledged per second during the preload.
    pub acknowledged_per_sec: f64,
    /// Vectors per second from the first upsert until the graph held them (those still
    /// pending when the wait ended not counted): the rate at which a stream of upserts becomes
    /// searchable by the index.
    pub indexed_per_sec: f64,
}

impl PreloadReport {
    pub fn new(vectors: u64, batch: usize, secs: f64, index_wait_secs: f64, pending: u64) -> Self {
        let per_sec = |n: u64, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
        PreloadReport {
            vectors,
            batch,
            secs,
            index_wait_secs,
            index_pending_at_start: pending,
            acknowledged_per_sec: per_sec(vectors, secs),
            indexed_per_sec: per_sec(vectors.saturating_sub(pending), secs + index_wait_secs),
        }
    }
}

/// The whole report. `S`: the scenario's own part ([`NoSection`](crate::section::NoSection)
/// for the scenarios without one).
#[derive(Debug, Clone, Serialize)]
#[serde(bound(serialize = "S: ReportSection"))]
pub struct Report<S> {
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
    /// The scenario's own part, under its key, when it has one: `tiered` (tier moves, first
    /// query per tier, tier counts before/after) or `failure_injection` (what the tool checked:
    /// `/ready`, object-store counters, 503s and `Retry-After`). Absent for the others.
    #[serde(flatten)]
    pub scenario: Section<S>,
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
        let _ = writeln!(
            out,
            "| RSS min | RSS max | RSS mean | RSS growth (last − first) | CPU mean | CPU max |"
        );
        let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|");
        let _ = writeln!(
            out,
            "| {} MiB | {} MiB | {} MiB | {} MiB | {} % | {} % |",
            opt(p.rss_mib_min, 1),
            opt(p.rss_mib_max, 1),
            opt(p.rss_mib_mean, 1),
            opt(p.rss_mib_growth, 1),
            opt(p.cpu_percent_mean, 1),
            opt(p.cpu_percent_max, 1)
        );
        let _ = writeln!(out, "\nCPU % is of one core (200 % = two cores busy).");
    }
}

impl<S: ReportSection> Report<S> {
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
            (
                "k / ef / insert batch",
                format!(
                    "{} / {} / {}",
                    c.k,
                    c.ef.map_or("collection default".into(), |e| e.to_string()),
                    c.insert_batch
                ),
            ),
            ("seed", c.seed.to_string()),
        ];
        if let Some(section) = &self.scenario.0 {
            rows.extend(section.header_rows());
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
        if let Some(section) = &self.scenario.0 {
            section.markdown_after_operations(&mut s);
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

        if let Some(section) = &self.scenario.0 {
            section.markdown_after_errors(&mut s);
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
             ({} vectors still pending at the start). Acknowledged at {:.0} vectors/s; \
             searchable by the index at {:.0} vectors/s (first upsert to the graph holding them).",
            p.vectors,
            p.batch,
            p.secs,
            p.index_wait_secs,
            p.index_pending_at_start,
            p.acknowledged_per_sec,
            p.indexed_per_sec
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

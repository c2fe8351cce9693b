//! `--repeat N` (N > 1): each measured phase's figures and their spread across the repeats
//! (the noise of the run), and its Markdown section.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::ops::{OpReport, op_reports, totals_of};
use crate::mix::{Mix, Op};
use crate::section::opt;
use crate::stats::{LatencySummary, OpStats, Spread};

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
    pub fn to_markdown(&self, s: &mut String, open_loop: bool) {
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

//! The finish phase: the scenario's end-of-run reads ([`ScenarioHooks::finish`]), the cleanup,
//! the report (Markdown on stdout, `--report-json`, `--report-md`), and whether the run passed:
//! no built-in problem (nothing succeeded) and every `--max-*` threshold met, checked against the
//! median repeat. The report itself is assembled without I/O ([`build_report`]).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use anyhow::{Context, Result};

use super::collections::delete_collections;
use super::counters::Shared;
use super::drive::{Driven, LATE_AFTER};
use super::prepare::Prepared;
use crate::cli::Args;
use crate::hooks::ScenarioHooks;
use crate::mix::Op;
use crate::procmon::ProcessSummary;
use crate::report::{
    OpReport, RecallReport, RepeatsReport, Report, ScheduleReport, op_reports, totals_of,
};
use crate::section::{ReportSection, Section};
use crate::stats::{OpStats, check_resources, check_thresholds_over_repeats};

/// The measured requests: per repeat, and every repeat together (`operations` and `totals`
/// cover every repeat together; thresholds use the median repeat).
pub struct Measured {
    pub per_repeat: Vec<BTreeMap<Op, OpStats>>,
    /// By operation, every repeat together.
    pub stats: BTreeMap<Op, OpStats>,
    /// Every operation of every repeat.
    pub all: OpStats,
}

impl Measured {
    pub fn of(shared: &Shared) -> Measured {
        let per_repeat = shared.stats.lock().expect("stats lock").clone();
        let mut stats: BTreeMap<Op, OpStats> = BTreeMap::new();
        for repeat in &per_repeat {
            for (op, s) in repeat {
                stats.entry(*op).or_default().merge(s);
            }
        }
        let all = totals_of(&stats);
        Measured {
            per_repeat,
            stats,
            all,
        }
    }
}

/// The finish phase; returns whether the run passed.
pub async fn finish<H: ScenarioHooks>(
    args: &Args,
    mut prepared: Prepared,
    hooks: H,
    driven: Driven,
) -> Result<bool> {
    let measured = Measured::of(&driven.shared);
    // The scenario's reads come before the cleanup, which deletes the collections.
    let section = hooks
        .finish(&prepared.requests, &measured.all, &mut prepared.notes)
        .await;

    // Cleanup.
    if prepared.cfg.cleanup {
        let problems = delete_collections(&prepared.client, &prepared.requests.names).await;
        for c in &mut prepared.collections {
            c.deleted_at_end = !problems.iter().any(|p| p.contains(&c.name));
        }
        for p in problems {
            eprintln!("akidb-load: warning: {p}");
            prepared.notes.push(p);
        }
    }

    // The report.
    let report = build_report(prepared, driven, measured, section);
    let md = report.to_markdown();
    print!("{md}");
    if let Some(path) = &args.report_json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("writing --report-json {}", path.display()))?;
    }
    if let Some(path) = &args.report_md {
        std::fs::write(path, &md)
            .with_context(|| format!("writing --report-md {}", path.display()))?;
    }
    if !report.passed {
        for p in &report.problems {
            eprintln!("akidb-load: run failed: {p}");
        }
        for t in report.thresholds.iter().filter(|t| !t.passed) {
            eprintln!("akidb-load: threshold failed: {}", t.describe());
        }
    }
    Ok(report.passed)
}

/// The report of the run, from what the phases left.
pub fn build_report<S: ReportSection>(
    p: Prepared,
    driven: Driven,
    m: Measured,
    section: Option<S>,
) -> Report<S> {
    let measured_secs = driven.phases.measured_secs();
    let operations = op_reports(&m.stats, measured_secs, &p.cfg.mix_parsed);
    let thresholds = check_thresholds_over_repeats(
        &m.per_repeat,
        p.cfg.max_p95_ms,
        p.cfg.max_p99_ms,
        p.cfg.max_error_rate,
    );
    let mut problems = Vec::new();
    let all = &m.all;
    if all.ok == 0 {
        problems.push(format!(
            "no request succeeded in the measured phase ({} attempted): the server stalled or \
             refused everything",
            all.attempted()
        ));
    } else if m.per_repeat.len() > 1 {
        for (r, repeat) in m.per_repeat.iter().enumerate() {
            let t = totals_of(repeat);
            if t.ok == 0 {
                problems.push(format!(
                    "no request succeeded in repeat {} of {} ({} attempted): the server stalled",
                    r + 1,
                    m.per_repeat.len(),
                    t.attempted()
                ));
            }
        }
    }
    let repeats = (m.per_repeat.len() > 1).then(|| {
        RepeatsReport::new(
            &m.per_repeat,
            p.cfg.warmup_secs,
            p.cfg.duration_secs,
            &p.cfg.mix_parsed,
        )
    });
    let sampled = driven.sampled;
    let server_process = match p.server.pid {
        Some(pid) => ProcessSummary::from_samples(
            pid,
            p.server.found_by,
            sampled.server,
            sampled.server_error,
        ),
        None => ProcessSummary::unavailable(
            p.server
                .problem
                .unwrap_or_else(|| "server process not found".into()),
        ),
    };
    let generator_process =
        ProcessSummary::from_samples(std::process::id(), "self", sampled.own, sampled.own_error);
    let mut thresholds = thresholds;
    let resources = check_resources(
        server_process.rss_mib_growth,
        server_process.cpu_percent_mean,
        p.cfg.max_rss_growth_mib,
        p.cfg.max_cpu_percent,
    );
    if resources.len()
        < usize::from(p.cfg.max_rss_growth_mib.is_some())
            + usize::from(p.cfg.max_cpu_percent.is_some())
    {
        problems.push(format!(
            "a server resource threshold was given but the server's RSS or CPU was not sampled: {}",
            server_process
                .unavailable_reason
                .as_deref()
                .unwrap_or("no samples")
        ));
    }
    thresholds.extend(resources);
    let passed = problems.is_empty() && thresholds.iter().all(|t| t.passed);
    let shared = &driven.shared;
    let schedule = driven.open_loop.then(|| ScheduleReport {
        target_qps: p.cfg.qps.unwrap_or_default(),
        spike_factor: p.cfg.spike_factor,
        scheduled: shared.scheduled_measured.load(Ordering::Relaxed),
        sent: shared.sent_measured.load(Ordering::Relaxed),
        dropped: all.dropped,
        late: shared.late.load(Ordering::Relaxed),
        late_threshold_ms: LATE_AFTER.as_secs_f64() * 1000.0,
        max_send_lag_ms: shared.max_lag_us.load(Ordering::Relaxed) as f64 / 1000.0,
        max_in_flight: p.cfg.max_in_flight,
    });
    let checks_recall = p.dataset.is_some() || p.requests.churn.is_some();
    let recall = checks_recall.then(|| {
        let s = m.stats.get(&Op::Search);
        let n = s.map_or(0, |s| s.recall_n);
        RecallReport {
            k: p.cfg.k,
            checked: n,
            mean: s.filter(|_| n > 0).map(|s| s.recall_sum / n as f64),
            min: s.filter(|_| n > 0).map(|s| s.recall_min),
            note: p.recall_note.clone(),
        }
    });
    Report {
        tool: "akidb-load",
        version: env!("CARGO_PKG_VERSION"),
        started_unix_secs: driven.started_unix_secs,
        dimension: p.dim,
        vector_source: match &p.dataset {
            Some(d) => format!(
                "dataset {} (first {} of {} base vectors, {} queries)",
                d.path.display(),
                p.loaded,
                d.base.len(),
                d.queries.len()
            ),
            None => format!("seeded random, uniform in [-1, 1), seed {}", p.cfg.seed),
        },
        config: p.cfg.clone(),
        measured_secs,
        totals: OpReport::new(all, measured_secs, None),
        operations,
        repeats,
        schedule,
        recall,
        preload: p.preload,
        collections: p.collections,
        scenario: Section(section),
        server_process,
        generator_process,
        thresholds,
        problems,
        passed,
        notes: p.notes,
    }
}

//! Per-operation figures of the measured phase: [`OpReport`] (counts, rate, latency, errors of
//! one operation or of all together), built from the run's [`OpStats`].

use std::collections::BTreeMap;

use serde::Serialize;

use crate::mix::{Mix, Op};
use crate::stats::{LatencySummary, OpStats, error_rate, summarize};

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

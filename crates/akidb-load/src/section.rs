//! Report pieces shared by the run report and the scenarios' sections of it: [`SeriesReport`]
//! (counts and latency of requests outside the measured load) and the Markdown cells [`opt`]
//! and [`counts`]. A leaf: it knows nothing of the run, the report or any scenario.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::stats::{LatencySummary, OpStats, summarize};

/// Counts and latency of requests outside the measured load (the tiered scenario's tier moves,
/// status reads and first queries): no rate, no mix share.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesReport {
    /// ok + errors.
    pub attempted: u64,
    pub ok: u64,
    /// HTTP errors + transport errors.
    pub errors: u64,
    /// Of successful requests; absent when there were none.
    pub latency_ms: Option<LatencySummary>,
    pub errors_by_status: BTreeMap<String, u64>,
    pub errors_by_code: BTreeMap<String, u64>,
    pub transport_errors_by_kind: BTreeMap<String, u64>,
}

impl SeriesReport {
    pub fn new(stats: &OpStats) -> SeriesReport {
        SeriesReport {
            attempted: stats.attempted(),
            ok: stats.ok,
            errors: stats.http_errors + stats.transport_errors,
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

/// A number with `digits` decimals, `n/a` when absent.
pub fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.digits$}"))
}

/// `key: count, ...`, `-` when empty.
pub fn counts(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "-".into();
    }
    m.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

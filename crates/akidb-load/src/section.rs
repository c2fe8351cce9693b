//! A scenario's own part of the run report, and the pieces it shares with the main report.
//!
//! - [`ReportSection`]: what a scenario's part must give: its JSON (under its own key) and its
//!   Markdown, placed where the page has room for it. [`Section`] is how the report holds one
//!   (at most one per run); [`NoSection`] is the part of the scenarios without one.
//! - [`SeriesReport`]: counts and latency of requests outside the measured load.
//! - [`opt`] and [`counts`]: Markdown cells.
//!
//! A leaf: it knows nothing of the run, the report or any scenario.

use std::collections::BTreeMap;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

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

/// A scenario's own part of the report (`tiered`, `failure_injection`). The Markdown methods
/// add nothing by default; each says where on the page its text goes.
pub trait ReportSection: Serialize {
    /// The section's key in the JSON report.
    const KEY: &'static str;

    /// Rows added to the settings table at the top of the Markdown page.
    fn header_rows(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// Markdown after the operations table (and `--repeat`'s), before the errors.
    fn markdown_after_operations(&self, _s: &mut String) {}

    /// Markdown after the errors, before the open-loop schedule.
    fn markdown_after_errors(&self, _s: &mut String) {}
}

/// The report's scenario part: absent, or one JSON entry `KEY: section`. The report flattens
/// it into its own object (`#[serde(flatten)]`), so the entry sits where the field does.
#[derive(Debug, Clone)]
pub struct Section<S>(pub Option<S>);

impl<S: ReportSection> Serialize for Section<S> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        let mut map = serializer.serialize_map(Some(usize::from(self.0.is_some())))?;
        if let Some(section) = &self.0 {
            map.serialize_entry(S::KEY, section)?;
        }
        map.end()
    }
}

/// The part of a scenario that adds none to the report: there is no value of this type.
#[derive(Debug, Clone, Serialize)]
pub enum NoSection {}

impl ReportSection for NoSection {
    const KEY: &'static str = "none";
}

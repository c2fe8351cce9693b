//! The `failure-injection` part of the report, pure: `/ready` samples ([`ReadyReport`]), the
//! `/metrics` text parsed ([`parse_metrics`]), and what they add up to ([`FaultsReport`]), with
//! its rows in the Markdown header and its Markdown section.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::section::{ReportSection, counts};

/// How often `/ready` is polled during the run.
pub const READY_INTERVAL: Duration = Duration::from_millis(500);
/// A `/ready` answer slower than this counts as failing (`timeout`).
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// `/metrics` counters whose change over the run shows object-store traffic and trouble.
pub const STORE_COUNTERS: [&str; 6] = [
    "akidb_uploads_total",
    "akidb_upload_retries_total",
    "akidb_upload_failures_transient_total",
    "akidb_upload_failures_permanent_total",
    "akidb_upload_breaker_rejections_total",
    "akidb_upload_breaker_opened_total",
];
/// `/metrics` gauges read at the end of the run.
pub const STORE_GAUGES: [&str; 2] = ["akidb_upload_breaker_open", "akidb_dlq_entries"];

/// The unlabelled samples of a Prometheus text exposition, by metric name.
pub fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let name = parts.next()?;
            if name.contains('{') {
                return None;
            }
            Some((name.to_string(), parts.next()?.parse().ok()?))
        })
        .collect()
}

/// A change of the `/ready` state (the first sample included).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReadyChange {
    /// From the start of the run (warm-up included).
    pub t_secs: f64,
    /// `ready`, `degraded`, another status string, or `failing: <why>`.
    pub state: String,
}

/// `/ready` samples taken during the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReadyReport {
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub samples: u64,
    /// 200 `{"status": "ready"}`.
    pub ready: u64,
    /// 200 `{"status": "degraded"}`: the object-store circuit breaker is open.
    pub degraded: u64,
    /// 200 with another status string.
    pub other: u64,
    /// No 200: an HTTP error (503 while shutting down), a timeout, no connection.
    pub failing: u64,
    pub failing_by_kind: BTreeMap<String, u64>,
    /// The first sample and every change of state.
    pub changes: Vec<ReadyChange>,
}

impl ReadyReport {
    pub fn new() -> ReadyReport {
        ReadyReport {
            interval_ms: READY_INTERVAL.as_millis() as u64,
            timeout_ms: READY_TIMEOUT.as_millis() as u64,
            ..ReadyReport::default()
        }
    }

    /// One probe's answer: the parsed body, or how it failed.
    pub fn add(&mut self, t_secs: f64, answer: Result<&Value, String>) {
        self.samples += 1;
        let state = match answer {
            Ok(v) => match v.get("status").and_then(Value::as_str) {
                Some("ready") => {
                    self.ready += 1;
                    "ready".to_string()
                }
                Some("degraded") => {
                    self.degraded += 1;
                    "degraded".to_string()
                }
                other => {
                    self.other += 1;
                    other.unwrap_or("(no status)").to_string()
                }
            },
            Err(why) => {
                self.failing += 1;
                *self.failing_by_kind.entry(why.clone()).or_default() += 1;
                format!("failing: {why}")
            }
        };
        if self.changes.last().is_none_or(|c| c.state != state) {
            self.changes.push(ReadyChange { t_secs, state });
        }
    }
}

/// The `failure-injection` part of the report.
#[derive(Debug, Clone, Serialize)]
pub struct FaultsReport {
    /// What the tool cannot check.
    pub server_faults: String,
    pub ready: ReadyReport,
    /// Change of each object-store counter over the run (warm-up included), from `/metrics`.
    pub object_store_delta: Option<BTreeMap<String, f64>>,
    /// Object-store gauges at the end of the run.
    pub object_store_at_end: Option<BTreeMap<String, f64>>,
    /// Why the object-store figures are absent.
    pub metrics_unavailable: Option<String>,
    /// Whether object-store trouble was seen: upload retries or failures, breaker rejections
    /// or openings, or a `degraded` `/ready`. Absent when nothing could tell (no `/metrics`).
    pub faults_observed: Option<bool>,
    /// HTTP 503 answers in the measured phase (all operations).
    pub http_503: u64,
    /// HTTP errors in the measured phase whose answer carried `Retry-After`.
    pub errors_with_retry_after: u64,
}

impl FaultsReport {
    /// `before` / `after`: `/metrics` at the start and at the end of the run.
    pub fn new(
        ready: ReadyReport,
        before: Result<BTreeMap<String, f64>, String>,
        after: Result<BTreeMap<String, f64>, String>,
        http_503: u64,
        errors_with_retry_after: u64,
    ) -> FaultsReport {
        let (delta, at_end, unavailable) = match (before, after) {
            (Ok(b), Ok(a)) => {
                let delta = STORE_COUNTERS
                    .iter()
                    .map(|&c| (c.to_string(), a[c] - b[c]))
                    .collect::<BTreeMap<_, _>>();
                let at_end = STORE_GAUGES
                    .iter()
                    .filter_map(|&g| Some((g.to_string(), *a.get(g)?)))
                    .collect::<BTreeMap<_, _>>();
                (Some(delta), Some(at_end), None)
            }
            (Err(e), _) | (_, Err(e)) => (None, None, Some(e)),
        };
        let trouble = delta.as_ref().is_some_and(|d| {
            d.iter()
                .any(|(k, v)| k != "akidb_uploads_total" && *v > 0.0)
        }) || at_end
            .as_ref()
            .is_some_and(|g| g.get("akidb_upload_breaker_open").is_some_and(|v| *v > 0.0));
        let faults_observed = if trouble || ready.degraded > 0 {
            Some(true)
        } else {
            delta.as_ref().map(|_| false)
        };
        FaultsReport {
            server_faults: "not set by this tool: the server must have been started with \
                            `--test-faults latency_ms=..,fail_rate=..,seed=..` (testing only); \
                            the tool cannot read the server's fault settings"
                .into(),
            ready,
            object_store_delta: delta,
            object_store_at_end: at_end,
            metrics_unavailable: unavailable,
            faults_observed,
            http_503,
            errors_with_retry_after,
        }
    }

    fn delta(&self, counter: &str) -> Option<f64> {
        self.object_store_delta.as_ref()?.get(counter).copied()
    }
}

impl ReportSection for FaultsReport {
    const KEY: &'static str = "failure_injection";

    /// What was checked, one line each, for the header of the Markdown report.
    fn header_rows(&self) -> Vec<(&'static str, String)> {
        let r = &self.ready;
        let mut rows = vec![
            ("fault injection", self.server_faults.clone()),
            (
                "checked: /ready",
                format!(
                    "polled every {} ms during the run: {} samples, {} ready, {} degraded, {} \
                     failing{}",
                    r.interval_ms,
                    r.samples,
                    r.ready,
                    r.degraded,
                    r.failing,
                    if r.other > 0 {
                        format!(", {} other", r.other)
                    } else {
                        String::new()
                    }
                ),
            ),
        ];
        let store = match (&self.object_store_delta, &self.metrics_unavailable) {
            (Some(_), _) => {
                let d = |c: &str| self.delta(c).unwrap_or(0.0);
                format!(
                    "`/metrics` before and after the run: {} uploads, {} retries, {} failed \
                     (transient), {} failed (permanent), {} breaker rejections, breaker opened {} \
                     times",
                    d("akidb_uploads_total"),
                    d("akidb_upload_retries_total"),
                    d("akidb_upload_failures_transient_total"),
                    d("akidb_upload_failures_permanent_total"),
                    d("akidb_upload_breaker_rejections_total"),
                    d("akidb_upload_breaker_opened_total"),
                )
            }
            (None, Some(why)) => format!("not checked: {why}"),
            (None, None) => "not checked".into(),
        };
        rows.push(("checked: object store", store));
        rows.push((
            "faults observed",
            match self.faults_observed {
                Some(true) => "yes (object-store retries or failures, or a degraded /ready)".into(),
                Some(false) if self.delta("akidb_uploads_total") == Some(0.0) => {
                    "no: nothing reached the object store during the run (the server flushes \
                     after flush_max_docs documents or flush_idle_secs idle; start it with a \
                     small --flush-max-docs, see README)"
                        .into()
                }
                Some(false) => "no: uploads succeeded without a retry and /ready never said \
                                degraded (is the server running with --test-faults?)"
                    .into(),
                None => "unknown (no object-store counters)".into(),
            },
        ));
        rows.push((
            "checked: errors",
            format!(
                "{} HTTP 503 answers in the measured phase; {} errors carried Retry-After",
                self.http_503, self.errors_with_retry_after
            ),
        ));
        rows
    }

    /// The `## Fault injection` section.
    fn markdown_after_errors(&self, s: &mut String) {
        let r = &self.ready;
        let _ = writeln!(s, "\n## Fault injection\n");
        let _ = writeln!(
            s,
            "Fault injection is {}. What the tool checked from the outside:\n",
            self.server_faults
        );
        let _ = writeln!(
            s,
            "`GET /ready` every {} ms during the run (an answer slower than {} ms counts as \
             failing):\n",
            r.interval_ms, r.timeout_ms
        );
        let _ = writeln!(s, "| samples | ready | degraded | other | failing |");
        let _ = writeln!(s, "|---:|---:|---:|---:|---:|");
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            r.samples, r.ready, r.degraded, r.other, r.failing
        );
        if !r.failing_by_kind.is_empty() {
            let _ = writeln!(s, "\nFailing probes: {}.", counts(&r.failing_by_kind));
        }
        let shown: Vec<String> = r
            .changes
            .iter()
            .take(20)
            .map(|c| format!("{:.1} s {}", c.t_secs, c.state))
            .collect();
        let _ = writeln!(
            s,
            "\nState changes: {}{}.",
            if shown.is_empty() {
                "none (no sample)".to_string()
            } else {
                shown.join(" → ")
            },
            if r.changes.len() > 20 {
                format!(" and {} more", r.changes.len() - 20)
            } else {
                String::new()
            }
        );
        match (&self.object_store_delta, &self.metrics_unavailable) {
            (Some(delta), _) => {
                let _ = writeln!(
                    s,
                    "\nObject store, change over the run (warm-up included) from `/metrics`:\n"
                );
                let _ = writeln!(s, "| counter | change |");
                let _ = writeln!(s, "|---|---:|");
                for (k, v) in delta {
                    let _ = writeln!(s, "| {k} | {v} |");
                }
                if let Some(g) = &self.object_store_at_end {
                    for (k, v) in g {
                        let _ = writeln!(s, "| {k} (at the end) | {v} |");
                    }
                }
            }
            (None, Some(why)) => {
                let _ = writeln!(s, "\nObject-store counters not checked: {why}.");
            }
            (None, None) => {}
        }
        let _ = writeln!(
            s,
            "\n{} HTTP 503 answers in the measured phase; {} errors carried `Retry-After` (the \
             server's backpressure when unflushed WAL reaches its budget while the object store \
             is unreachable: expected under faults). They count in the error rate; they fail \
             the run only through `--max-error-rate`.",
            self.http_503, self.errors_with_retry_after
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_unlabelled_metrics() {
        let m = parse_metrics(
            "# HELP akidb_uploads_total x\n# TYPE akidb_uploads_total counter\n\
             akidb_uploads_total 12\nakidb_tier_collections{tier=\"hot\"} 3\n\
             akidb_upload_seconds_total 0.250000\n# EOF\n",
        );
        assert_eq!(m["akidb_uploads_total"], 12.0);
        assert_eq!(m["akidb_upload_seconds_total"], 0.25);
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn ready_samples_are_counted_and_changes_kept() {
        let mut r = ReadyReport::new();
        r.add(0.5, Ok(&json!({"status": "ready"})));
        r.add(1.0, Ok(&json!({"status": "ready"})));
        r.add(1.5, Ok(&json!({"status": "degraded"})));
        r.add(2.0, Err("timeout".into()));
        r.add(2.5, Ok(&json!({"status": "ready"})));
        assert_eq!(
            (r.samples, r.ready, r.degraded, r.failing, r.other),
            (5, 3, 1, 1, 0)
        );
        assert_eq!(r.failing_by_kind["timeout"], 1);
        let states: Vec<&str> = r.changes.iter().map(|c| c.state.as_str()).collect();
        assert_eq!(states, ["ready", "degraded", "failing: timeout", "ready"]);
    }

    #[test]
    fn faults_are_observed_from_counters_or_a_degraded_ready() {
        let counters = |retries: f64| {
            let mut m: BTreeMap<String, f64> = STORE_COUNTERS
                .iter()
                .map(|c| (c.to_string(), 0.0))
                .collect();
            m.insert("akidb_uploads_total".into(), 4.0);
            m.insert("akidb_upload_retries_total".into(), retries);
            m
        };
        let f = FaultsReport::new(
            ReadyReport::new(),
            Ok(counters(0.0)),
            Ok(counters(3.0)),
            0,
            0,
        );
        assert_eq!(f.faults_observed, Some(true));
        assert_eq!(f.delta("akidb_upload_retries_total"), Some(3.0));
        let f = FaultsReport::new(
            ReadyReport::new(),
            Ok(counters(1.0)),
            Ok(counters(1.0)),
            0,
            0,
        );
        assert_eq!(f.faults_observed, Some(false));
        let mut degraded = ReadyReport::new();
        degraded.add(0.5, Ok(&json!({"status": "degraded"})));
        let f = FaultsReport::new(degraded, Err("no metrics".into()), Ok(counters(0.0)), 0, 0);
        assert_eq!(f.faults_observed, Some(true));
        assert_eq!(f.metrics_unavailable.as_deref(), Some("no metrics"));
        let f = FaultsReport::new(ReadyReport::new(), Err("x".into()), Err("y".into()), 0, 0);
        assert_eq!(f.faults_observed, None);
        assert!(
            f.header_rows()
                .iter()
                .any(|(k, v)| *k == "checked: object store" && v.contains("not checked"))
        );
    }
}

//! Per-operation counters and HDR latency histograms, their summaries, and threshold checks.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::mix::Op;

/// Latencies are recorded in microseconds, 1 µs to 1 hour, 3 significant digits.
const HIST_MAX_US: u64 = 3_600_000_000;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("valid histogram bounds")
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// 2xx with the expected body. `recall` is set for dataset searches with ground truth.
    Ok { recall: Option<f64> },
    /// An HTTP error status, with the `{"error":{"code"}}` string when the body had one, and
    /// whether the answer carried a `Retry-After` header (the server's backpressure signal).
    Http {
        status: u16,
        code: Option<String>,
        retry_after: bool,
    },
    /// No usable HTTP answer: `timeout`, `connect`, `body`, `decode`, `other`.
    Transport(&'static str),
}

/// Everything recorded for one operation during the measured phase.
#[derive(Debug, Clone)]
pub struct OpStats {
    /// Latency of successful requests, µs.
    pub latency: Histogram<u64>,
    pub ok: u64,
    pub http_errors: u64,
    pub transport_errors: u64,
    /// Scheduled (open loop) but never sent because `--max-in-flight` requests were pending.
    pub dropped: u64,
    pub by_status: BTreeMap<u16, u64>,
    pub by_code: BTreeMap<String, u64>,
    pub by_transport: BTreeMap<String, u64>,
    /// HTTP errors whose answer carried a `Retry-After` header.
    pub retry_after: u64,
    pub recall_sum: f64,
    pub recall_n: u64,
    pub recall_min: f64,
}

impl Default for OpStats {
    fn default() -> Self {
        OpStats {
            latency: new_histogram(),
            ok: 0,
            http_errors: 0,
            transport_errors: 0,
            dropped: 0,
            by_status: BTreeMap::new(),
            by_code: BTreeMap::new(),
            by_transport: BTreeMap::new(),
            retry_after: 0,
            recall_sum: 0.0,
            recall_n: 0,
            recall_min: f64::INFINITY,
        }
    }
}

impl OpStats {
    pub fn record(&mut self, latency: Duration, outcome: &Outcome) {
        match outcome {
            Outcome::Ok { recall } => {
                self.ok += 1;
                let us = (latency.as_micros() as u64).clamp(1, HIST_MAX_US);
                self.latency.record(us).expect("value within bounds");
                if let Some(r) = recall {
                    self.recall_sum += r;
                    self.recall_n += 1;
                    self.recall_min = self.recall_min.min(*r);
                }
            }
            Outcome::Http {
                status,
                code,
                retry_after,
            } => {
                self.http_errors += 1;
                self.retry_after += u64::from(*retry_after);
                *self.by_status.entry(*status).or_default() += 1;
                let code = code.clone().unwrap_or_else(|| "(no error code)".into());
                *self.by_code.entry(code).or_default() += 1;
            }
            Outcome::Transport(kind) => {
                self.transport_errors += 1;
                *self.by_transport.entry((*kind).to_string()).or_default() += 1;
            }
        }
    }

    /// Requests that were due (or started) in the measured phase.
    pub fn attempted(&self) -> u64 {
        self.ok + self.failed()
    }

    /// Failed: HTTP errors, transport errors and dropped requests.
    pub fn failed(&self) -> u64 {
        self.http_errors + self.transport_errors + self.dropped
    }

    pub fn merge(&mut self, other: &OpStats) {
        self.latency.add(&other.latency).expect("same bounds");
        self.ok += other.ok;
        self.http_errors += other.http_errors;
        self.transport_errors += other.transport_errors;
        self.dropped += other.dropped;
        self.retry_after += other.retry_after;
        for (k, v) in &other.by_status {
            *self.by_status.entry(*k).or_default() += v;
        }
        for (k, v) in &other.by_code {
            *self.by_code.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.by_transport {
            *self.by_transport.entry(k.clone()).or_default() += v;
        }
        self.recall_sum += other.recall_sum;
        self.recall_n += other.recall_n;
        self.recall_min = self.recall_min.min(other.recall_min);
    }
}

/// Latency percentiles in milliseconds (of successful requests).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub min_ms: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// `None` when nothing was recorded (no made-up zeros).
pub fn summarize(h: &Histogram<u64>) -> Option<LatencySummary> {
    if h.is_empty() {
        return None;
    }
    let ms = |us: u64| us as f64 / 1000.0;
    Some(LatencySummary {
        count: h.len(),
        min_ms: ms(h.min()),
        mean_ms: h.mean() / 1000.0,
        p50_ms: ms(h.value_at_quantile(0.50)),
        p95_ms: ms(h.value_at_quantile(0.95)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        p999_ms: ms(h.value_at_quantile(0.999)),
        max_ms: ms(h.max()),
    })
}

/// Failed / attempted, or `None` when nothing was attempted.
pub fn error_rate(failed: u64, attempted: u64) -> Option<f64> {
    (attempted > 0).then(|| failed as f64 / attempted as f64)
}

/// One `--max-*` check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThresholdCheck {
    /// `p95_ms`, `p99_ms`, `error_rate`, `rss_growth_mib` or `cpu_percent`.
    pub threshold: String,
    /// The operation checked, or `all`.
    pub scope: String,
    pub limit: f64,
    /// With `--repeat N` (N > 1): `actual` is the median of this figure over that many repeats
    /// (the repeats where it exists). Absent for a single run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub median_of_repeats: Option<usize>,
    pub actual: f64,
    pub passed: bool,
}

impl ThresholdCheck {
    /// `p95 of search: 12.500 ms > limit 10.000 ms (over by 2.500 ms, +25.0%)`.
    pub fn describe(&self) -> String {
        let unit = match self.threshold.as_str() {
            "error_rate" => "",
            "rss_growth_mib" => " MiB",
            "cpu_percent" => "%",
            _ => " ms",
        };
        let verb = if self.passed { "<=" } else { ">" };
        let over_repeats = match self.median_of_repeats {
            Some(n) => format!(" (median of {n} repeats)"),
            None => String::new(),
        };
        let mut s = format!(
            "{} of {}{over_repeats}: {:.3}{unit} {verb} limit {:.3}{unit}",
            self.threshold, self.scope, self.actual, self.limit
        );
        if !self.passed {
            let over = self.actual - self.limit;
            s.push_str(&format!(" (over by {over:.3}{unit}"));
            if self.limit > 0.0 {
                s.push_str(&format!(", +{:.1}%", over / self.limit * 100.0));
            }
            s.push(')');
        }
        s
    }
}

/// Latency limits apply to every operation that ran; the error-rate limit to all requests.
pub fn check_thresholds(
    ops: &BTreeMap<Op, OpStats>,
    max_p95_ms: Option<f64>,
    max_p99_ms: Option<f64>,
    max_error_rate: Option<f64>,
) -> Vec<ThresholdCheck> {
    check_thresholds_over_repeats(
        std::slice::from_ref(ops),
        max_p95_ms,
        max_p99_ms,
        max_error_rate,
    )
}

/// [`check_thresholds`] for `--repeat N`: each checked figure (an operation's p95 or p99, the
/// error rate of all requests) is the median of that figure over the repeats, i.e. the median
/// repeat's figure (for an even N, the mean of the two middle repeats). With one repeat this is
/// exactly [`check_thresholds`].
pub fn check_thresholds_over_repeats(
    repeats: &[BTreeMap<Op, OpStats>],
    max_p95_ms: Option<f64>,
    max_p99_ms: Option<f64>,
    max_error_rate: Option<f64>,
) -> Vec<ThresholdCheck> {
    let several = repeats.len() > 1;
    let ops: BTreeSet<Op> = repeats.iter().flat_map(|r| r.keys().copied()).collect();
    let mut checks = Vec::new();
    for op in ops {
        let summaries: Vec<LatencySummary> = repeats
            .iter()
            .filter_map(|r| r.get(&op).and_then(|s| summarize(&s.latency)))
            .collect();
        let p95: Vec<f64> = summaries.iter().map(|s| s.p95_ms).collect();
        let p99: Vec<f64> = summaries.iter().map(|s| s.p99_ms).collect();
        for (name, limit, values) in [("p95_ms", max_p95_ms, p95), ("p99_ms", max_p99_ms, p99)] {
            if let (Some(limit), Some(actual)) = (limit, median(&values)) {
                checks.push(ThresholdCheck {
                    threshold: name.into(),
                    scope: op.name().into(),
                    limit,
                    median_of_repeats: several.then_some(values.len()),
                    actual,
                    passed: actual <= limit,
                });
            }
        }
    }
    if let Some(limit) = max_error_rate {
        let totals = |r: &BTreeMap<Op, OpStats>| {
            (
                r.values().map(OpStats::failed).sum::<u64>(),
                r.values().map(OpStats::attempted).sum::<u64>(),
            )
        };
        // Nothing attempted is a failure of the run (or of that repeat), not a pass.
        let rates: Vec<f64> = repeats
            .iter()
            .map(|r| {
                let (failed, attempted) = totals(r);
                error_rate(failed, attempted).unwrap_or(1.0)
            })
            .collect();
        let attempted: u64 = repeats.iter().map(|r| totals(r).1).sum();
        let actual = median(&rates).unwrap_or(1.0);
        checks.push(ThresholdCheck {
            threshold: "error_rate".into(),
            scope: "all".into(),
            limit,
            median_of_repeats: several.then_some(rates.len()),
            actual,
            passed: attempted > 0 && actual <= limit,
        });
    }
    checks
}

/// The server resource checks (`--max-rss-growth-mib`, `--max-cpu-percent`) against its RSS
/// growth over the measured phase (MiB, last sample minus first) and its mean CPU (percent of
/// one core). A check whose figure is missing is left out (the caller reports why).
pub fn check_resources(
    rss_growth_mib: Option<f64>,
    cpu_percent_mean: Option<f64>,
    max_rss_growth_mib: Option<f64>,
    max_cpu_percent: Option<f64>,
) -> Vec<ThresholdCheck> {
    [
        ("rss_growth_mib", max_rss_growth_mib, rss_growth_mib),
        ("cpu_percent", max_cpu_percent, cpu_percent_mean),
    ]
    .into_iter()
    .filter_map(|(name, limit, actual)| {
        let (limit, actual) = (limit?, actual?);
        Some(ThresholdCheck {
            threshold: name.into(),
            scope: "server".into(),
            limit,
            median_of_repeats: None,
            actual,
            passed: actual <= limit,
        })
    })
    .collect()
}

/// The median of `values` (the mean of the two middle values for an even count); `None` when
/// empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// Min / median / max of one figure over the repeats of a `--repeat N` run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spread {
    /// Repeats the figure exists in (a latency percentile needs a success in that repeat).
    pub n: usize,
    pub min: f64,
    pub median: f64,
    pub max: f64,
    /// (max - min) / median in percent; absent when the median is 0 and the values differ.
    pub spread_percent: Option<f64>,
}

impl Spread {
    /// `None` when there are no values.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let median = median(values)?;
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let spread_percent = if max == min {
            Some(0.0)
        } else if median > 0.0 {
            Some((max - min) / median * 100.0)
        } else {
            None
        };
        Some(Spread {
            n: values.len(),
            min,
            median,
            max,
            spread_percent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Outcome {
        Outcome::Ok { recall: None }
    }

    #[test]
    fn percentiles_of_known_values() {
        let mut s = OpStats::default();
        // 1..=1000 ms.
        for ms in 1..=1000u64 {
            s.record(Duration::from_millis(ms), &ok());
        }
        let l = summarize(&s.latency).unwrap();
        assert_eq!(l.count, 1000);
        let near = |a: f64, b: f64| (a - b).abs() <= b * 0.001 + 1e-9;
        assert!(near(l.min_ms, 1.0), "{l:?}");
        assert!(near(l.p50_ms, 500.0), "{l:?}");
        assert!(near(l.p95_ms, 950.0), "{l:?}");
        assert!(near(l.p99_ms, 990.0), "{l:?}");
        assert!(near(l.p999_ms, 999.0), "{l:?}");
        assert!(near(l.max_ms, 1000.0), "{l:?}");
        assert!(near(l.mean_ms, 500.5), "{l:?}");
        assert!(l.p50_ms <= l.p95_ms && l.p95_ms <= l.p99_ms && l.p99_ms <= l.p999_ms);
        assert!(l.p999_ms <= l.max_ms);
        assert_eq!(summarize(&new_histogram()), None);
    }

    #[test]
    fn errors_are_counted_by_status_code_and_kind_and_not_in_latency() {
        let mut s = OpStats::default();
        s.record(Duration::from_millis(2), &ok());
        s.record(
            Duration::from_millis(1),
            &Outcome::Http {
                status: 404,
                code: Some("collection_not_found".into()),
                retry_after: false,
            },
        );
        s.record(
            Duration::from_millis(1),
            &Outcome::Http {
                status: 503,
                code: Some("unavailable".into()),
                retry_after: true,
            },
        );
        s.record(Duration::from_secs(30), &Outcome::Transport("timeout"));
        s.dropped += 1;
        assert_eq!(s.latency.len(), 1);
        assert_eq!((s.ok, s.http_errors, s.transport_errors), (1, 2, 1));
        assert_eq!(s.by_status, BTreeMap::from([(404, 1), (503, 1)]));
        assert_eq!(s.by_code["collection_not_found"], 1);
        assert_eq!(s.by_code["unavailable"], 1);
        assert_eq!(s.retry_after, 1);
        assert_eq!(s.by_transport["timeout"], 1);
        assert_eq!((s.failed(), s.attempted()), (4, 5));
        assert_eq!(error_rate(s.failed(), s.attempted()), Some(0.8));
        assert_eq!(error_rate(0, 0), None);

        let mut all = OpStats::default();
        all.merge(&s);
        all.merge(&s);
        assert_eq!((all.ok, all.failed(), all.latency.len()), (2, 8, 2));
        assert_eq!(all.by_status[&404], 2);
        assert_eq!(all.retry_after, 2);
        let mut no_code = OpStats::default();
        no_code.record(
            Duration::from_millis(1),
            &Outcome::Http {
                status: 502,
                code: None,
                retry_after: false,
            },
        );
        assert_eq!(no_code.by_code["(no error code)"], 1);
        assert_eq!(no_code.retry_after, 0);
    }

    #[test]
    fn recall_is_averaged_and_min_tracked() {
        let mut s = OpStats::default();
        for r in [1.0, 0.8, 0.9] {
            s.record(Duration::from_millis(1), &Outcome::Ok { recall: Some(r) });
        }
        assert_eq!(s.recall_n, 3);
        assert!((s.recall_sum / 3.0 - 0.9).abs() < 1e-12);
        assert_eq!(s.recall_min, 0.8);
    }

    #[test]
    fn thresholds_pass_fail_and_say_by_how_much() {
        let mut ops = BTreeMap::new();
        let mut search = OpStats::default();
        for ms in 1..=100u64 {
            search.record(Duration::from_millis(ms), &ok());
        }
        search.record(
            Duration::from_millis(1),
            &Outcome::Http {
                status: 500,
                code: Some("internal".into()),
                retry_after: false,
            },
        );
        ops.insert(Op::Search, search);
        let checks = check_thresholds(&ops, Some(50.0), Some(200.0), Some(0.001));
        assert_eq!(checks.len(), 3);
        let p95 = &checks[0];
        assert_eq!(
            (p95.threshold.as_str(), p95.scope.as_str()),
            ("p95_ms", "search")
        );
        assert!(!p95.passed);
        assert!((p95.actual - 95.0).abs() < 0.1);
        let text = p95.describe();
        assert!(
            text.contains("over by 45.") && text.contains(", +90."),
            "{text}"
        );
        assert!(checks[1].passed, "{:?}", checks[1]);
        let err = &checks[2];
        assert!(!err.passed);
        assert!((err.actual - 1.0 / 101.0).abs() < 1e-12);
        // No limits, no checks; an empty run fails an error-rate limit.
        assert!(check_thresholds(&ops, None, None, None).is_empty());
        let empty = BTreeMap::from([(Op::Tier, OpStats::default())]);
        assert!(!check_thresholds(&empty, None, None, Some(1.0))[0].passed);
    }

    #[test]
    fn median_min_max_and_spread() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        // Even count: the mean of the two middle values, whatever the input order.
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));

        let s = Spread::of(&[110.0, 90.0, 100.0]).unwrap();
        assert_eq!((s.n, s.min, s.median, s.max), (3, 90.0, 100.0, 110.0));
        assert!((s.spread_percent.unwrap() - 20.0).abs() < 1e-9, "{s:?}");
        assert!(s.min <= s.median && s.median <= s.max);

        let s = Spread::of(&[95.0, 105.0]).unwrap();
        assert_eq!((s.min, s.median, s.max), (95.0, 100.0, 105.0));
        assert!((s.spread_percent.unwrap() - 10.0).abs() < 1e-9, "{s:?}");

        // One repeat: no spread. Identical zeros: no spread either; differing values around
        // a zero median: undefined, not infinite.
        assert_eq!(Spread::of(&[42.0]).unwrap().spread_percent, Some(0.0));
        assert_eq!(Spread::of(&[0.0, 0.0]).unwrap().spread_percent, Some(0.0));
        assert_eq!(Spread::of(&[0.0, 0.0, 5.0]).unwrap().spread_percent, None);
        assert_eq!(Spread::of(&[]), None);
    }

    #[test]
    fn resource_thresholds_check_growth_and_cpu_and_skip_missing_figures() {
        let checks = check_resources(Some(12.5), Some(80.0), Some(10.0), Some(90.0));
        assert_eq!(checks.len(), 2);
        assert!(!checks[0].passed && checks[1].passed);
        assert_eq!(
            checks[0].describe(),
            "rss_growth_mib of server: 12.500 MiB > limit 10.000 MiB (over by 2.500 MiB, +25.0%)"
        );
        assert_eq!(
            checks[1].describe(),
            "cpu_percent of server: 80.000% <= limit 90.000%"
        );
        assert!(check_resources(None, None, Some(1.0), Some(1.0)).is_empty());
        assert!(check_resources(Some(1.0), Some(1.0), None, None).is_empty());
    }

    #[test]
    fn thresholds_over_repeats_use_the_median_repeat() {
        // p95 of the three repeats: 10, 30, 20 ms -> median 20 ms.
        let repeat = |ms: u64, errors: u64| {
            let mut s = OpStats::default();
            for _ in 0..100 {
                s.record(Duration::from_millis(ms), &ok());
            }
            for _ in 0..errors {
                s.record(Duration::from_millis(1), &Outcome::Transport("timeout"));
            }
            BTreeMap::from([(Op::Search, s)])
        };
        let repeats = [repeat(10, 0), repeat(30, 100), repeat(20, 0)];
        let checks = check_thresholds_over_repeats(&repeats, Some(25.0), Some(15.0), Some(0.1));
        assert_eq!(checks.len(), 3);
        let (p95, p99, err) = (&checks[0], &checks[1], &checks[2]);
        assert!((p95.actual - 20.0).abs() < 0.05, "{p95:?}");
        assert!(p95.passed, "{p95:?}");
        assert_eq!(p95.median_of_repeats, Some(3));
        assert!(
            p95.describe().contains("(median of 3 repeats)"),
            "{}",
            p95.describe()
        );
        assert!(!p99.passed, "{p99:?}");
        // Error rates 0, 0.5, 0 -> median 0: one bad repeat does not fail the run.
        assert_eq!((err.actual, err.passed), (0.0, true));
        // One repeat: the same checks as before, no median note.
        let single = check_thresholds(&repeats[1], Some(25.0), None, Some(0.1));
        assert!(!single[0].passed && !single[1].passed);
        assert_eq!(single[0].median_of_repeats, None);
        assert!(!single[0].describe().contains("median"));
    }
}

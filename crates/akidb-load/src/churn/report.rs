//! The `churn` part of the report, pure: recall@k of the measured searches against the
//! server's exact answer ([`RecallUnderChurn`]), the same by time window while replaced
//! documents pile up ([`Window`]), what the collection reported meanwhile ([`CollectionWatch`]),
//! and its Markdown section.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::log::Sample;
use crate::section::{ReportSection, opt};

/// Time windows the measured phase is cut into for the recall-over-time table.
pub const WINDOWS: usize = 6;
/// Worst searches listed in the report.
pub const WORST_LISTED: usize = 5;

/// recall@k over a set of samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RecallFigures {
    pub checked: u64,
    pub mean: Option<f64>,
    pub min: Option<f64>,
}

impl RecallFigures {
    pub fn of<'a>(samples: impl IntoIterator<Item = &'a Sample>) -> RecallFigures {
        let (mut n, mut sum, mut min) = (0u64, 0.0, f64::INFINITY);
        for s in samples {
            n += 1;
            sum += s.recall;
            min = min.min(s.recall);
        }
        RecallFigures {
            checked: n,
            mean: (n > 0).then(|| sum / n as f64),
            min: (n > 0).then_some(min),
        }
    }
}

/// One search among the worst.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorstSearch {
    pub query: usize,
    pub recall: f64,
    /// From the start of the run (warm-up included).
    pub t_secs: f64,
    pub replaced_before: u64,
    pub conflicted: bool,
}

/// The measured searches of one stretch of the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Window {
    /// From the start of the run (warm-up included).
    pub from_secs: f64,
    pub to_secs: f64,
    /// Replacements acknowledged before the window's last checked search was sent (warm-up
    /// included): dead slots created so far (less any a compaction removed).
    pub replaced_by_then: u64,
    pub recall: RecallFigures,
}

/// recall@k of the measured searches against the server's exact answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecallUnderChurn {
    pub k: usize,
    /// Every measured, checked search.
    pub all: RecallFigures,
    /// Those no concurrent write could have skewed (no document of either answer written
    /// while the two searches ran).
    pub unconflicted: RecallFigures,
    /// Searches with recall below 0.6, 0.8 and 0.9.
    pub below: BTreeMap<String, u64>,
    /// Per query vector, the mean over its searches; the lowest of those means and its query.
    pub worst_query_mean: Option<f64>,
    pub worst_query: Option<usize>,
    pub queries_checked: usize,
    pub worst_searches: Vec<WorstSearch>,
    pub windows: Vec<Window>,
}

impl RecallUnderChurn {
    /// From every sample of the run: those in `[warmup, warmup + measured)` count (a search
    /// belongs to the moment its approximate answer arrived), relative to `start`.
    pub fn new(
        k: usize,
        samples: &[Sample],
        secs_of: impl Fn(&Sample) -> f64,
        warmup_secs: f64,
        measured_secs: f64,
    ) -> RecallUnderChurn {
        let end = warmup_secs + measured_secs;
        let measured: Vec<(f64, &Sample)> = samples
            .iter()
            .map(|s| (secs_of(s), s))
            .filter(|(t, _)| *t >= warmup_secs)
            .collect();
        let all = RecallFigures::of(measured.iter().map(|(_, s)| *s));
        let unconflicted =
            RecallFigures::of(measured.iter().map(|(_, s)| *s).filter(|s| !s.conflicted));
        let below = [("0.6", 0.6), ("0.8", 0.8), ("0.9", 0.9)]
            .into_iter()
            .map(|(name, x)| {
                let n = measured.iter().filter(|(_, s)| s.recall < x).count() as u64;
                (format!("below_{name}"), n)
            })
            .collect();
        let mut per_query: BTreeMap<usize, (f64, u64)> = BTreeMap::new();
        for (_, s) in &measured {
            let e = per_query.entry(s.query).or_default();
            e.0 += s.recall;
            e.1 += 1;
        }
        let worst = per_query
            .iter()
            .map(|(&q, &(sum, n))| (q, sum / n as f64))
            .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        let mut sorted = measured.clone();
        sorted.sort_by(|a, b| a.1.recall.total_cmp(&b.1.recall).then(a.0.total_cmp(&b.0)));
        let worst_searches = sorted
            .iter()
            .take(WORST_LISTED)
            .map(|(t, s)| WorstSearch {
                query: s.query,
                recall: s.recall,
                t_secs: *t,
                replaced_before: s.replaced_before,
                conflicted: s.conflicted,
            })
            .collect();
        let width = measured_secs / WINDOWS as f64;
        let windows = (0..WINDOWS)
            .map(|w| {
                let from = warmup_secs + w as f64 * width;
                let to = if w + 1 == WINDOWS { end } else { from + width };
                let last = w + 1 == WINDOWS;
                let inside: Vec<&Sample> = measured
                    .iter()
                    .filter(|(t, _)| *t >= from && (*t < to || last))
                    .map(|(_, s)| *s)
                    .collect();
                Window {
                    from_secs: from,
                    to_secs: to,
                    replaced_by_then: inside.iter().map(|s| s.replaced_before).max().unwrap_or(0),
                    recall: RecallFigures::of(inside),
                }
            })
            .collect();
        RecallUnderChurn {
            k,
            all,
            unconflicted,
            below,
            worst_query_mean: worst.map(|w| w.1),
            worst_query: worst.map(|w| w.0),
            queries_checked: per_query.len(),
            worst_searches,
            windows,
        }
    }
}

/// What `GET /api/v1/collections/{name}` said during the run, polled about once a second.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CollectionWatch {
    pub samples: u64,
    pub failed_reads: u64,
    /// Live documents at the first and last sample.
    pub count_first: Option<u64>,
    pub count_last: Option<u64>,
    /// Vectors written but not yet in the graph (searched exactly meanwhile).
    pub index_pending_max: u64,
    pub bytes_in_ram_first: Option<u64>,
    pub bytes_in_ram_max: u64,
    pub bytes_in_ram_last: Option<u64>,
    /// Times `bytes_in_ram` fell by a quarter or more from one sample to the next: a compaction
    /// (the only thing that frees a hot collection's dead slots) swapping in a smaller state.
    pub ram_drops: u64,
}

impl CollectionWatch {
    /// Adds one read: `(count, index_pending, bytes_in_ram)`, or a failed read.
    pub fn add(&mut self, read: Option<(u64, u64, u64)>) {
        let Some((count, pending, ram)) = read else {
            self.failed_reads += 1;
            return;
        };
        self.samples += 1;
        self.count_first.get_or_insert(count);
        self.count_last = Some(count);
        self.index_pending_max = self.index_pending_max.max(pending);
        self.bytes_in_ram_first.get_or_insert(ram);
        if let Some(prev) = self.bytes_in_ram_last
            && ram * 4 <= prev * 3
        {
            self.ram_drops += 1;
        }
        self.bytes_in_ram_last = Some(ram);
        self.bytes_in_ram_max = self.bytes_in_ram_max.max(ram);
    }
}

/// The `churn` part of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChurnReport {
    /// Relative norm of the noise a replacement adds to the original vector (0: re-upserted
    /// unchanged).
    pub noise: f64,
    /// `--ef` sent with the measured searches; absent: the collection's default.
    pub ef: Option<usize>,
    /// Live documents the collections hold throughout (every replacement keeps the count).
    pub live_documents: u64,
    /// Replacements acknowledged over the whole run (warm-up included) and failed ones. Each
    /// acknowledged one leaves a dead slot until a compaction rewrites the collection.
    pub replacements_acknowledged: u64,
    pub replacements_failed: u64,
    /// The collection API exposes no count of dead slots; this says so (or gives it).
    pub dead_slots_note: String,
    /// Exact searches that failed (their approximate searches are not checked).
    pub exact_searches_failed: u64,
    pub recall: RecallUnderChurn,
    /// By collection name.
    pub collections: BTreeMap<String, CollectionWatch>,
}

impl ChurnReport {
    fn ef_text(&self) -> String {
        self.ef
            .map_or("the collection's default".into(), |e| e.to_string())
    }
}

impl ReportSection for ChurnReport {
    const KEY: &'static str = "churn";

    fn header_rows(&self) -> Vec<(&'static str, String)> {
        vec![(
            "churn",
            format!(
                "inserts replace existing ids (noise {}); recall@{} of every measured search \
                 (ef: {}) against the server's exact answer to the same query sent right after",
                self.noise,
                self.recall.k,
                self.ef_text()
            ),
        )]
    }

    /// The `## Recall under churn` section.
    fn markdown_after_operations(&self, s: &mut String) {
        let r = &self.recall;
        let _ = writeln!(s, "\n## Recall under churn\n");
        let _ = writeln!(
            s,
            "{} live documents throughout; {} replacements acknowledged over the run (warm-up \
             included; {} failed), each leaving a dead slot until a compaction. {}\n",
            self.live_documents,
            self.replacements_acknowledged,
            self.replacements_failed,
            self.dead_slots_note
        );
        let _ = writeln!(
            s,
            "Truth: each measured search (ef: {}) is followed by the same query with \
             `\"exact\": true`; a hit is a result scoring at least the exact k-th (ties count). \
             A search is *conflicted* when a document of either answer was written while the \
             two ran ({} exact searches failed and were not counted).\n",
            self.ef_text(),
            self.exact_searches_failed
        );
        let _ = writeln!(s, "| searches | checked | mean recall@{} | min |", r.k);
        let _ = writeln!(s, "|---|---:|---:|---:|");
        for (name, f) in [("all", &r.all), ("unconflicted", &r.unconflicted)] {
            let _ = writeln!(
                s,
                "| {name} | {} | {} | {} |",
                f.checked,
                opt(f.mean, 4),
                opt(f.min, 2)
            );
        }
        let _ = writeln!(
            s,
            "\nSearches below 0.6 / 0.8 / 0.9: {} / {} / {}. Per query vector ({} of them), the \
             lowest mean recall: {} (query {}).",
            r.below.get("below_0.6").copied().unwrap_or(0),
            r.below.get("below_0.8").copied().unwrap_or(0),
            r.below.get("below_0.9").copied().unwrap_or(0),
            r.queries_checked,
            opt(r.worst_query_mean, 3),
            r.worst_query.map_or("-".into(), |q| q.to_string()),
        );
        let _ = writeln!(
            s,
            "\n| window s | replaced by then | checked | mean | min |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|");
        for w in &r.windows {
            let _ = writeln!(
                s,
                "| {:.0}-{:.0} | {} | {} | {} | {} |",
                w.from_secs,
                w.to_secs,
                w.replaced_by_then,
                w.recall.checked,
                opt(w.recall.mean, 4),
                opt(w.recall.min, 2)
            );
        }
        if !r.worst_searches.is_empty() {
            let _ = writeln!(s, "\nWorst searches:\n");
            let _ = writeln!(
                s,
                "| query | recall | at s | replaced before | conflicted |"
            );
            let _ = writeln!(s, "|---:|---:|---:|---:|---|");
            for w in &r.worst_searches {
                let _ = writeln!(
                    s,
                    "| {} | {:.2} | {:.1} | {} | {} |",
                    w.query, w.recall, w.t_secs, w.replaced_before, w.conflicted
                );
            }
        }
        let _ = writeln!(
            s,
            "\n### Collections during the run (`GET` about once a second)\n"
        );
        let _ = writeln!(
            s,
            "| collection | reads | count first -> last | index pending max | RAM MiB first / max / last | RAM drops >= 25 % (compactions) |"
        );
        let _ = writeln!(s, "|---|---:|---|---:|---|---:|");
        let mib = |b: Option<u64>| opt(b.map(|b| b as f64 / (1 << 20) as f64), 1);
        for (name, c) in &self.collections {
            let _ = writeln!(
                s,
                "| {name} | {} ({} failed) | {} -> {} | {} | {} / {} / {} | {} |",
                c.samples,
                c.failed_reads,
                c.count_first.map_or("-".into(), |x| x.to_string()),
                c.count_last.map_or("-".into(), |x| x.to_string()),
                c.index_pending_max,
                mib(c.bytes_in_ram_first),
                mib(Some(c.bytes_in_ram_max)),
                mib(c.bytes_in_ram_last),
                c.ram_drops
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn sample(base: Instant, t: f64, query: usize, recall: f64, conflicted: bool) -> Sample {
        Sample {
            at: base + Duration::from_secs_f64(t),
            query,
            recall,
            conflicted,
            replaced_before: (t * 10.0) as u64,
        }
    }

    #[test]
    fn measured_samples_by_window_query_and_conflict() {
        let base = Instant::now();
        let samples = vec![
            sample(base, 0.5, 1, 0.0, false), // warm-up: not counted
            sample(base, 1.0, 1, 1.0, false),
            sample(base, 2.0, 2, 0.5, true),
            sample(base, 3.5, 1, 0.9, false),
            sample(base, 6.9, 3, 0.7, false),
            sample(base, 7.5, 3, 1.0, false), // after the end: the last window
        ];
        let secs = |s: &Sample| s.at.duration_since(base).as_secs_f64();
        let r = RecallUnderChurn::new(10, &samples, secs, 1.0, 6.0);
        assert_eq!(r.all.checked, 5);
        assert!((r.all.mean.unwrap() - 4.1 / 5.0).abs() < 1e-12);
        assert_eq!(r.all.min, Some(0.5));
        assert_eq!(r.unconflicted.checked, 4);
        assert_eq!(r.unconflicted.min, Some(0.7));
        assert_eq!(r.below["below_0.6"], 1);
        assert_eq!(r.below["below_0.8"], 2);
        assert_eq!(r.below["below_0.9"], 2);
        // Query 2 (0.5) is worst; query 1 averages 0.95, query 3 0.85.
        assert_eq!((r.worst_query, r.worst_query_mean), (Some(2), Some(0.5)));
        assert_eq!(r.queries_checked, 3);
        assert_eq!(r.worst_searches[0].query, 2);
        assert_eq!(r.worst_searches.len(), 5);
        assert_eq!(r.windows.len(), WINDOWS);
        assert_eq!(
            r.windows
                .iter()
                .map(|w| w.recall.checked)
                .collect::<Vec<_>>(),
            [1, 1, 1, 0, 0, 2]
        );
        assert_eq!(r.windows[5].replaced_by_then, 75);
        assert_eq!(r.windows[3].recall.mean, None);
        let md = {
            let report = ChurnReport {
                noise: 0.2,
                ef: None,
                live_documents: 10,
                replacements_acknowledged: 5,
                replacements_failed: 0,
                dead_slots_note: "n/a".into(),
                exact_searches_failed: 0,
                recall: r,
                collections: BTreeMap::new(),
            };
            let mut s = String::new();
            report.markdown_after_operations(&mut s);
            s
        };
        assert!(md.contains("## Recall under churn"), "{md}");
        assert!(md.contains("| all | 5 | 0.8200 | 0.50 |"), "{md}");
    }

    #[test]
    fn ram_drops_count_compactions() {
        let mut w = CollectionWatch::default();
        w.add(Some((10, 5, 1000)));
        w.add(None);
        w.add(Some((10, 0, 1400)));
        w.add(Some((10, 0, 1100))); // -21 %: growth slack, not a compaction
        w.add(Some((10, 0, 700)));
        assert_eq!((w.samples, w.failed_reads, w.ram_drops), (4, 1, 1));
        assert_eq!((w.index_pending_max, w.bytes_in_ram_max), (5, 1400));
        assert_eq!(
            (w.bytes_in_ram_first, w.bytes_in_ram_last),
            (Some(1000), Some(700))
        );
    }
}

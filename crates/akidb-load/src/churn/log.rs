//! What the `churn` scenario's requests need and leave behind, without I/O: the vector a
//! replacement writes ([`replacement`]), recall against the server's exact answer
//! ([`recall_by_score`]), and the run's shared record ([`ChurnLog`]): which documents were
//! written when (so a recall sample a concurrent write may have skewed is flagged), how many
//! replacements were acknowledged, and every recall sample.
//!
//! A leaf: `requests` writes into it, the scenario's hooks (`churn/mod.rs`) read it back.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use crate::rng::Rng;

/// Default size of the change a replacement makes: the noise added to the original vector has
/// this norm relative to it (0.2: cosine ≈ 0.98 between the two versions of a document).
pub const DEFAULT_NOISE: f64 = 0.2;

/// Scores within this of the exact k-th score count as hits (ties and float printing; the
/// server computes a slot's score identically in both searches, so this only admits ties).
pub const SCORE_EPS: f32 = 1e-6;

/// The vector a replacement of `original` writes: `original / |original| + noise · u`, with `u`
/// a seeded random unit direction, normalised to unit length (the collection is cosine). With
/// `noise == 0` the original itself, unchanged: the document is re-upserted as it was (the
/// server still writes a new slot and tombstones the old one).
pub fn replacement(original: &[f32], noise: f32, rng: &mut Rng) -> Vec<f32> {
    if noise == 0.0 {
        return original.to_vec();
    }
    let norm = |v: &[f32]| {
        v.iter()
            .map(|x| x * x)
            .sum::<f32>()
            .sqrt()
            .max(f32::MIN_POSITIVE)
    };
    let u: Vec<f32> = rng.vector(original.len());
    let (no, nu) = (norm(original), norm(&u));
    let mut v: Vec<f32> = original
        .iter()
        .zip(&u)
        .map(|(o, d)| o / no + noise * d / nu)
        .collect();
    let n = norm(&v);
    v.iter_mut().for_each(|x| *x /= n);
    v
}

/// recall@k of `found` (an approximate answer's scores, best first) against `exact` (the exact
/// answer's scores for the same query, best first): the share of `found`'s first k that score
/// at least as well as the exact k-th, within [`SCORE_EPS`]. By score, not by id, so that
/// documents tied with the k-th count as hits whichever of them was returned (ann-benchmarks
/// counts the same way). "Better" is read off `exact`'s own order, so it works for similarity
/// (higher is better) and distance (lower is better) scores alike. `None` when `exact` is empty.
pub fn recall_by_score(found: &[f32], exact: &[f32], k: usize) -> Option<f64> {
    let want = k.min(exact.len());
    if want == 0 {
        return None;
    }
    let kth = exact[want - 1];
    let higher_is_better = exact[0] >= kth;
    let hits = found
        .iter()
        .take(want)
        .filter(|&&s| {
            if higher_is_better {
                s >= kth - SCORE_EPS
            } else {
                s <= kth + SCORE_EPS
            }
        })
        .count();
    Some(hits as f64 / want as f64)
}

/// One checked search.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// When the approximate answer arrived.
    pub at: Instant,
    /// Row of the query vector (queries.fvecs, or the seeded stream's request number).
    pub query: usize,
    pub recall: f64,
    /// A document in either answer was written while the two searches ran, so the two may have
    /// seen different versions of it (see [`ChurnLog::touched_since`]).
    pub conflicted: bool,
    /// Replacements acknowledged before the approximate search was sent.
    pub replaced_before: u64,
}

/// The run's shared record. Documents are numbered `collection * per_collection + row`.
pub struct ChurnLog {
    /// Noise of the replacements (see [`replacement`]).
    pub noise: f64,
    pub per_collection: usize,
    /// Warm-up and measured time (every repeat), seconds: which samples are measured.
    pub warmup_secs: f64,
    pub measured_secs: f64,
    /// Advanced by every write start and end; a search notes it when sent.
    clock: AtomicU64,
    /// Per document: the clock at its latest write start or end.
    last_touch: Vec<AtomicU64>,
    /// Per document: writes sent and not yet answered.
    in_flight: Vec<AtomicU32>,
    /// Documents whose replacement the server acknowledged (warm-up included).
    replaced: AtomicU64,
    /// Replacements that failed (no answer, or an error).
    failed: AtomicU64,
    /// Exact searches (the truth) that failed; their approximate searches are not checked.
    exact_failed: AtomicU64,
    samples: Mutex<Vec<Sample>>,
}

impl ChurnLog {
    pub fn new(
        collections: usize,
        per_collection: usize,
        noise: f64,
        warmup_secs: f64,
        measured_secs: f64,
    ) -> ChurnLog {
        let n = collections * per_collection;
        ChurnLog {
            noise,
            per_collection,
            warmup_secs,
            measured_secs,
            clock: AtomicU64::new(0),
            last_touch: (0..n).map(|_| AtomicU64::new(0)).collect(),
            in_flight: (0..n).map(|_| AtomicU32::new(0)).collect(),
            replaced: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            exact_failed: AtomicU64::new(0),
            samples: Mutex::new(Vec::new()),
        }
    }

    /// The document number of `row` in collection `c`.
    pub fn doc(&self, c: usize, row: usize) -> usize {
        c * self.per_collection + row
    }

    /// The clock now: a search notes it before it is sent.
    pub fn now(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }

    fn touch(&self, doc: usize) {
        let t = self.clock.fetch_add(1, Ordering::SeqCst) + 1;
        self.last_touch[doc].fetch_max(t, Ordering::SeqCst);
    }

    /// A write of `docs` is about to be sent.
    pub fn write_started(&self, docs: &[usize]) {
        for &d in docs {
            self.in_flight[d].fetch_add(1, Ordering::SeqCst);
            self.touch(d);
        }
    }

    /// The write of `docs` was answered; `ok`: acknowledged.
    pub fn write_ended(&self, docs: &[usize], ok: bool) {
        for &d in docs {
            self.touch(d);
            self.in_flight[d].fetch_sub(1, Ordering::SeqCst);
        }
        let n = docs.len() as u64;
        if ok {
            self.replaced.fetch_add(n, Ordering::SeqCst);
        } else {
            self.failed.fetch_add(n, Ordering::SeqCst);
        }
    }

    /// Whether `doc` may have changed since the clock read `since`: a write of it started or
    /// ended after that, or one is still in flight. A write acknowledged before `since` is
    /// visible to every search sent afterwards, so it does not count.
    pub fn touched_since(&self, doc: usize, since: u64) -> bool {
        self.in_flight[doc].load(Ordering::SeqCst) > 0
            || self.last_touch[doc].load(Ordering::SeqCst) > since
    }

    pub fn replaced(&self) -> u64 {
        self.replaced.load(Ordering::SeqCst)
    }

    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::SeqCst)
    }

    pub fn exact_failed(&self) {
        self.exact_failed.fetch_add(1, Ordering::SeqCst);
    }

    pub fn exact_failures(&self) -> u64 {
        self.exact_failed.load(Ordering::SeqCst)
    }

    pub fn record(&self, s: Sample) {
        self.samples.lock().expect("samples lock").push(s);
    }

    /// Every sample so far, in the order recorded.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples.lock().expect("samples lock").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn replacements_are_unit_length_seeded_and_as_far_as_the_noise_says() {
        let original: Vec<f32> = Rng::derive(1, 2, 3).vector(384);
        let same = replacement(&original, 0.0, &mut Rng::new(5));
        assert_eq!(same, original, "noise 0 re-upserts the original as it was");
        let a = replacement(&original, 0.2, &mut Rng::new(5));
        let b = replacement(&original, 0.2, &mut Rng::new(5));
        let c = replacement(&original, 0.2, &mut Rng::new(6));
        assert_eq!(a, b, "seeded");
        assert_ne!(a, c);
        assert!((dot(&a, &a) - 1.0).abs() < 1e-5);
        let no = dot(&original, &original).sqrt();
        let cos = dot(&a, &original) / no;
        // A random direction is nearly orthogonal in 384 dimensions: cos ≈ 1 / sqrt(1 + 0.04).
        assert!((cos - 0.98).abs() < 0.01, "cos {cos}");
        let far = replacement(&original, 1.0, &mut Rng::new(5));
        assert!((dot(&far, &original) / no - 0.707).abs() < 0.03);
    }

    #[test]
    fn recall_counts_scores_at_least_the_exact_kth() {
        let exact = [0.9, 0.8, 0.7, 0.6];
        assert_eq!(recall_by_score(&[0.9, 0.8, 0.7, 0.6], &exact, 4), Some(1.0));
        assert_eq!(recall_by_score(&[0.9, 0.8, 0.5, 0.4], &exact, 4), Some(0.5));
        // A tie with the k-th counts whichever document it is; a short answer misses.
        assert_eq!(recall_by_score(&[0.9, 0.6, 0.6], &exact, 4), Some(0.75));
        assert_eq!(
            recall_by_score(&[0.9, 0.8, 0.7, 0.6 - 1e-7], &exact, 4),
            Some(1.0)
        );
        // Only the first k of the answer count; fewer documents than k: the exact length.
        assert_eq!(recall_by_score(&[0.9, 0.1, 0.8], &exact, 2), Some(0.5));
        assert_eq!(recall_by_score(&[0.9, 0.8], &[0.9, 0.8], 10), Some(1.0));
        assert_eq!(recall_by_score(&[0.9], &[], 10), None);
        // Distances (lower is better) are read off the exact order.
        assert_eq!(recall_by_score(&[0.1, 0.5], &[0.1, 0.2], 2), Some(0.5));
        assert_eq!(recall_by_score(&[0.2, 0.1], &[0.1, 0.2], 2), Some(1.0));
    }

    #[test]
    fn writes_in_flight_or_after_a_search_was_sent_conflict_with_it() {
        let log = ChurnLog::new(2, 10, 0.2, 1.0, 10.0);
        assert_eq!(log.doc(1, 3), 13);
        // Acknowledged before the search was sent: visible to both searches.
        log.write_started(&[3]);
        log.write_ended(&[3], true);
        let sent = log.now();
        assert!(!log.touched_since(3, sent));
        // Started before, answered after: conflicts while in flight and after.
        log.write_started(&[4]);
        let sent = log.now();
        assert!(log.touched_since(4, sent));
        log.write_ended(&[4], true);
        assert!(log.touched_since(4, sent));
        // Started after the search was sent.
        let sent = log.now();
        log.write_started(&[13]);
        assert!(log.touched_since(13, sent) && !log.touched_since(3, sent));
        log.write_ended(&[13], false);
        assert_eq!((log.replaced(), log.failed()), (2, 1));
    }
}

//! Exact search must equal an independent naive brute-force reference (f64, scalar loops),
//! for all three metrics, including non-normalised vectors for l2 and dot.

mod common;

use akidb_core::index::BRUTE_FORCE_THRESHOLD;
use akidb_core::{HnswParams, Metric, SearchOptions, VectorIndex};

/// Reference internal distance, f64, plain loops.
fn ref_distance(metric: Metric, a: &[f32], b: &[f32]) -> f64 {
    let mut dot = 0.0f64;
    let mut l2 = 0.0f64;
    for i in 0..a.len() {
        dot += a[i] as f64 * b[i] as f64;
        l2 += (a[i] as f64 - b[i] as f64) * (a[i] as f64 - b[i] as f64);
    }
    match metric {
        Metric::Cosine => 1.0 - dot,
        Metric::Dot => -dot,
        Metric::L2 => l2,
    }
}

/// Sorted (distance, slot) over the admitted slots.
fn reference(
    metric: Metric,
    data: &[f32],
    dim: usize,
    q: &[f32],
    k: usize,
    admit: impl Fn(u32) -> bool,
) -> Vec<(f64, u32)> {
    let mut all: Vec<(f64, u32)> = data
        .chunks_exact(dim)
        .enumerate()
        .filter(|(i, _)| admit(*i as u32))
        .map(|(i, v)| (ref_distance(metric, q, v), i as u32))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.truncate(k);
    all
}

/// `got` must be the reference list up to exact ties: same length, no duplicates, only
/// admitted slots, and the i-th result's reference distance equals the i-th reference
/// distance (within float error) — so ids can differ only between equidistant slots.
#[allow(clippy::too_many_arguments)]
fn assert_matches(
    got: &[akidb_core::Neighbor],
    want: &[(f64, u32)],
    metric: Metric,
    data: &[f32],
    dim: usize,
    q: &[f32],
    admit: impl Fn(u32) -> bool,
) {
    assert_eq!(got.len(), want.len(), "result count");
    let mut ids: Vec<u32> = got.iter().map(|n| n.slot).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), got.len(), "duplicate slots in {got:?}");
    let scale = want.iter().map(|w| w.0.abs()).fold(1.0f64, f64::max);
    let tol = 1e-5 * scale;
    let mut mismatched = 0;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(admit(g.slot), "slot {} is not admitted", g.slot);
        let v = &data[g.slot as usize * dim..(g.slot as usize + 1) * dim];
        let gd = ref_distance(metric, q, v);
        assert!(
            (gd - w.0).abs() <= tol,
            "{metric} rank {i}: got slot {} (d={gd}), want slot {} (d={})",
            g.slot,
            w.1,
            w.0
        );
        assert!(
            (g.distance as f64 - gd).abs() <= tol,
            "reported distance {} vs reference {gd}",
            g.distance
        );
        mismatched += usize::from(g.slot != w.1);
    }
    // Random float data has essentially no exact ties.
    assert!(mismatched <= 2, "{mismatched} ids differ only by ties?");
}

fn check_metric(metric: Metric, n: usize, dim: usize, seed: u64) {
    let mut data = common::random_vectors(n, dim, seed);
    let mut queries = common::random_vectors(20, dim, seed + 1);
    if metric == Metric::Cosine {
        common::normalize_rows(&mut data, dim);
        common::normalize_rows(&mut queries, dim);
    } else {
        // Non-normalised, varied norms.
        let mut r = common::Rng::new(seed + 2);
        for row in data.chunks_exact_mut(dim) {
            let s = 0.1 + 4.0 * (r.f32() + 1.0);
            row.iter_mut().for_each(|x| *x *= s);
        }
    }
    // f32, and 8-bit codes with the full vectors in a separate store (a third of them
    // pushed after the quantizer was trained, not yet written out).
    for quantized in [false, true] {
        check_index(metric, &data, &queries, dim, quantized);
    }
}

fn build(metric: Metric, data: &[f32], dim: usize, quantized: bool) -> VectorIndex {
    let n = data.len() / dim;
    let mut idx = VectorIndex::new(dim, metric, HnswParams::default());
    for (i, row) in data.chunks_exact(dim).enumerate() {
        if quantized && i == 2 * n / 3 {
            idx.quantize(Box::new(akidb_core::index::VectorsInRam::new(dim)))
                .unwrap();
        }
        idx.push(row);
    }
    idx
}

fn check_index(metric: Metric, data: &[f32], queries: &[f32], dim: usize, quantized: bool) {
    let n = data.len() / dim;
    let mut idx = build(metric, data, dim, quantized);
    // Half indexed, half pending: exact search covers both.
    idx.index_pending(n / 2);
    let exact = SearchOptions {
        exact: true,
        ..Default::default()
    };
    for (qi, q) in queries.chunks_exact(dim).enumerate() {
        for k in [1, 10, 57] {
            let got = idx.search(q, k, &exact);
            let want = reference(metric, data, dim, q, k, |_| true);
            assert_matches(&got, &want, metric, data, dim, q, |_| true);
        }
        // Exact with deletions and a filter.
        if qi == 0 {
            let mut idx2 = build(metric, data, dim, quantized);
            for s in (0..n as u32).step_by(3) {
                idx2.delete(s);
            }
            let f = |s: u32| !s.is_multiple_of(5);
            let got = idx2.search(
                q,
                25,
                &SearchOptions {
                    exact: true,
                    filter: Some(&f),
                    ..Default::default()
                },
            );
            let admit = |s: u32| !s.is_multiple_of(3) && !s.is_multiple_of(5);
            let want = reference(metric, data, dim, q, 25, admit);
            assert_matches(&got, &want, metric, data, dim, q, admit);
        }
    }
}

#[test]
fn exact_matches_reference_cosine() {
    check_metric(Metric::Cosine, 1500, 384, 11);
    check_metric(Metric::Cosine, 700, 33, 12);
}

#[test]
fn exact_matches_reference_l2() {
    check_metric(Metric::L2, 1500, 384, 21);
    check_metric(Metric::L2, 700, 17, 22);
}

#[test]
fn exact_matches_reference_dot() {
    check_metric(Metric::Dot, 1500, 384, 31);
    check_metric(Metric::Dot, 700, 5, 32);
}

/// Below the brute-force threshold a default (non-exact) search is exact too.
#[test]
fn small_index_is_exact() {
    let dim = 24;
    let n = BRUTE_FORCE_THRESHOLD - 1;
    for metric in [Metric::Cosine, Metric::L2, Metric::Dot] {
        let mut data = common::random_vectors(n, dim, 5);
        if metric == Metric::Cosine {
            common::normalize_rows(&mut data, dim);
        }
        let mut idx = VectorIndex::new(dim, metric, HnswParams::default());
        for row in data.chunks_exact(dim) {
            idx.push(row);
        }
        idx.index_pending(usize::MAX);
        for q in data.chunks_exact(dim).step_by(97) {
            let got = idx.search(q, 10, &SearchOptions::default());
            let want = reference(metric, &data, dim, q, 10, |_| true);
            assert_matches(&got, &want, metric, &data, dim, q, |_| true);
        }
    }
}

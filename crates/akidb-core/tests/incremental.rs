//! Incremental behaviour: interleaved push / index_pending / delete / search, the unindexed
//! tail, filters, k beyond the live count, determinism, concurrency.

mod common;

use std::collections::HashSet;

use akidb_core::distance::distance;
use akidb_core::index::BRUTE_FORCE_THRESHOLD;
use akidb_core::{HnswParams, Metric, Neighbor, SearchOptions, VectorIndex};

const DIM: usize = 16;

/// Exact reference over an index's admitted slots (uses the index's stored vectors).
fn brute(idx: &VectorIndex, q: &[f32], k: usize, admit: impl Fn(u32) -> bool) -> Vec<u32> {
    let mut all: Vec<(f32, u32)> = (0..idx.len() as u32)
        .filter(|&s| !idx.is_deleted(s) && admit(s))
        .map(|s| (distance(idx.metric(), q, &idx.vector(s).unwrap()), s))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.into_iter().take(k).map(|x| x.1).collect()
}

fn check_basic(idx: &VectorIndex, res: &[Neighbor], k: usize, admit: impl Fn(u32) -> bool) {
    let mut seen = HashSet::new();
    for n in res {
        assert!(!idx.is_deleted(n.slot), "deleted slot {} returned", n.slot);
        assert!(admit(n.slot), "slot {} fails the filter", n.slot);
        assert!(seen.insert(n.slot), "duplicate slot {}", n.slot);
    }
    assert!(
        res.windows(2).all(|w| w[0].distance <= w[1].distance),
        "not sorted"
    );
    let matching = (0..idx.len() as u32)
        .filter(|&s| !idx.is_deleted(s) && admit(s))
        .count();
    assert_eq!(res.len(), k.min(matching), "result count");
}

fn overlap(a: &[u32], b: &[u32]) -> usize {
    a.iter().filter(|x| b.contains(x)).count()
}

fn build(n: usize, seed: u64, metric: Metric) -> (VectorIndex, Vec<f32>) {
    let mut data = common::random_vectors(n, DIM, seed);
    if metric == Metric::Cosine {
        common::normalize_rows(&mut data, DIM);
    }
    let mut idx = VectorIndex::new(DIM, metric, HnswParams::default());
    for row in data.chunks_exact(DIM) {
        idx.push(row);
    }
    (idx, data)
}

#[test]
fn interleaved_push_index_delete_search() {
    let mut rng = common::Rng::new(99);
    let mut idx = VectorIndex::new(DIM, Metric::L2, HnswParams::default());
    let mut total_hits = 0usize;
    let mut total = 0usize;
    for round in 0..12u64 {
        let batch = common::random_vectors(600, DIM, 1000 + round);
        let first = idx.len() as u32;
        for row in batch.chunks_exact(DIM) {
            idx.push(row);
        }
        assert_eq!(idx.len(), (round as usize + 1) * 600);
        // Index only part of what is pending: a tail stays unindexed.
        let before = idx.indexed_len();
        let did = idx.index_pending(450);
        assert_eq!(did, 450.min(idx.len() - before));
        assert_eq!(idx.indexed_len(), before + did);
        assert!(idx.indexed_len() < idx.len());
        // Delete some random slots (some twice: idempotent), indexed or not.
        for _ in 0..60 {
            let s = rng.below(idx.len()) as u32;
            let live = idx.live_len();
            let was = idx.is_deleted(s);
            idx.delete(s);
            idx.delete(s);
            assert!(idx.is_deleted(s));
            assert_eq!(idx.live_len(), if was { live } else { live - 1 });
        }
        // Searches: no deleted, no duplicates, right count, high overlap with brute force.
        for qi in 0..15 {
            let q: Vec<f32> = common::random_vectors(1, DIM, round * 100 + qi);
            let res = idx.search(&q, 10, &SearchOptions::default());
            check_basic(&idx, &res, 10, |_| true);
            let ids: Vec<u32> = res.iter().map(|n| n.slot).collect();
            total_hits += overlap(&ids, &brute(&idx, &q, 10, |_| true));
            total += 10;
        }
        // A just-pushed (unindexed) vector is found by its own query.
        let s = first + 599;
        assert!(s as usize >= idx.indexed_len());
        if !idx.is_deleted(s) {
            let q = idx.vector(s).unwrap().to_vec();
            let res = idx.search(&q, 1, &SearchOptions::default());
            assert_eq!(res[0].slot, s);
            assert_eq!(res[0].distance, 0.0);
        }
    }
    let recall = total_hits as f64 / total as f64;
    assert!(recall >= 0.9, "recall vs brute force {recall}");
    // Finish indexing; everything still consistent.
    while idx.index_pending(1000) > 0 {}
    assert_eq!(idx.indexed_len(), idx.len());
}

#[test]
fn unindexed_tail_is_searched_and_merged() {
    let (mut idx, data) = build(4000, 7, Metric::L2);
    idx.index_pending(3000);
    assert_eq!(idx.indexed_len(), 3000);
    assert!(idx.live_len() >= BRUTE_FORCE_THRESHOLD);
    for s in (3000..4000).step_by(37) {
        let q = &data[s * DIM..(s + 1) * DIM];
        let res = idx.search(q, 5, &SearchOptions::default());
        assert_eq!(res[0].slot, s as u32, "tail slot {s} not found first");
        check_basic(&idx, &res, 5, |_| true);
    }
    for s in (0..3000).step_by(113) {
        let q = &data[s * DIM..(s + 1) * DIM];
        let res = idx.search(q, 5, &SearchOptions::default());
        assert_eq!(res[0].slot, s as u32, "graph slot {s} not found first");
    }
    // Deleting a tail slot hides it.
    idx.delete(3100);
    let q = &data[3100 * DIM..3101 * DIM];
    let res = idx.search(q, 5, &SearchOptions::default());
    assert!(res.iter().all(|n| n.slot != 3100));
}

#[test]
fn filters_return_min_k_matches_with_correct_ids() {
    for metric in [Metric::L2, Metric::Cosine] {
        let (mut idx, _) = build(4000, 17, metric);
        idx.index_pending(3500); // a tail of 500 stays unindexed
        for s in (0..4000).step_by(11) {
            idx.delete(s);
        }
        let one_pct = |s: u32| s % 100 == 7; // 40 slots, minus deleted
        let half = |s: u32| s.is_multiple_of(2);
        let three = |s: u32| s == 12 || s == 3001 || s == 3999;
        let none = |_s: u32| false;
        let mut half_hits = 0;
        let mut half_total = 0;
        for qi in 0..30u64 {
            let mut q = common::random_vectors(1, DIM, 5000 + qi);
            if metric == Metric::Cosine {
                common::normalize_rows(&mut q, DIM);
            }
            for k in [1, 10, 100] {
                // 1%: complete and exact.
                let res = idx.search(
                    &q,
                    k,
                    &SearchOptions {
                        filter: Some(&one_pct),
                        ..Default::default()
                    },
                );
                check_basic(&idx, &res, k, one_pct);
                let ids: Vec<u32> = res.iter().map(|n| n.slot).collect();
                assert_eq!(ids, brute(&idx, &q, k, one_pct), "1% filter, k={k}");
                // 50%: complete, high overlap with brute force.
                let res = idx.search(
                    &q,
                    k,
                    &SearchOptions {
                        filter: Some(&half),
                        ..Default::default()
                    },
                );
                check_basic(&idx, &res, k, half);
                let ids: Vec<u32> = res.iter().map(|n| n.slot).collect();
                half_hits += overlap(&ids, &brute(&idx, &q, k, half));
                half_total += k;
                // Exact search with the filter: identical to brute force.
                let res = idx.search(
                    &q,
                    k,
                    &SearchOptions {
                        filter: Some(&half),
                        exact: true,
                        ..Default::default()
                    },
                );
                let ids: Vec<u32> = res.iter().map(|n| n.slot).collect();
                assert_eq!(ids, brute(&idx, &q, k, half), "exact 50% filter, k={k}");
                // Fewer matches than k.
                let res = idx.search(
                    &q,
                    k,
                    &SearchOptions {
                        filter: Some(&three),
                        ..Default::default()
                    },
                );
                check_basic(&idx, &res, k, three);
                let ids: Vec<u32> = res.iter().map(|n| n.slot).collect();
                assert_eq!(ids, brute(&idx, &q, k, three));
                assert!(
                    idx.search(
                        &q,
                        k,
                        &SearchOptions {
                            filter: Some(&none),
                            ..Default::default()
                        }
                    )
                    .is_empty()
                );
            }
        }
        let recall = half_hits as f64 / half_total as f64;
        assert!(
            recall >= 0.95,
            "{metric}: 50% filter recall vs brute force {recall}"
        );
    }
}

#[test]
fn k_larger_than_live_returns_all_live() {
    let (mut idx, data) = build(3000, 23, Metric::Dot);
    idx.index_pending(2000);
    let q = &data[..DIM];
    let res = idx.search(q, 10_000, &SearchOptions::default());
    check_basic(&idx, &res, 10_000, |_| true);
    assert_eq!(res.len(), 3000);
    for s in 0..2950 {
        idx.delete(s);
    }
    assert_eq!(idx.live_len(), 50);
    for opts in [
        SearchOptions::default(),
        SearchOptions {
            exact: true,
            ..Default::default()
        },
        SearchOptions {
            ef: Some(1),
            ..Default::default()
        },
    ] {
        let res = idx.search(q, 60, &opts);
        check_basic(&idx, &res, 60, |_| true);
        let got: HashSet<u32> = res.iter().map(|n| n.slot).collect();
        assert_eq!(got, (2950..3000).collect::<HashSet<u32>>());
    }
    for s in 2950..3000 {
        idx.delete(s);
    }
    assert!(idx.search(q, 5, &SearchOptions::default()).is_empty());
    assert!(
        VectorIndex::new(DIM, Metric::L2, HnswParams::default())
            .search(q, 5, &SearchOptions::default())
            .is_empty()
    );
}

#[test]
fn k_beyond_ef_and_heavy_deletes_on_graph() {
    let (mut idx, data) = build(5000, 31, Metric::L2);
    idx.index_pending(usize::MAX);
    // k > ef: the effective ef is k.
    let q = &data[5 * DIM..6 * DIM];
    let res = idx.search(
        q,
        300,
        &SearchOptions {
            ef: Some(10),
            ..Default::default()
        },
    );
    check_basic(&idx, &res, 300, |_| true);
    let ids: Vec<u32> = res.iter().map(|n| n.slot).collect();
    assert!(overlap(&ids, &brute(&idx, q, 300, |_| true)) >= 285);
    // Delete 90% (tombstones stay as waypoints).
    for s in 0..5000u32 {
        if s % 10 != 0 {
            idx.delete(s);
        }
    }
    assert_eq!(idx.live_len(), 500);
    for qi in 0..20 {
        let q = &data[qi * 97 * DIM..(qi * 97 + 1) * DIM];
        let res = idx.search(q, 10, &SearchOptions::default());
        check_basic(&idx, &res, 10, |_| true);
    }
}

#[test]
fn deterministic_regardless_of_batching() {
    let (mut a, data) = build(2500, 41, Metric::Cosine);
    let (mut b, _) = build(2500, 41, Metric::Cosine);
    a.index_pending(usize::MAX);
    while b.index_pending(37) > 0 {}
    assert_eq!(a.indexed_len(), b.indexed_len());
    assert_eq!(a.memory_bytes() > 0, b.memory_bytes() > 0);
    for q in data.chunks_exact(DIM).step_by(50) {
        let ra = a.search(q, 10, &SearchOptions::default());
        let rb = b.search(q, 10, &SearchOptions::default());
        assert_eq!(ra, rb);
    }
}

#[test]
fn concurrent_searches_agree_with_sequential() {
    let (mut idx, data) = build(4000, 51, Metric::L2);
    idx.index_pending(3500);
    let queries: Vec<&[f32]> = data.chunks_exact(DIM).step_by(40).collect();
    let f = |s: u32| s.is_multiple_of(3);
    let opts = SearchOptions {
        filter: Some(&f),
        ..Default::default()
    };
    let seq: Vec<Vec<Neighbor>> = queries.iter().map(|q| idx.search(q, 10, &opts)).collect();
    let idx = &idx;
    std::thread::scope(|sc| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                sc.spawn(|| {
                    queries
                        .iter()
                        .map(|q| idx.search(q, 10, &opts))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), seq);
        }
    });
}

#[test]
fn memory_is_close_to_raw_vectors_plus_links() {
    let dim = 128;
    let n = 2000;
    let data = common::random_vectors(n, dim, 61);
    let mut idx = VectorIndex::new(dim, Metric::L2, HnswParams::default());
    for row in data.chunks_exact(dim) {
        idx.push(row);
    }
    idx.index_pending(usize::MAX);
    let raw = n * dim * 4;
    let links = n * (1 + 2 * idx.params().m) * 4;
    let mem = idx.memory_bytes();
    assert!(
        mem >= raw + links,
        "memory_bytes {mem} below vectors + level-0 links"
    );
    assert!(
        (mem as f64) <= 1.3 * raw as f64 + links as f64,
        "memory_bytes {mem} > 1.3 × {raw} + {links}"
    );
}

/// A filter that itself searches (same thread) must not break the per-thread scratch.
#[test]
fn reentrant_filter_search() {
    let (mut idx, data) = build(3000, 71, Metric::L2);
    idx.index_pending(usize::MAX);
    let (mut other, _) = build(1500, 72, Metric::L2);
    other.index_pending(usize::MAX);
    let q = &data[..DIM];
    let other_ref = &other;
    let f = move |s: u32| {
        // Nonsense but deterministic: admit s if the other index's top hit for q is even.
        let top = other_ref.search(q, 1, &SearchOptions::default())[0].slot;
        (s + top).is_multiple_of(2)
    };
    let opts = SearchOptions {
        filter: Some(&f),
        ..Default::default()
    };
    let res = idx.search(q, 10, &opts);
    check_basic(&idx, &res, 10, f);
    assert_eq!(res, idx.search(q, 10, &opts));
}

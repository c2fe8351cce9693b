//! Unit tests of the index: graph invariants, the graph codec, the search budget fallback,
//! recall under churn and through mostly dead graphs.

use super::*;

/// `n` seeded unit vectors (xorshift; also used by the `sq8` tests).
pub(crate) fn rand_vecs(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            let mut v: Vec<f32> = (0..dim)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                })
                .collect();
            crate::distance::normalize(&mut v);
            v
        })
        .collect()
}

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn index_is_send_sync() {
    assert_send_sync::<VectorIndex>();
}

#[test]
fn levels_are_deterministic_and_geometric() {
    let levels: Vec<usize> = (0..100_000).map(|s| hnsw::random_level(s, 16)).collect();
    let again: Vec<usize> = (0..100_000).map(|s| hnsw::random_level(s, 16)).collect();
    assert_eq!(levels, again);
    let above0 = levels.iter().filter(|&&l| l > 0).count() as f64 / 1e5;
    assert!((above0 - 1.0 / 16.0).abs() < 0.01, "P(level>0) = {above0}");
}

#[test]
fn graph_invariants_hold() {
    let dim = 16;
    let mut idx = VectorIndex::new(dim, Metric::L2, HnswParams::default());
    for v in rand_vecs(3000, dim, 7) {
        idx.push(&v);
    }
    idx.index_pending(3000);
    let g = &idx.graph;
    for node in 0..g.len() as u32 {
        for l in 0..=g.level(node) {
            let links = g.neighbors(node, l);
            assert!(links.len() <= g.capacity(l));
            let mut sorted = links.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), links.len(), "duplicate links");
            for &x in links {
                assert!((x as usize) < g.len() && x != node);
                assert!(g.level(x) >= l, "link to a node absent from level {l}");
            }
            if g.len() > 1 && l == 0 {
                assert!(!links.is_empty(), "isolated node {node}");
            }
        }
    }
}

/// A graph saved and loaded beside the same vectors answers every query identically, and
/// damaged bytes are an error (never a panic).
#[test]
fn graph_round_trips_and_rejects_damage() {
    let dim = 16;
    let vecs = rand_vecs(3000, dim, 11);
    let mut idx = VectorIndex::new(dim, Metric::Cosine, HnswParams::default());
    vecs.iter().for_each(|v| {
        idx.push(v);
    });
    idx.index_pending(2500); // 500 stay pending: searched exactly on both sides
    idx.delete(17);
    let bytes = idx.encode_graph();
    let mut copy = VectorIndex::new(dim, Metric::Cosine, HnswParams::default());
    vecs.iter().for_each(|v| {
        copy.push(v);
    });
    copy.delete(17);
    copy.load_graph(&bytes).unwrap();
    assert_eq!(copy.indexed_len(), 2500);
    let opts = SearchOptions::default();
    for q in rand_vecs(50, dim, 99) {
        let a = idx.search(&q, 10, &opts);
        let b = copy.search(&q, 10, &opts);
        assert_eq!(a, b);
        assert_eq!(a.len(), 10);
    }
    // Damage: truncation, a flipped link, a wrong m, more nodes than slots.
    assert!(copy.load_graph(&bytes[..bytes.len() - 3]).is_err());
    let mut bad = bytes.clone();
    let first_link = 8 + 4 + 8 + 8 + 2500 + 4; // level-0 block of node 0, first link
    bad[first_link..first_link + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(copy.load_graph(&bad).is_err());
    let mut other_m = VectorIndex::new(
        dim,
        Metric::Cosine,
        HnswParams {
            m: 8,
            ..HnswParams::default()
        },
    );
    vecs.iter().for_each(|v| {
        other_m.push(v);
    });
    assert!(other_m.load_graph(&bytes).is_err());
    let mut short = VectorIndex::new(dim, Metric::Cosine, HnswParams::default());
    short.push(&vecs[0]);
    assert!(short.load_graph(&bytes).is_err());
    assert_eq!(
        copy.indexed_len(),
        2500,
        "a failed load leaves the index unchanged"
    );
}

/// An encoded graph of 10 nodes, m = 2, nodes 0 and 1 on level 1 with their upper blocks at
/// `offsets` in an upper storage of `upper_len` words, all link lists empty but 0 <-> 1 on level 0.
fn graph_with_upper_blocks(offsets: [u32; 2], upper_len: usize) -> Vec<u8> {
    let u32s = |b: &mut Vec<u8>, v: &[u32]| v.iter().for_each(|x| b.extend(x.to_le_bytes()));
    let nodes = 10;
    let mut bytes = b"AKHNSW01".to_vec();
    u32s(&mut bytes, &[2]); // m
    bytes.extend((nodes as u64).to_le_bytes());
    u32s(&mut bytes, &[0, 1]); // entry: node 0 at level 1
    let mut levels = vec![0u8; nodes];
    levels[..2].fill(1);
    bytes.extend(&levels);
    let mut level0 = vec![0u32; nodes * 5];
    level0[..2].copy_from_slice(&[1, 1]); // 0 -> 1
    level0[5..7].copy_from_slice(&[1, 0]); // 1 -> 0
    u32s(&mut bytes, &level0);
    let mut upper_offset = vec![u32::MAX; nodes];
    upper_offset[..2].copy_from_slice(&offsets);
    u32s(&mut bytes, &upper_offset);
    bytes.extend((upper_len as u64).to_le_bytes());
    u32s(&mut bytes, &vec![0; upper_len]);
    bytes
}

fn index_of_40(m: usize) -> VectorIndex {
    let params = HnswParams {
        m,
        ..HnswParams::default()
    };
    let mut idx = VectorIndex::new(2, Metric::L2, params);
    for i in 0..40 {
        idx.push(&[i as f32, (i % 3) as f32]);
    }
    idx
}

/// Upper-level blocks that overlap (node 1's starts inside node 0's) pass every per-node check,
/// but inserting a node that links to node 0 then writes its id into node 1's link count: such a
/// graph is refused (found by the `graph` fuzz target: a loaded graph, extended, no longer
/// decoded: "too many links"). Blocks apart, with unused words between and after them, are
/// fine: extended, the graph still decodes.
#[test]
fn overlapping_upper_blocks_are_refused() {
    let mut idx = index_of_40(2);
    match idx.load_graph(&graph_with_upper_blocks([0, 1], 4)) {
        Err(e) => assert!(e.contains("upper-level block"), "{e}"),
        Ok(()) => {
            idx.index_pending(usize::MAX);
            let again = Graph::decode(&idx.encode_graph()).map(|_| ());
            panic!("overlapping blocks accepted; once extended, the graph decodes as {again:?}");
        }
    }
    let mut idx = index_of_40(2);
    idx.load_graph(&graph_with_upper_blocks([1, 5], 10))
        .unwrap();
    idx.index_pending(usize::MAX);
    Graph::decode(&idx.encode_graph()).expect("extended, the graph decodes");
}

/// The budgeted graph search can find fewer than k admitted nodes; search must then fall
/// back to an exact scan.
#[test]
fn graph_search_budget_falls_back() {
    let dim = 8;
    let mut idx = VectorIndex::new(dim, Metric::L2, HnswParams::default());
    let vs = rand_vecs(4000, dim, 3);
    for v in &vs {
        idx.push(v);
    }
    idx.index_pending(usize::MAX);
    let admit = |id: u32| id.is_multiple_of(10);
    let Store::F32(vectors) = &idx.store else {
        unreachable!("not quantized")
    };
    let view = View {
        graph: &idx.graph,
        space: F32Space {
            vectors,
            dim,
            dist: idx.dist,
        },
    };
    let found = with_scratch(|s| graph_search(&view, &vs[1].as_slice(), 10, admit, 5, s));
    assert_eq!(
        found, None,
        "a 5-evaluation budget cannot converge on 10 of 10% matches, and says so"
    );
    let found = with_scratch(|s| graph_search(&view, &vs[1].as_slice(), 10, admit, 1 << 20, s));
    assert_eq!(found, Some(10), "an ample budget converges");
    // Through the public API the result is complete and exact.
    let f = |id: u32| id.is_multiple_of(10);
    let got = idx.search(
        &vs[1],
        10,
        &SearchOptions {
            filter: Some(&f),
            ..Default::default()
        },
    );
    assert_eq!(got.len(), 10);
    assert!(got.iter().all(|n| n.slot % 10 == 0));
}

/// recall@k of `idx.search` (default ef) against its exact search, over `queries`: (mean, min).
/// A hit is a result no farther than the exact k-th (ties count). Also checks that every
/// answer has k results, best first, live and distinct.
fn recall_vs_exact(idx: &VectorIndex, queries: &[Vec<f32>], k: usize) -> (f64, f64) {
    let exact = SearchOptions {
        exact: true,
        ..Default::default()
    };
    let (mut sum, mut min) = (0.0, f64::INFINITY);
    for q in queries {
        let truth = idx.search(q, k, &exact);
        let got = idx.search(q, k, &SearchOptions::default());
        assert_eq!(got.len(), k);
        assert!(got.windows(2).all(|w| w[0].distance <= w[1].distance));
        assert!(
            got.iter().all(|n| !idx.is_deleted(n.slot)),
            "a dead slot returned"
        );
        let mut slots: Vec<u32> = got.iter().map(|n| n.slot).collect();
        slots.sort_unstable();
        slots.dedup();
        assert_eq!(slots.len(), k, "duplicate results");
        let kth = truth[k - 1].distance;
        let r = got.iter().filter(|n| n.distance <= kth).count() as f64 / k as f64;
        sum += r;
        min = min.min(r);
    }
    (sum / queries.len() as f64, min)
}

/// `n` seeded unit vectors around `centers` cluster centres (a little structure, as real
/// embeddings have, so that HNSW is as accurate as it is on them).
fn clustered(n: usize, dim: usize, centers: usize, seed: u64) -> Vec<Vec<f32>> {
    let c = rand_vecs(centers, dim, seed);
    rand_vecs(n, dim, seed ^ 0xC1)
        .into_iter()
        .enumerate()
        .map(|(i, mut v)| {
            for (x, y) in v.iter_mut().zip(&c[i % centers]) {
                *x = 0.6 * *x + y;
            }
            crate::distance::normalize(&mut v);
            v
        })
        .collect()
}

/// Heavy churn: half the slots dead. 4,000 documents, then 4,000 replacements of random ones
/// (a new slot pushed, the old one deleted, indexed 32 at a time as the engine's indexer
/// does), once re-upserting the same vector (dead twins) and once a moved one. Recall against
/// brute force over the live slots must not fall (issue 13: replaced documents piling up must
/// not degrade search).
#[test]
fn recall_holds_with_half_the_slots_replaced() {
    let (n, dim, k) = (4_000, 8, 10);
    let base = clustered(n, dim, 40, 21);
    let queries = clustered(300, dim, 40, 22);
    for moved in [false, true] {
        let mut idx = VectorIndex::new(dim, Metric::Cosine, HnswParams::default());
        let mut slot_of: Vec<u32> = base.iter().map(|v| idx.push(v)).collect();
        idx.index_pending(usize::MAX);
        let (before, before_min) = recall_vs_exact(&idx, &queries, k);
        let noise = rand_vecs(n, dim, 23);
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        for (i, e) in noise.iter().enumerate() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let j = (rng % n as u64) as usize;
            let mut v = base[j].clone();
            if moved {
                v.iter_mut().zip(e).for_each(|(x, e)| *x += 0.3 * e);
                crate::distance::normalize(&mut v);
            }
            let new = idx.push(&v);
            idx.delete(slot_of[j]);
            slot_of[j] = new;
            if i % 32 == 31 {
                idx.index_pending(32);
            }
        }
        idx.index_pending(usize::MAX);
        assert_eq!(
            (idx.len(), idx.live_len()),
            (2 * n, n),
            "half the slots dead"
        );
        let (after, after_min) = recall_vs_exact(&idx, &queries, k);
        println!(
            "moved {moved}: recall@{k} {before:.4} (min {before_min}) -> {after:.4} (min {after_min})"
        );
        assert!(before >= 0.95, "recall before churn {before:.4}");
        assert!(
            after >= before - 0.01,
            "moved {moved}: recall fell under churn: {before:.4} -> {after:.4}"
        );
        assert!(after_min >= 0.6, "moved {moved}: worst query {after_min}");
    }
}

/// Through a graph whose slots are 95% deleted the walk must still converge: a search budget
/// that ignored the deletions stopped most walks with k results but not the nearest ones.
#[test]
fn walks_through_mostly_dead_graphs_converge() {
    let (n, dim, k) = (24_000, 8, 10);
    // ef 24 (the default before issue 13), so that the graph is walked, not scanned.
    let params = HnswParams {
        ef_search: 24,
        ..HnswParams::default()
    };
    let mut idx = VectorIndex::new(dim, Metric::L2, params);
    for v in clustered(n, dim, 100, 31) {
        idx.push(&v);
    }
    idx.index_pending(usize::MAX);
    // Keep every 20th slot: 1,200 live, p = 0.05, so p² · indexed = 60 > 2 · ef = 48 and the
    // graph is walked (not scanned).
    for slot in 0..n as u32 {
        if slot % 20 != 7 {
            idx.delete(slot);
        }
    }
    assert_eq!(idx.live_len(), 1_200);
    let queries = clustered(200, dim, 100, 32);
    // The walk itself: with the budget scaled by 1/p every walk converges; the unscaled one
    // (3,072 evaluations at ef 24, M 16) stops most of them, which the search then answers by
    // a scan instead of returning their results.
    let Store::F32(vectors) = &idx.store else {
        unreachable!("not quantized")
    };
    let view = View {
        graph: &idx.graph,
        space: F32Space {
            vectors,
            dim,
            dist: idx.dist,
        },
    };
    let (ef, m) = (params.ef_search, DEFAULT_M);
    let p = idx.live_len() as f64 / idx.len() as f64;
    assert_eq!(
        (search_budget(ef, m, 1.0), search_budget(ef, m, p)),
        (3_072, 61_440)
    );
    let live = |slot: u32| !idx.deleted_bit(slot);
    let walks = |budget: usize| {
        queries
            .iter()
            .map(|q| with_scratch(|s| graph_search(&view, &q.as_slice(), ef, live, budget, s)))
            .collect::<Vec<_>>()
    };
    assert!(
        walks(search_budget(ef, m, p))
            .iter()
            .all(|w| w.is_some_and(|n| n == ef))
    );
    let cut = walks(search_budget(ef, m, 1.0))
        .iter()
        .filter(|w| w.is_none())
        .count();
    assert!(
        cut > queries.len() / 2,
        "only {cut} walks exhausted the unscaled budget"
    );
    // Through the public API: complete, live, and as good as brute force.
    let (mean, min) = recall_vs_exact(&idx, &queries, k);
    assert!(
        mean >= 0.99,
        "recall@{k} {mean:.4} through a 95% dead graph"
    );
    assert!(min >= 0.8, "worst query {min}");
}

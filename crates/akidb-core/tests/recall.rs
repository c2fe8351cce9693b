//! Recall@10 on the real debian-minilm-384 set at the default ef must be ≥ 0.95, and the graph
//! must not depend on how many threads built it.

mod common;

use akidb_core::index::DEFAULT_EF_SEARCH;
use akidb_core::{HnswParams, Metric, SearchOptions, VectorIndex};

#[test]
fn minilm_recall_at_default_ef() {
    let ds = common::load_minilm();
    assert_eq!(ds.dim, 384);
    assert_eq!(ds.n_base(), 20_000);
    assert_eq!(ds.n_queries(), 1_000);
    // Built on one thread and on two: the graph is the same (only the batches decide it).
    let build = |threads: usize| {
        let mut idx = VectorIndex::new(ds.dim, Metric::Cosine, HnswParams::default());
        idx.set_build_threads(threads);
        for i in 0..ds.n_base() {
            assert_eq!(idx.push(ds.base_vec(i)), i as u32);
        }
        // Index in uneven calls: the graph is built incrementally.
        let mut done = 0;
        for batch in [1, 999, 7_000, usize::MAX] {
            done += idx.index_pending(batch);
        }
        assert_eq!(done, 20_000);
        assert_eq!(idx.indexed_len(), 20_000);
        idx
    };
    let idx = build(2);
    assert!(
        build(1).encode_graph() == idx.encode_graph(),
        "the thread count changed the graph"
    );

    let opts = SearchOptions::default();
    let found: Vec<Vec<u32>> = (0..ds.n_queries())
        .map(|q| {
            let res = idx.search(ds.query(q), 10, &opts);
            assert_eq!(res.len(), 10);
            assert!(res.windows(2).all(|w| w[0].distance <= w[1].distance));
            res.iter().map(|n| n.slot).collect()
        })
        .collect();
    let recall = common::recall_at_10(&found, &ds.gt);
    println!("recall@10 at default ef {DEFAULT_EF_SEARCH}: {recall:.4}");
    assert!(
        recall >= 0.95,
        "recall@10 {recall:.4} < 0.95 at ef {DEFAULT_EF_SEARCH}"
    );

    // Larger ef gives at least as good recall, and exact search reproduces the ground truth.
    let wide = SearchOptions {
        ef: Some(160),
        ..Default::default()
    };
    let found: Vec<Vec<u32>> = (0..ds.n_queries())
        .map(|q| {
            idx.search(ds.query(q), 10, &wide)
                .iter()
                .map(|n| n.slot)
                .collect()
        })
        .collect();
    let recall_wide = common::recall_at_10(&found, &ds.gt);
    assert!(recall_wide >= 0.99, "recall@10 at ef 160: {recall_wide:.4}");
    let exact = SearchOptions {
        exact: true,
        ..Default::default()
    };
    let found: Vec<Vec<u32>> = (0..100)
        .map(|q| {
            idx.search(ds.query(q), 10, &exact)
                .iter()
                .map(|n| n.slot)
                .collect()
        })
        .collect();
    assert_eq!(common::recall_at_10(&found, &ds.gt[..100]), 1.0);
}

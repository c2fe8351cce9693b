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

/// 8-bit codes in RAM, full vectors re-ranked from a separate store: recall@10 ≥ 0.95 at the
/// default ef on minilm, exact search still reproduces the ground truth, and slots pushed after
/// the quantization (encoded with the trained quantizer, indexed over codes) are found too.
#[test]
fn minilm_recall_quantized() {
    use akidb_core::index::{Quantization, VectorsInRam};
    let ds = common::load_minilm();
    let mut idx = VectorIndex::new(ds.dim, Metric::Cosine, HnswParams::default());
    idx.set_build_threads(2);
    // Half indexed over f32, quantized, the other half pushed and indexed over codes.
    let half = ds.n_base() / 2;
    for i in 0..half {
        idx.push(ds.base_vec(i));
    }
    idx.index_pending(usize::MAX);
    idx.quantize(Box::new(VectorsInRam::new(ds.dim))).unwrap();
    assert_eq!(idx.quantization(), Quantization::Sq8);
    for i in half..ds.n_base() {
        idx.push(ds.base_vec(i));
    }
    idx.index_pending(usize::MAX);
    assert_eq!(&*idx.vector(7).unwrap(), ds.base_vec(7));
    assert_eq!(
        &*idx.vector(half as u32 + 7).unwrap(),
        ds.base_vec(half + 7)
    );
    let search = |idx: &VectorIndex, opts: &SearchOptions<'_>, n: usize| -> Vec<Vec<u32>> {
        (0..n)
            .map(|q| {
                let res = idx.search(ds.query(q), 10, opts);
                assert_eq!(res.len(), 10);
                res.iter().map(|n| n.slot).collect()
            })
            .collect()
    };
    let recall = common::recall_at_10(
        &search(&idx, &SearchOptions::default(), ds.n_queries()),
        &ds.gt,
    );
    println!("sq8 recall@10 at default ef {DEFAULT_EF_SEARCH}: {recall:.4}");
    assert!(recall >= 0.95, "sq8 recall@10 {recall:.4} < 0.95");
    let exact = SearchOptions {
        exact: true,
        ..Default::default()
    };
    assert_eq!(
        common::recall_at_10(&search(&idx, &exact, 100), &ds.gt[..100]),
        1.0
    );
    assert_eq!(idx.full_read_errors(), 0);
    // Back to f32: the same answers as an index that never was quantized.
    idx.dequantize().unwrap();
    assert_eq!(idx.quantization(), Quantization::None);
    assert_eq!(
        common::recall_at_10(&search(&idx, &exact, 100), &ds.gt[..100]),
        1.0
    );
}

//! The HNSW graph decoder (`Graph::decode`), through the index's load path,
//! `VectorIndex::load_graph`, as a collection installs a saved graph. The index it is loaded
//! into has the `m` of the input's header (a real collection's must match) and a slot for every
//! node the header claims plus a few pending ones; a graph that loads must then answer
//! searches, take the pending slots, and re-encode to the same bytes. Errors are fine; panics,
//! overflows and out-of-bounds reads are not.
#![no_main]

use akidb_core::{HnswParams, Metric, SearchOptions, VectorIndex};
use libfuzzer_sys::fuzz_target;

const DIM: usize = 2;
const PENDING: usize = 3;

fn index(m: usize, slots: usize) -> VectorIndex {
    let params = HnswParams {
        m,
        ef_construction: 8,
        ef_search: 8,
    };
    let mut index = VectorIndex::new(DIM, Metric::L2, params);
    index.set_brute_force_threshold(0);
    for i in 0..slots {
        index.push(&[(i * 7 % 13) as f32, (i * 3 % 5) as f32]);
    }
    index
}

fn search(index: &VectorIndex) {
    let odd = |slot: u32| slot % 2 == 1;
    for k in [1, 2] {
        for q in [[0.0, 0.0], [6.0, 2.0], [-3.0, 9.5]] {
            let hits = index.search(&q, k, &SearchOptions::default());
            assert!(hits.len() <= k);
            let opts = SearchOptions {
                filter: Some(&odd),
                ..Default::default()
            };
            let hits = index.search(&q, k, &opts);
            assert!(hits.iter().all(|h| odd(h.slot)));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let word = |at: usize, n: usize| data.get(at..at + n).map(|b| b.to_vec());
    let m = word(8, 4).map_or(16, |b| u32::from_le_bytes(b.try_into().unwrap()) as usize);
    let nodes = word(12, 8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()));
    // A node takes at least 25 bytes, so no graph that decodes has more than len / 25 nodes.
    let slots = nodes.min(data.len() as u64 / 16) as usize + PENDING;
    let mut idx = index(m.clamp(2, 1 << 15), slots);
    if idx.load_graph(data).is_err() {
        return;
    }
    let nodes = idx.indexed_len();
    assert!(nodes <= slots);
    if nodes > 0 {
        assert!(
            idx.encode_graph() == data,
            "a loaded graph re-encodes differently"
        );
    }
    search(&idx);
    // The slots past the graph are inserted into it, as the indexer does after a load.
    idx.index_pending(usize::MAX);
    assert_eq!(idx.indexed_len(), slots);
    search(&idx);
    let mut fresh = index(idx.params().m, slots);
    fresh
        .load_graph(&idx.encode_graph())
        .expect("an encoded graph loads");
});

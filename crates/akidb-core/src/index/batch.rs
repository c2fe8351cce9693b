//! Batch insertion (ParlayANN's, with prefix doubling): each slot of a batch is planned against
//! the graph as it was before the batch, on several threads, then the batch is applied in slot
//! order (see [`super::VectorIndex::index_pending`]).

use super::graph::Graph;
use super::hnsw::{self, View};
use super::scratch::with_scratch;
use super::space::Space;

/// Most slots planned together in one batch of [`VectorIndex::index_pending`].
pub const MAX_BATCH: usize = 256;

/// The plans of `slots`, in order, made on up to `threads` threads (each with its own
/// scratch space).
fn plan_batch<S: Space>(
    view: &hnsw::View<'_, S>,
    ef_c: usize,
    slots: std::ops::Range<u32>,
    threads: usize,
) -> Vec<hnsw::Plan> {
    let n = slots.len();
    if threads <= 1 || n < 2 {
        return with_scratch(|s| slots.map(|slot| hnsw::plan(view, ef_c, slot, s)).collect());
    }
    let per = n.div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = (0..n)
            .step_by(per)
            .map(|from| {
                let part = slots.start + from as u32..slots.start + (from + per).min(n) as u32;
                scope.spawn(move || {
                    with_scratch(|s| {
                        part.map(|slot| hnsw::plan(view, ef_c, slot, s))
                            .collect::<Vec<_>>()
                    })
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().expect("planning thread"))
            .collect()
    })
}

/// Inserts `slots` into the graph in batches (see [`VectorIndex::index_pending`]).
pub(super) fn insert_batches<S: Space>(
    graph: &mut Graph,
    space: S,
    ef_c: usize,
    threads: usize,
    slots: std::ops::Range<usize>,
) {
    let mut next = slots.start;
    while next < slots.end {
        let batch = (graph.len() / 4).clamp(1, MAX_BATCH).min(slots.end - next);
        let ids = next as u32..(next + batch) as u32;
        let plans = plan_batch(&View { graph, space }, ef_c, ids.clone(), threads);
        with_scratch(|s| {
            for (i, plan) in plans.into_iter().enumerate() {
                let earlier: Vec<u32> = (ids.start..ids.start + i as u32).collect();
                hnsw::apply(graph, space, plan, &earlier, s);
            }
        });
        next += batch;
    }
}

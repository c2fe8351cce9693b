//! Exact (brute-force) top-k over a slot range.

use std::collections::BinaryHeap;
use std::ops::Range;

use super::scratch::Item;
use crate::distance::DistanceFn;

/// Exact k nearest over `range`, restricted to slots with `admit(slot)`, into `heap` (a
/// max-heap kept at size ≤ k). Existing heap contents take part in the selection, so several
/// ranges can be merged by calling this repeatedly.
#[allow(clippy::too_many_arguments)]
pub(crate) fn scan<A: Fn(u32) -> bool>(
    vectors: &[f32],
    dim: usize,
    dist: DistanceFn,
    q: &[f32],
    k: usize,
    range: Range<usize>,
    admit: A,
    heap: &mut BinaryHeap<Item>,
) {
    if k == 0 {
        return;
    }
    for slot in range {
        let id = slot as u32;
        if !admit(id) {
            continue;
        }
        let d = dist.eval(q, &vectors[slot * dim..(slot + 1) * dim]);
        let it = Item { d, id };
        if heap.len() < k {
            heap.push(it);
        } else if let Some(mut top) = heap.peek_mut()
            && it < *top
        {
            *top = it;
        }
    }
}

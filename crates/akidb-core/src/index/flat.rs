//! Exact (brute-force) top-k over a slot range.

use std::collections::BinaryHeap;
use std::ops::Range;

use super::scratch::Item;
use super::space::Space;

/// Exact k nearest over `range` in `space`, restricted to slots with `admit(slot)`, into `heap`
/// (a max-heap kept at size ≤ k). Existing heap contents take part in the selection, so several
/// ranges can be merged by calling this repeatedly.
pub(crate) fn scan<S: Space, A: Fn(u32) -> bool>(
    space: S,
    q: &S::Query<'_>,
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
        push_bounded(
            heap,
            k,
            Item {
                d: space.d(q, id),
                id,
            },
        );
    }
}

/// Adds `it` to a max-heap kept at ≤ k items.
#[inline]
pub(crate) fn push_bounded(heap: &mut BinaryHeap<Item>, k: usize, it: Item) {
    if heap.len() < k {
        heap.push(it);
    } else if let Some(mut top) = heap.peek_mut()
        && it < *top
    {
        *top = it;
    }
}

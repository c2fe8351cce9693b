//! Per-thread reusable search state: generation-stamped visited set, heaps and buffers.
//!
//! One `Scratch` lives in a `thread_local!`; searches and inserts borrow it, so the hot path
//! allocates nothing once the buffers have grown to their working size. If the thread's scratch
//! is already borrowed (a filter closure that itself searches an index on the same thread) a
//! fresh temporary one is used instead.

use std::cell::RefCell;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// A (distance, slot) pair ordered by distance, then slot (total, deterministic order).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Item {
    pub d: f32,
    pub id: u32,
}

impl Ord for Item {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        self.d
            .total_cmp(&other.d)
            .then_with(|| self.id.cmp(&other.id))
    }
}

impl PartialOrd for Item {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Item {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Item {}

/// Visited set: `marks[i] == epoch` means "visited in the current search". Starting a new
/// search bumps the epoch (O(1)); only on u16 wrap-around is the array cleared.
#[derive(Default)]
pub(crate) struct Visited {
    marks: Vec<u16>,
    epoch: u16,
}

impl Visited {
    /// Starts a new search over ids `< n`.
    #[inline]
    pub fn reset(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.marks.fill(0);
            self.epoch = 1;
        }
    }

    /// Marks `id`; returns true if it was not yet visited.
    #[inline(always)]
    pub fn insert(&mut self, id: u32) -> bool {
        let m = &mut self.marks[id as usize];
        if *m == self.epoch {
            false
        } else {
            *m = self.epoch;
            true
        }
    }
}

#[derive(Default)]
pub(crate) struct Scratch {
    pub visited: Visited,
    /// Min-heap of nodes to expand.
    pub candidates: BinaryHeap<Reverse<Item>>,
    /// Max-heap of the best `ef` admitted nodes (worst on top).
    pub results: BinaryHeap<Item>,
    /// Unvisited neighbours of the node being expanded.
    pub batch: Vec<u32>,
    /// Results of a layer search, sorted ascending.
    pub sorted: Vec<Item>,
    /// Output of the neighbour-selection heuristic.
    pub selected: Vec<Item>,
    /// Candidate list when re-pruning a full neighbour list.
    pub prune: Vec<Item>,
    pub pruned: Vec<Item>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` with this thread's scratch (or a fresh one if it is already in use).
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    let mut f = Some(f);
    let r = SCRATCH.try_with(|cell| {
        if let Ok(mut s) = cell.try_borrow_mut() {
            let f = f.take().expect("called once");
            Some(f(&mut s))
        } else {
            None
        }
    });
    match r {
        Ok(Some(r)) => r,
        _ => {
            let f = f.take().expect("called once");
            f(&mut Scratch::default())
        }
    }
}

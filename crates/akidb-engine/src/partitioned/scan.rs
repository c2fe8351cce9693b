//! Choosing partitions and keeping the best rows of a scan. Pure: the engine reads the
//! partitions and decides which rows are admitted (live, not replaced by a newer row, matching
//! the filter).

use std::collections::BinaryHeap;

use super::format::Header;

/// Partitions a query probes by default: this share of them, and at least [`MIN_PROBES`].
pub const DEFAULT_PROBE_FRACTION: f64 = 0.03;
pub const MIN_PROBES: usize = 8;

/// How many of `partitions` a query probes when it does not say.
pub fn default_probes(partitions: usize) -> usize {
    ((partitions as f64 * DEFAULT_PROBE_FRACTION).ceil() as usize)
        .max(MIN_PROBES)
        .min(partitions)
}

/// Every partition of `header`, nearest centroid to `query` first.
pub fn probe_order(header: &Header, query: &[f32]) -> Vec<u32> {
    header
        .centroids
        .rank(query, header.partitions.len())
        .into_iter()
        .map(|(p, _)| p)
        .collect()
}

/// The `k` best (lowest distance, then lowest slot: the order of an exact search in the hot
/// tier) rows seen, each with a payload saying where it is.
pub struct TopK<T> {
    k: usize,
    heap: BinaryHeap<Entry<T>>,
}

struct Entry<T> {
    distance: f32,
    slot: u32,
    payload: T,
}

impl<T> Entry<T> {
    fn key(&self) -> (f32, u32) {
        (self.distance, self.slot)
    }
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl<T> Eq for Entry<T> {}

impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let (a, b) = (self.key(), other.key());
        a.0.total_cmp(&b.0).then(a.1.cmp(&b.1))
    }
}

impl<T> TopK<T> {
    pub fn new(k: usize) -> TopK<T> {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Whether a row at `distance` with `slot` would be kept (so that its payload is built only
    /// then).
    pub fn admits(&self, distance: f32, slot: u32) -> bool {
        self.k > 0
            && (self.heap.len() < self.k
                || self.heap.peek().is_some_and(|worst| {
                    distance
                        .total_cmp(&worst.distance)
                        .then(slot.cmp(&worst.slot))
                        .is_lt()
                }))
    }

    pub fn push(&mut self, distance: f32, slot: u32, payload: T) {
        if self.k == 0 {
            return;
        }
        let entry = Entry {
            distance,
            slot,
            payload,
        };
        if self.heap.len() < self.k {
            self.heap.push(entry);
        } else if let Some(mut worst) = self.heap.peek_mut()
            && entry < *worst
        {
            *worst = entry;
        }
    }

    /// Adds every row `other` kept (a scan of other partitions, merged).
    pub fn merge(&mut self, other: TopK<T>) {
        for e in other.heap {
            if self.admits(e.distance, e.slot) {
                self.push(e.distance, e.slot, e.payload);
            }
        }
    }

    /// Best first: (distance, slot, payload).
    pub fn into_sorted(self) -> Vec<(f32, u32, T)> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|e| (e.distance, e.slot, e.payload))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_keeps_the_lowest_distances_and_breaks_ties_by_slot() {
        let mut top = TopK::new(3);
        for (d, slot) in [(0.5, 9), (0.1, 4), (0.5, 2), (0.9, 1), (0.1, 3), (0.5, 1)] {
            top.push(d, slot, ());
        }
        assert!(top.admits(0.5, 0) && !top.admits(0.5, 1) && !top.admits(0.6, 0));
        let mut other = TopK::new(3);
        other.push(0.2, 7, ());
        other.push(0.05, 8, ());
        top.merge(other);
        let got: Vec<(f32, u32)> = top
            .into_sorted()
            .into_iter()
            .map(|(d, s, _)| (d, s))
            .collect();
        assert_eq!(got, vec![(0.05, 8), (0.1, 3), (0.1, 4)]);
    }

    #[test]
    fn default_probes_are_a_share_with_a_floor_and_a_ceiling() {
        assert_eq!(default_probes(1), 1);
        assert_eq!(default_probes(100), 8);
        assert_eq!(default_probes(1000), 30);
    }
}

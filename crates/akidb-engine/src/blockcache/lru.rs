//! The block cache's accounting, pure: which blocks are kept under a byte budget, least
//! recently used out. The shell ([`super::BlockCache`]) does the file I/O it decides.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

pub struct Lru<K> {
    budget: u64,
    total: u64,
    tick: u64,
    /// Each block's size and last use.
    entries: HashMap<K, (u64, u64)>,
    /// Last use → block, oldest first.
    order: BTreeMap<u64, K>,
}

impl<K: Clone + Eq + Hash> Lru<K> {
    pub fn new(budget: u64) -> Lru<K> {
        Lru {
            budget,
            total: 0,
            tick: 0,
            entries: HashMap::new(),
            order: BTreeMap::new(),
        }
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }

    /// Marks `key` used now; false when it is not kept.
    pub fn touch(&mut self, key: &K) -> bool {
        let Some((_, last)) = self.entries.get_mut(key) else {
            return false;
        };
        self.order.remove(last);
        self.tick += 1;
        *last = self.tick;
        self.order.insert(self.tick, key.clone());
        true
    }

    /// Keeps `key` (of `bytes`) as the most recently used block and returns the blocks to
    /// drop so that the total stays within the budget: the least recently used ones, or `key`
    /// itself when it alone is larger than the budget.
    pub fn admit(&mut self, key: K, bytes: u64) -> Vec<K> {
        self.remove(&key);
        if bytes > self.budget {
            return vec![key];
        }
        self.tick += 1;
        self.entries.insert(key.clone(), (bytes, self.tick));
        self.order.insert(self.tick, key);
        self.total += bytes;
        let mut out = Vec::new();
        while self.total > self.budget {
            let (_, oldest) = self.order.pop_first().expect("over budget means not empty");
            let (size, _) = self.entries.remove(&oldest).expect("ordered means kept");
            self.total -= size;
            out.push(oldest);
        }
        out
    }

    /// Keeps only the blocks for which `keep` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&K) -> bool) {
        let gone: Vec<K> = self.entries.keys().filter(|k| !keep(k)).cloned().collect();
        for k in gone {
            self.remove(&k);
        }
    }

    /// Forgets `key` (its block is gone).
    pub fn remove(&mut self, key: &K) {
        if let Some((size, last)) = self.entries.remove(key) {
            self.order.remove(&last);
            self.total -= size;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_go_first_and_the_budget_holds() {
        let mut lru = Lru::new(100);
        assert!(lru.admit("a", 40).is_empty());
        assert!(lru.admit("b", 40).is_empty());
        assert!(lru.touch(&"a"));
        assert_eq!(lru.admit("c", 40), vec!["b"]);
        assert_eq!(lru.total(), 80);
        assert_eq!(lru.admit("d", 90), vec!["a", "c"]);
        assert_eq!(lru.admit("huge", 101), vec!["huge"]);
        assert_eq!((lru.total(), lru.len()), (90, 1));
        assert!(!lru.touch(&"b"));
        lru.remove(&"d");
        assert_eq!((lru.total(), lru.len()), (0, 0));
        lru.admit("x1", 10);
        lru.admit("y1", 20);
        lru.retain(|k| !k.starts_with('x'));
        assert_eq!((lru.total(), lru.len()), (20, 1));
    }

    #[test]
    fn readmitting_a_key_replaces_its_size() {
        let mut lru = Lru::new(100);
        lru.admit("a", 60);
        assert!(lru.admit("a", 30).is_empty());
        assert_eq!(lru.total(), 30);
    }

    /// Random admits, touches and removes: the total always equals the kept sizes and never
    /// exceeds the budget.
    #[test]
    fn random_operations_keep_the_accounting_exact() {
        let mut s = 42u64;
        let mut next = move |n: u64| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 33) % n
        };
        let mut lru = Lru::new(1000);
        let mut kept: HashMap<u64, u64> = HashMap::new();
        for _ in 0..10_000 {
            let key = next(50);
            match next(3) {
                0 => {
                    let bytes = next(300);
                    for gone in lru.admit(key, bytes) {
                        kept.remove(&gone);
                    }
                    if bytes <= 1000 {
                        kept.insert(key, bytes);
                    }
                }
                1 => assert_eq!(lru.touch(&key), kept.contains_key(&key)),
                _ => {
                    lru.remove(&key);
                    kept.remove(&key);
                }
            }
            assert!(lru.total() <= 1000);
            assert_eq!(lru.total(), kept.values().sum::<u64>());
            assert_eq!(lru.len(), kept.len());
        }
    }
}

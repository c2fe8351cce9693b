//! Which collection goes to which tier, by rank (pure): the hot / warm / cold [`Split`], the
//! ranks whose first search is measured, and the scenario's constants.

use akidb_api::Tier;

/// Exponent of the Zipf choice over the collection ranks: rank r gets weight 1 / (r + 1)^s.
pub const ZIPF_EXPONENT: f64 = 1.0;
/// At most this many collections per tier get a first-query measurement (of the cold group at
/// most half, so that part of the tail is still cold when the run starts).
pub const FIRST_QUERY_SAMPLES: usize = 4;
/// Fewest collections the scenario runs with (one per tier).
pub const MIN_COLLECTIONS: usize = 3;

pub const TIERS: [Tier; 3] = [Tier::Hot, Tier::Warm, Tier::Cold];

pub fn tier_name(t: Tier) -> &'static str {
    match t {
        Tier::Hot => "hot",
        Tier::Warm => "warm",
        Tier::Cold => "cold",
    }
}

/// How many collections go to each tier, by rank: the first `hot`, then `warm`, then the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub hot: usize,
    pub warm: usize,
    pub cold: usize,
}

impl Split {
    /// A tenth hot, a fifth warm (at least one each), the rest cold. `n >= MIN_COLLECTIONS`.
    pub fn of(n: usize) -> Split {
        assert!(
            n >= MIN_COLLECTIONS,
            "the tiered split needs {MIN_COLLECTIONS} collections"
        );
        let hot = (n / 10).max(1);
        let warm = (n / 5).max(1);
        Split {
            hot,
            warm,
            cold: n - hot - warm,
        }
    }

    pub fn tier_of(&self, rank: usize) -> Tier {
        if rank < self.hot {
            Tier::Hot
        } else if rank < self.hot + self.warm {
            Tier::Warm
        } else {
            Tier::Cold
        }
    }

    /// The ranks whose first search is measured: the first of each group, at most
    /// [`FIRST_QUERY_SAMPLES`], and at most half of the cold group (rounded up). A first search
    /// moves a cold collection, so the most popular cold ones are sampled and the rest of the
    /// tail is left cold for the run.
    pub fn first_query_ranks(&self, t: Tier) -> std::ops::Range<usize> {
        let r = self.ranks(t);
        let cap = match t {
            Tier::Cold => r.len().div_ceil(2),
            _ => r.len(),
        };
        r.start..r.start + cap.min(FIRST_QUERY_SAMPLES)
    }

    /// The ranks of one tier's group.
    pub fn ranks(&self, t: Tier) -> std::ops::Range<usize> {
        match t {
            Tier::Hot => 0..self.hot,
            Tier::Warm => self.hot..self.hot + self.warm,
            Tier::Cold => self.hot + self.warm..self.hot + self.warm + self.cold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_a_few_hot_some_warm_and_the_rest_cold() {
        assert_eq!(
            Split::of(20),
            Split {
                hot: 2,
                warm: 4,
                cold: 14
            }
        );
        let s = Split::of(3);
        assert_eq!((s.hot, s.warm, s.cold), (1, 1, 1));
        assert_eq!(
            (0..3).map(|r| s.tier_of(r)).collect::<Vec<_>>(),
            vec![Tier::Hot, Tier::Warm, Tier::Cold]
        );
        let s = Split::of(20);
        assert_eq!(s.ranks(Tier::Warm), 2..6);
        assert_eq!(s.ranks(Tier::Cold), 6..20);
        assert_eq!(s.tier_of(5), Tier::Warm);
        assert_eq!(s.tier_of(6), Tier::Cold);
        // First queries: up to 4 per group, at most half of the cold tail.
        assert_eq!(s.first_query_ranks(Tier::Hot), 0..2);
        assert_eq!(s.first_query_ranks(Tier::Warm), 2..6);
        assert_eq!(s.first_query_ranks(Tier::Cold), 6..10);
        let s = Split::of(5);
        assert_eq!((s.hot, s.warm, s.cold), (1, 1, 3));
        assert_eq!(s.first_query_ranks(Tier::Cold), 2..4);
        assert_eq!(Split::of(3).first_query_ranks(Tier::Cold), 2..3);
    }
}

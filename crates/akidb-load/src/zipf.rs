//! A Zipf-like choice of a rank: a few low ranks get most picks, a long tail gets a few each
//! (the `tiered` scenario's choice of collection). Pure.

/// A Zipf-like choice of a rank in `0..n`: rank r with probability proportional to
/// 1 / (r + 1)^s.
#[derive(Debug, Clone)]
pub struct Zipf {
    /// Cumulative weights; the last one is the total.
    cumulative: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, s: f64) -> Zipf {
        assert!(n > 0, "a Zipf choice needs at least one rank");
        let mut total = 0.0;
        let cumulative = (0..n)
            .map(|r| {
                total += 1.0 / ((r + 1) as f64).powf(s);
                total
            })
            .collect();
        Zipf { cumulative }
    }

    /// Picks a rank from a uniformly random `r`.
    pub fn pick(&self, r: u64) -> usize {
        let total = *self.cumulative.last().expect("n > 0");
        let u = (r >> 11) as f64 / (1u64 << 53) as f64 * total;
        self.cumulative
            .partition_point(|&c| c <= u)
            .min(self.cumulative.len() - 1)
    }

    /// The probability of the ranks in `range`.
    pub fn share(&self, range: std::ops::Range<usize>) -> f64 {
        if range.is_empty() {
            return 0.0;
        }
        let total = *self.cumulative.last().expect("n > 0");
        let below = |i: usize| if i == 0 { 0.0 } else { self.cumulative[i - 1] };
        (below(range.end) - below(range.start)) / total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn zipf_prefers_low_ranks_and_reaches_the_tail() {
        let z = Zipf::new(20, 1.0);
        let mut counts = [0u64; 20];
        let mut rng = Rng::new(7);
        let n = 200_000;
        for _ in 0..n {
            counts[z.pick(rng.next_u64())] += 1;
        }
        // Rank 0 is twice as likely as rank 1 and 20 times as likely as rank 19.
        let h20: f64 = (1..=20).map(|r| 1.0 / r as f64).sum();
        for (r, &c) in counts.iter().enumerate() {
            let expected = n as f64 / ((r + 1) as f64 * h20);
            assert!(
                (c as f64 - expected).abs() < expected * 0.1,
                "rank {r}: {c} vs {expected}"
            );
        }
        assert!((z.share(0..20) - 1.0).abs() < 1e-12);
        assert!((z.share(0..1) - 1.0 / h20).abs() < 1e-12);
        assert_eq!(z.share(3..3), 0.0);
        // The extremes of the random input stay in range.
        assert_eq!(z.pick(0), 0);
        assert_eq!(z.pick(u64::MAX), 19);
        assert_eq!(Zipf::new(1, 1.0).pick(12345), 0);
    }
}

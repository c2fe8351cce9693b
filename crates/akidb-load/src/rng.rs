//! A small seeded PRNG (SplitMix64): reproducible vectors and operation choices without a
//! dependency. Not for cryptography.

#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// An independent stream for `(seed, a, b)`, e.g. (seed, collection, row).
    pub fn derive(seed: u64, a: u64, b: u64) -> Rng {
        let mut r = Rng(seed ^ 0x5851_F42D_4C95_7F2D);
        let x = r.next_u64() ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut r = Rng(x);
        let y = r.next_u64() ^ b.wrapping_mul(0xD1B5_4A32_D192_ED03);
        Rng(y)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    pub fn vector(&mut self, dim: usize) -> Vec<f32> {
        (0..dim).map(|_| self.unit()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn reproducible_and_in_range() {
        let a = Rng::derive(42, 1, 2).vector(64);
        assert_eq!(a, Rng::derive(42, 1, 2).vector(64));
        assert_ne!(a, Rng::derive(42, 2, 1).vector(64));
        assert!(a.iter().all(|x| (-1.0..1.0).contains(x)));
        let mut r = Rng::new(7);
        assert!((0..1000).all(|_| r.below(3) < 3));
    }
}

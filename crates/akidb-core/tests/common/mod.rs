//! Shared helpers for tests, the benchmark and the example: texmex readers, the minilm data
//! set, seeded random vectors.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// `/work/shared/data/debian-minilm-384` relative to the crate (the repo clone sits beside
/// `shared/`).
pub fn minilm_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/debian-minilm-384"
    ))
}

/// texmex `.fvecs`: returns (d, row-major data).
pub fn read_fvecs(path: &Path) -> (usize, Vec<f32>) {
    let (d, rows) = akidb_testkit::read_fvecs(path).unwrap_or_else(|e| panic!("{e}"));
    (d, rows.concat())
}

/// texmex `.ivecs`.
pub fn read_ivecs(path: &Path) -> Vec<Vec<u32>> {
    let (_, rows) = akidb_testkit::read_ivecs(path).unwrap_or_else(|e| panic!("{e}"));
    rows.into_iter()
        .map(|r| r.into_iter().map(|x| x as u32).collect())
        .collect()
}

pub struct Minilm {
    pub dim: usize,
    pub base: Vec<f32>,
    pub queries: Vec<f32>,
    /// Exact top-100 per query, best first.
    pub gt: Vec<Vec<u32>>,
}

impl Minilm {
    pub fn n_base(&self) -> usize {
        self.base.len() / self.dim
    }
    pub fn n_queries(&self) -> usize {
        self.queries.len() / self.dim
    }
    pub fn base_vec(&self, i: usize) -> &[f32] {
        &self.base[i * self.dim..(i + 1) * self.dim]
    }
    pub fn query(&self, i: usize) -> &[f32] {
        &self.queries[i * self.dim..(i + 1) * self.dim]
    }
}

/// Loads the data set; panics with a clear message if it is missing.
pub fn load_minilm() -> Minilm {
    load_dir(&minilm_dir())
}

/// Loads a texmex folder (`base.fvecs`, `queries.fvecs`, `groundtruth.ivecs`).
pub fn load_dir(dir: &Path) -> Minilm {
    assert!(
        dir.is_dir(),
        "data set directory {} is missing: the recall test needs debian-minilm-384 \
         (base.fvecs, queries.fvecs, groundtruth.ivecs) in a `shared/data/` folder beside the \
         repository clone",
        dir.display()
    );
    let (dim, base) = read_fvecs(&dir.join("base.fvecs"));
    let dir = dir.to_path_buf();
    let (qd, queries) = read_fvecs(&dir.join("queries.fvecs"));
    assert_eq!(dim, qd);
    let gt = read_ivecs(&dir.join("groundtruth.ivecs"));
    assert_eq!(gt.len(), queries.len() / dim);
    Minilm {
        dim,
        base,
        queries,
        gt,
    }
}

/// Mean |found[..10] ∩ gt[..10]| / 10.
pub fn recall_at_10(found: &[Vec<u32>], gt: &[Vec<u32>]) -> f64 {
    akidb_testkit::recall_at(10, found, gt)
}

/// Deterministic xorshift64* stream of floats in [-1, 1).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// `n` random vectors of `dim` components in [-1, 1) (not normalised), row-major.
pub fn random_vectors(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut r = Rng::new(seed);
    (0..n * dim).map(|_| r.f32()).collect()
}

/// Normalises each row of `data` in place.
pub fn normalize_rows(data: &mut [f32], dim: usize) {
    for row in data.chunks_exact_mut(dim) {
        assert!(akidb_core::distance::normalize(row));
    }
}

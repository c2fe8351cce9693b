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

fn read_i32s(path: &Path) -> Vec<i32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}. The debian-minilm-384 data set must be at {} \
             (a `shared/` folder beside the repository clone)",
            path.display(),
            minilm_dir().display()
        )
    });
    assert!(
        bytes.len().is_multiple_of(4),
        "{}: truncated file",
        path.display()
    );
    bytes
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// texmex `.fvecs`: rows of (i32 d, d × f32). Returns (d, row-major data).
pub fn read_fvecs(path: &Path) -> (usize, Vec<f32>) {
    let raw = read_i32s(path);
    let d = raw[0] as usize;
    assert!(
        raw.len().is_multiple_of(d + 1),
        "{}: bad fvecs",
        path.display()
    );
    let mut out = Vec::with_capacity(raw.len() / (d + 1) * d);
    for row in raw.chunks_exact(d + 1) {
        assert_eq!(row[0] as usize, d, "{}: ragged fvecs", path.display());
        out.extend(row[1..].iter().map(|&x| f32::from_bits(x as u32)));
    }
    (d, out)
}

/// texmex `.ivecs`: rows of (i32 k, k × i32).
pub fn read_ivecs(path: &Path) -> Vec<Vec<u32>> {
    let raw = read_i32s(path);
    let k = raw[0] as usize;
    assert!(
        raw.len().is_multiple_of(k + 1),
        "{}: bad ivecs",
        path.display()
    );
    raw.chunks_exact(k + 1)
        .map(|row| row[1..].iter().map(|&x| x as u32).collect())
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
    let dir = minilm_dir();
    assert!(
        dir.is_dir(),
        "data set directory {} is missing: the recall test needs debian-minilm-384 \
         (base.fvecs, queries.fvecs, groundtruth.ivecs) in a `shared/data/` folder beside the \
         repository clone",
        dir.display()
    );
    let (dim, base) = read_fvecs(&dir.join("base.fvecs"));
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
    let mut hits = 0usize;
    for (f, g) in found.iter().zip(gt) {
        let g = &g[..10];
        hits += f.iter().take(10).filter(|id| g.contains(id)).count();
    }
    hits as f64 / (10 * found.len()) as f64
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

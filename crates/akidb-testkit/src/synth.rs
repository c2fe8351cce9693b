//! Seeded synthetic vectors at any scale, with exact ground truth: the data of the scale
//! benchmarks (a million vectors and more) that no file in `../shared/data` holds.
//!
//! A Gaussian mixture on the unit sphere: `families` family centres drawn from N(0, I) and
//! normalised, `clusters` centres drawn around them (`family_spread` per coordinate, so sibling
//! clusters overlap); base vector `i` is `normalise(centre[z_i] + spread · N(0, I) + Σ_j t_j ·
//! basis[z_i][j])` with `t_j ~ N(0, manifold_spread²)`, `z_i`
//! uniform over the centres, plus a move along a few directions of the cluster's own (low-
//! dimensional structure, as real embeddings have); queries come from the same mixture through
//! another stream, so they are not base members. The default shape (`SHAPE`, `MANIFOLD`) makes a
//! partitioned scan about as hard as on sentence embeddings.
//!
//! Every number is a pure function of `(seed, stream, row, lane)` (splitmix64, then Box–Muller),
//! so any row is generated alone, in any order, on any thread, and the same parameters always
//! give the same bytes: a benchmark never needs the base stored, and a data set written with
//! [`Synth::write_texmex`] is the one a later run regenerates. Ground truth is brute force in
//! chunks over all cores ([`Synth::ground_truth`]), by inner product, which on these unit
//! vectors orders exactly as cosine and as L2.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::io::Write;
use std::path::Path;

/// Streams of the generator: one per kind of draw.
const CENTRES: u64 = 1;
const BASE: u64 = 2;
const QUERIES: u64 = 3;
const FAMILIES: u64 = 4;
const BASES: u64 = 5;

/// The default shape, in units of `1/√dim`: isotropic noise 0.3, 10 clusters per family,
/// family noise 0.5, and 32 directions of each cluster's own at 0.4 each (absolute). Picked so
/// that a partitioned scan of it is about as hard as of the minilm sentence embeddings: the
/// nearest 1, 4 and 16 of √n partitions hold 0.55, 0.83 and 0.95 of the true top-10 at 100,000
/// vectors of 100 clusters (minilm: 0.60, 0.82, 0.93), with a mean top-1 cosine of 0.61 (minilm:
/// 0.76). BENCHMARKS.md "Data for scale" has the search that led here.
const SHAPE: (f32, usize, f32) = (0.3, 10, 0.5);
const MANIFOLD: (usize, f32) = (32, 0.4);

/// Base rows generated and scanned at a time by [`Synth::ground_truth`] (25 MB at 384-d).
const GT_CHUNK: usize = 16_384;

/// The parameters of a synthetic data set; equal parameters give equal data.
#[derive(Debug, Clone, PartialEq)]
pub struct Synth {
    pub dim: usize,
    pub clusters: usize,
    pub seed: u64,
    /// Standard deviation of the noise per coordinate, relative to unit centres.
    pub spread: f32,
    /// Centres are drawn around this many family centres, so that clusters overlap.
    pub families: usize,
    /// Standard deviation of a centre around its family, per coordinate.
    pub family_spread: f32,
    /// Dimensions of each cluster's own subspace (0: none), along which its vectors also vary,
    /// by `manifold_spread` per direction: low-dimensional structure, as real embeddings have.
    pub manifold_dim: usize,
    pub manifold_spread: f32,
    centres: Vec<f32>,
    /// `manifold_dim` directions per cluster, each of length about 1.
    bases: Vec<f32>,
}

impl Synth {
    /// A mixture of `clusters` centres in `dim` dimensions with the default shape (see
    /// [`Synth::shaped`] and `SHAPE`).
    pub fn new(dim: usize, clusters: usize, seed: u64) -> Synth {
        let unit = 1.0 / (dim as f32).sqrt();
        let families = (clusters / SHAPE.1).max(1);
        Synth::shaped(
            dim,
            clusters,
            seed,
            SHAPE.0 * unit,
            families,
            SHAPE.2 * unit,
        )
        .with_manifold(MANIFOLD.0, MANIFOLD.1)
    }

    /// A mixture of `clusters` centres, each drawn around one of `families` family centres
    /// (noise `family_spread` per coordinate, so sibling clusters overlap), and vectors drawn
    /// around their centre with noise `spread` per coordinate.
    pub fn shaped(
        dim: usize,
        clusters: usize,
        seed: u64,
        spread: f32,
        families: usize,
        family_spread: f32,
    ) -> Synth {
        assert!(
            dim > 0 && clusters > 0 && families > 0,
            "dim, clusters and families must be at least 1"
        );
        let mut roots = Vec::with_capacity(families * dim);
        for f in 0..families {
            let start = roots.len();
            roots.extend((0..dim).map(|lane| gaussian(seed, FAMILIES, f as u64, lane as u64)));
            normalise(&mut roots[start..]);
        }
        let mut centres = Vec::with_capacity(clusters * dim);
        for c in 0..clusters {
            let f = c % families;
            let root = &roots[f * dim..(f + 1) * dim];
            let start = centres.len();
            centres.extend((0..dim).map(|lane| {
                root[lane] + family_spread * gaussian(seed, CENTRES, c as u64, lane as u64)
            }));
            normalise(&mut centres[start..]);
        }
        Synth {
            dim,
            clusters,
            seed,
            spread,
            families,
            family_spread,
            manifold_dim: 0,
            manifold_spread: 0.0,
            centres,
            bases: Vec::new(),
        }
    }

    /// The same mixture with each cluster also spread along `manifold_dim` directions of its
    /// own, by `manifold_spread` per direction.
    pub fn with_manifold(mut self, manifold_dim: usize, manifold_spread: f32) -> Synth {
        let unit = 1.0 / (self.dim as f32).sqrt();
        self.bases = (0..self.clusters * manifold_dim)
            .flat_map(|b| {
                (0..self.dim)
                    .map(move |lane| unit * gaussian(self.seed, BASES, b as u64, lane as u64))
            })
            .collect();
        self.manifold_dim = manifold_dim;
        self.manifold_spread = manifold_spread;
        self
    }

    /// Base vector `i` (unit length).
    pub fn base(&self, i: usize) -> Vec<f32> {
        self.row(BASE, i as u64)
    }

    /// Query `j` (unit length; not a base vector).
    pub fn query(&self, j: usize) -> Vec<f32> {
        self.row(QUERIES, j as u64)
    }

    /// Base vectors `range` as one row-major buffer.
    pub fn base_rows(&self, range: std::ops::Range<usize>) -> Vec<f32> {
        let mut out = Vec::with_capacity(range.len() * self.dim);
        for i in range {
            out.extend(self.base(i));
        }
        out
    }

    fn row(&self, stream: u64, row: u64) -> Vec<f32> {
        let d = self.dim as u64;
        let z = (uniform_u64(self.seed, stream, row, d) % self.clusters as u64) as usize;
        let centre = &self.centres[z * self.dim..(z + 1) * self.dim];
        let mut v: Vec<f32> = centre
            .iter()
            .enumerate()
            .map(|(lane, c)| c + self.spread * gaussian(self.seed, stream, row, lane as u64))
            .collect();
        let r = self.manifold_dim;
        for j in 0..r {
            let t = self.manifold_spread * gaussian(self.seed, stream, row, d + 1 + j as u64);
            let basis = &self.bases[(z * r + j) * self.dim..(z * r + j + 1) * self.dim];
            v.iter_mut().zip(basis).for_each(|(x, b)| *x += t * b);
        }
        normalise(&mut v);
        v
    }

    /// The exact `k` nearest base vectors of `0..n` (by inner product, highest first, ties to
    /// the lower id) of each query, with their scores; `threads` scan query blocks in
    /// parallel while each chunk of base rows is generated once.
    pub fn ground_truth(
        &self,
        n: usize,
        queries: &[Vec<f32>],
        k: usize,
        threads: usize,
    ) -> Vec<Vec<(u32, f32)>> {
        let mut heaps: Vec<BinaryHeap<Hit>> = queries.iter().map(|_| BinaryHeap::new()).collect();
        let per_thread = queries.len().div_ceil(threads.max(1)).max(1);
        let mut start = 0;
        while start < n {
            let end = (start + GT_CHUNK).min(n);
            let chunk = self.chunk_parallel(start..end, threads);
            std::thread::scope(|scope| {
                for (qs, hs) in queries.chunks(per_thread).zip(heaps.chunks_mut(per_thread)) {
                    let chunk = &chunk;
                    scope.spawn(move || {
                        for (q, heap) in qs.iter().zip(hs) {
                            for (r, row) in chunk.chunks_exact(self.dim).enumerate() {
                                offer(heap, k, Hit((start + r) as u32, dot(q, row)));
                            }
                        }
                    });
                }
            });
            start = end;
        }
        heaps
            .into_iter()
            .map(|h| {
                h.into_sorted_vec()
                    .into_iter()
                    .map(|Hit(id, s)| (id, s))
                    .collect()
            })
            .collect()
    }

    fn chunk_parallel(&self, range: std::ops::Range<usize>, threads: usize) -> Vec<f32> {
        let threads = threads.max(1);
        let per = range.len().div_ceil(threads).max(1);
        let parts: Vec<Vec<f32>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let s = (range.start + t * per).min(range.end);
                    let e = (s + per).min(range.end);
                    scope.spawn(move || self.base_rows(s..e))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("generator thread"))
                .collect()
        });
        parts.concat()
    }

    /// Writes `n` base vectors, `queries` queries and their exact top-`k` as a texmex folder
    /// (`base.fvecs`, `queries.fvecs`, `groundtruth.ivecs`, `groundtruth-scores.fvecs`), the
    /// layout of `../shared/data` that the load tool and the recall harness read.
    pub fn write_texmex(
        &self,
        dir: &Path,
        n: usize,
        queries: usize,
        k: usize,
        threads: usize,
    ) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut base = std::io::BufWriter::new(std::fs::File::create(dir.join("base.fvecs"))?);
        let mut start = 0;
        while start < n {
            let end = (start + GT_CHUNK).min(n);
            for row in self
                .chunk_parallel(start..end, threads)
                .chunks_exact(self.dim)
            {
                write_row(&mut base, row.iter().map(|x| x.to_le_bytes()))?;
            }
            start = end;
        }
        base.flush()?;
        let qs: Vec<Vec<f32>> = (0..queries).map(|j| self.query(j)).collect();
        let mut qf = std::io::BufWriter::new(std::fs::File::create(dir.join("queries.fvecs"))?);
        for q in &qs {
            write_row(&mut qf, q.iter().map(|x| x.to_le_bytes()))?;
        }
        qf.flush()?;
        let truth = self.ground_truth(n, &qs, k, threads);
        let mut ids =
            std::io::BufWriter::new(std::fs::File::create(dir.join("groundtruth.ivecs"))?);
        let mut scores =
            std::io::BufWriter::new(std::fs::File::create(dir.join("groundtruth-scores.fvecs"))?);
        for row in &truth {
            write_row(
                &mut ids,
                row.iter().map(|(id, _)| (*id as i32).to_le_bytes()),
            )?;
            write_row(&mut scores, row.iter().map(|(_, s)| s.to_le_bytes()))?;
        }
        ids.flush()?;
        scores.flush()
    }
}

fn write_row(
    out: &mut impl Write,
    words: impl ExactSizeIterator<Item = [u8; 4]>,
) -> std::io::Result<()> {
    out.write_all(&(words.len() as i32).to_le_bytes())?;
    for w in words {
        out.write_all(&w)?;
    }
    Ok(())
}

/// A candidate neighbour; the heap keeps the worst of the best `k` on top.
#[derive(Clone, Copy)]
struct Hit(u32, f32);

impl Ord for Hit {
    /// Better = higher score, then lower id; "greater" here means worse, so the max-heap's top
    /// is the one to evict.
    fn cmp(&self, other: &Hit) -> Ordering {
        other.1.total_cmp(&self.1).then(self.0.cmp(&other.0))
    }
}
impl PartialOrd for Hit {
    fn partial_cmp(&self, other: &Hit) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Hit {
    fn eq(&self, other: &Hit) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Hit {}

fn offer(heap: &mut BinaryHeap<Hit>, k: usize, hit: Hit) {
    if heap.len() < k {
        heap.push(hit);
    } else if let Some(mut worst) = heap.peek_mut()
        && hit < *worst
    {
        *worst = hit;
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent sums so the compiler vectorises the loop.
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// splitmix64 of the draw's coordinates: a counter-based generator, so draws need no state.
fn uniform_u64(seed: u64, stream: u64, row: u64, lane: u64) -> u64 {
    let mut z = seed
        ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03)
        ^ row.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ lane.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    for _ in 0..2 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
    }
    z
}

/// A standard normal draw (Box–Muller over two uniforms of the same coordinates).
fn gaussian(seed: u64, stream: u64, row: u64, lane: u64) -> f32 {
    let bits = uniform_u64(seed, stream, row, lane);
    // Two 32-bit uniforms in (0, 1].
    let u1 = ((bits >> 32) as f64 + 1.0) / 4_294_967_296.0;
    let u2 = ((bits & 0xFFFF_FFFF) as f64 + 1.0) / 4_294_967_296.0;
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_parameters_same_data_and_rows_stand_alone() {
        let a = Synth::new(32, 10, 7);
        let b = Synth::new(32, 10, 7);
        assert_eq!(a, b);
        assert_eq!(
            a.base_rows(5..9),
            [a.base(5), a.base(6), a.base(7), a.base(8)].concat()
        );
        assert_ne!(a.base(3), Synth::new(32, 10, 8).base(3));
        assert_ne!(a.base(3), a.query(3), "queries are another stream");
        for v in [a.base(0), a.query(0)] {
            let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn draws_look_standard_normal() {
        let xs: Vec<f64> = (0..20_000).map(|i| gaussian(1, 9, i, 0) as f64).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.03, "{mean}");
        assert!((var - 1.0).abs() < 0.05, "{var}");
    }

    #[test]
    fn ground_truth_is_the_naive_top_k_on_any_thread_count() {
        let s = Synth::new(24, 20, 3);
        let n = 40_000; // more than two chunks
        let queries: Vec<Vec<f32>> = (0..12).map(|j| s.query(j)).collect();
        let base = s.base_rows(0..n);
        for threads in [1, 3] {
            let truth = s.ground_truth(n, &queries, 10, threads);
            for (q, got) in queries.iter().zip(&truth) {
                let mut all: Vec<(u32, f32)> = base
                    .chunks_exact(24)
                    .enumerate()
                    .map(|(i, row)| (i as u32, dot(q, row)))
                    .collect();
                all.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
                assert_eq!(got, &all[..10].to_vec());
            }
        }
    }

    #[test]
    fn neighbours_are_close_like_sentence_embeddings() {
        let s = Synth::new(384, 100, 11);
        let queries: Vec<Vec<f32>> = (0..20).map(|j| s.query(j)).collect();
        let truth = s.ground_truth(5_000, &queries, 1, 2);
        let mean_top1 = truth.iter().map(|t| t[0].1).sum::<f32>() / truth.len() as f32;
        assert!(
            (0.4..0.95).contains(&mean_top1),
            "mean top-1 cosine {mean_top1}"
        );
    }

    #[test]
    fn texmex_files_read_back() {
        let dir = std::env::temp_dir().join(format!("akidb-synth-{}", std::process::id()));
        let s = Synth::new(8, 4, 5);
        s.write_texmex(&dir, 100, 3, 5, 2).unwrap();
        let (d, base) = crate::read_fvecs(&dir.join("base.fvecs")).unwrap();
        assert_eq!((d, base.len()), (8, 100));
        assert_eq!(base[42], s.base(42));
        let (k, ids) = crate::read_ivecs(&dir.join("groundtruth.ivecs")).unwrap();
        assert_eq!((k, ids.len()), (5, 3));
        let truth = s.ground_truth(100, &[s.query(1)], 5, 1);
        assert_eq!(
            ids[1],
            truth[0]
                .iter()
                .map(|(id, _)| *id as i32)
                .collect::<Vec<_>>()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

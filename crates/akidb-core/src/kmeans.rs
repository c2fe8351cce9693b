//! k-means: the partitions of a partitioned (IVF) layout. A collection's vectors are grouped
//! around `k` centroids; a query ranks the centroids ([`Centroids::rank`]) and reads only the
//! nearest groups.
//!
//! Lloyd's algorithm, seeded by k-means++ (each initial centroid a row drawn with probability
//! proportional to its squared distance from those already chosen, from a seeded generator); each iteration assigns every row to its nearest centroid (rows split over
//! `threads`, each row independent) and recomputes the centroids as means (summed in f64, in
//! row order, so the result does not depend on the thread count); an empty cluster takes half
//! of the largest one (a copy of its centroid, nudged apart). For cosine the vectors are unit
//! length and the centroids are normalised after each update (spherical k-means), so "nearest"
//! is the largest inner product; for L2 and dot it is the smallest squared distance.
//!
//! Training on a sample is the caller's choice (faiss uses at most 256 rows per centroid).

use crate::distance;
use crate::metric::Metric;

/// The settings of one training run.
#[derive(Debug, Clone, Copy)]
pub struct KMeans {
    pub k: usize,
    pub iterations: usize,
    pub seed: u64,
    pub threads: usize,
}

/// Trained centroids, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Centroids {
    dim: usize,
    spherical: bool,
    data: Vec<f32>,
}

impl KMeans {
    /// Clusters the rows of `data` (`dim` floats each) for `metric`; `k` is capped at the
    /// number of rows.
    pub fn train(&self, data: &[f32], dim: usize, metric: Metric) -> Centroids {
        assert!(
            dim > 0 && data.len().is_multiple_of(dim),
            "kmeans: rows of {dim} floats expected"
        );
        let n = data.len() / dim;
        let k = self.k.min(n).max(1);
        let spherical = metric == Metric::Cosine;
        let mut c = Centroids {
            dim,
            spherical,
            data: Vec::with_capacity(k * dim),
        };
        if n == 0 {
            c.data.resize(dim, 0.0);
            return c;
        }
        for row in plus_plus(data, dim, k, self.seed, spherical) {
            c.data.extend_from_slice(&data[row * dim..(row + 1) * dim]);
        }
        for _ in 0..self.iterations {
            let assigned = c.assign(data, self.threads);
            if !c.update(data, &assigned) {
                break; // no centroid moved
            }
        }
        c
    }
}

impl Centroids {
    /// Centroids stored earlier (`data` as [`Centroids::as_slice`] gave it) for `metric`; None
    /// when `data` is not a whole, non-empty number of rows.
    pub fn from_rows(dim: usize, metric: Metric, data: Vec<f32>) -> Option<Centroids> {
        (dim > 0 && !data.is_empty() && data.len().is_multiple_of(dim)).then(|| Centroids {
            dim,
            spherical: metric == Metric::Cosine,
            data,
        })
    }

    /// The centroids, row-major.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    pub fn k(&self) -> usize {
        self.data.len() / self.dim
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn centroid(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// The distance this clustering orders by (lower is nearer).
    fn distance(&self, v: &[f32], i: usize) -> f32 {
        let c = self.centroid(i);
        if self.spherical {
            -distance::dot(v, c)
        } else {
            distance::l2_squared(v, c)
        }
    }

    /// The nearest centroid of `v` (ties to the lower index).
    pub fn nearest(&self, v: &[f32]) -> u32 {
        let mut best = (0u32, f32::INFINITY);
        for i in 0..self.k() {
            let d = self.distance(v, i);
            if d < best.1 {
                best = (i as u32, d);
            }
        }
        best.0
    }

    /// The `n` nearest centroids of `q`, nearest first, with their distances.
    pub fn rank(&self, q: &[f32], n: usize) -> Vec<(u32, f32)> {
        let mut all: Vec<(u32, f32)> = (0..self.k())
            .map(|i| (i as u32, self.distance(q, i)))
            .collect();
        all.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        all.truncate(n);
        all
    }

    /// The nearest centroid of every row of `data`, rows split over `threads`.
    pub fn assign(&self, data: &[f32], threads: usize) -> Vec<u32> {
        let n = data.len() / self.dim;
        let per = n.div_ceil(threads.max(1)).max(1);
        std::thread::scope(|scope| {
            let parts: Vec<_> = data
                .chunks(per * self.dim)
                .map(|rows| {
                    scope.spawn(move || {
                        rows.chunks_exact(self.dim)
                            .map(|v| self.nearest(v))
                            .collect::<Vec<u32>>()
                    })
                })
                .collect();
            parts
                .into_iter()
                .flat_map(|p| p.join().expect("k-means thread"))
                .collect()
        })
    }

    /// Moves each centroid to the mean of its rows; returns whether any moved.
    fn update(&mut self, data: &[f32], assigned: &[u32]) -> bool {
        let (k, dim) = (self.k(), self.dim);
        let mut sums = vec![0.0f64; k * dim];
        let mut counts = vec![0usize; k];
        for (v, &a) in data.chunks_exact(dim).zip(assigned) {
            let a = a as usize;
            counts[a] += 1;
            for (s, x) in sums[a * dim..(a + 1) * dim].iter_mut().zip(v) {
                *s += *x as f64;
            }
        }
        let mut next: Vec<f32> = Vec::with_capacity(k * dim);
        for i in 0..k {
            let sum = &sums[i * dim..(i + 1) * dim];
            match counts[i] {
                0 => next.extend_from_slice(self.centroid(i)),
                n => next.extend(sum.iter().map(|s| (s / n as f64) as f32)),
            }
        }
        // Empty clusters take half of the largest: a copy of its centroid, both nudged apart.
        let empties: Vec<usize> = (0..k).filter(|&i| counts[i] == 0).collect();
        for empty in empties {
            let largest = (0..k)
                .max_by_key(|&i| (counts[i], std::cmp::Reverse(i)))
                .expect("k is at least 1");
            if counts[largest] < 2 {
                break;
            }
            counts[largest] /= 2;
            counts[empty] = counts[largest];
            for d in 0..dim {
                let x = next[largest * dim + d];
                let nudge = if d % 2 == 0 { 1.0 + 1e-3 } else { 1.0 - 1e-3 };
                next[empty * dim + d] = x * nudge;
                next[largest * dim + d] = x / nudge;
            }
        }
        if self.spherical {
            next.chunks_exact_mut(dim).for_each(|c| {
                distance::normalize(c);
            });
        }
        let moved = next != self.data;
        self.data = next;
        moved
    }
}

/// k-means++ seeding: the first centre a seeded pick, each next one a row drawn with
/// probability proportional to its squared distance from the nearest centre so far (so two
/// centres rarely start in one cluster). Duplicated rows can leave fewer distinct candidates
/// than `k`; the last centre is then repeated and the update splits it.
fn plus_plus(data: &[f32], dim: usize, k: usize, seed: u64, spherical: bool) -> Vec<usize> {
    let n = data.len() / dim;
    let row = |i: usize| &data[i * dim..(i + 1) * dim];
    let gap = |a: &[f32], b: &[f32]| -> f64 {
        if spherical {
            (1.0 - distance::dot(a, b)).max(0.0) as f64
        } else {
            distance::l2_squared(a, b) as f64
        }
    };
    let mut s = seed ^ 0x9E37_79B9_7F4A_7C15 | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut chosen = vec![(next() % n as u64) as usize];
    let mut d2: Vec<f64> = (0..n).map(|i| gap(row(i), row(chosen[0]))).collect();
    while chosen.len() < k {
        let total: f64 = d2.iter().sum();
        if total <= 0.0 {
            chosen.push(*chosen.last().expect("one centre at least"));
            continue;
        }
        let target = (next() >> 11) as f64 / (1u64 << 53) as f64 * total;
        let mut acc = 0.0;
        let pick = d2
            .iter()
            .position(|d| {
                acc += d;
                acc > target
            })
            .unwrap_or(n - 1);
        chosen.push(pick);
        for (i, d) in d2.iter_mut().enumerate() {
            *d = d.min(gap(row(i), row(pick)));
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `per` points around each of `centres` unit centres, well apart; returns rows and labels.
    fn blobs(centres: usize, per: usize, dim: usize) -> (Vec<f32>, Vec<usize>) {
        let seeds = crate::index::tests::rand_vecs(centres, dim, 11);
        let noise = crate::index::tests::rand_vecs(centres * per, dim, 12);
        let mut data = Vec::new();
        let mut labels = Vec::new();
        for (i, n) in noise.iter().enumerate() {
            let c = &seeds[i % centres];
            let mut v: Vec<f32> = c.iter().zip(n).map(|(c, n)| c + 0.05 * n).collect();
            distance::normalize(&mut v);
            data.extend(v);
            labels.push(i % centres);
        }
        (data, labels)
    }

    #[test]
    fn well_separated_clusters_are_found_exactly() {
        let (data, labels) = blobs(12, 40, 32);
        for (metric, seed) in [Metric::Cosine, Metric::L2]
            .into_iter()
            .flat_map(|m| (1..=8).map(move |s| (m, s)))
        {
            let km = KMeans {
                k: 12,
                iterations: 20,
                seed,
                threads: 2,
            };
            let c = km.train(&data, 32, metric);
            let assigned = c.assign(&data, 2);
            // Each found cluster holds exactly one true cluster, and each true one is found.
            let mut map = std::collections::HashMap::new();
            for (a, l) in assigned.iter().zip(&labels) {
                assert_eq!(
                    *map.entry(*a).or_insert(*l),
                    *l,
                    "{metric}: a cluster mixes labels"
                );
            }
            assert_eq!(map.len(), 12, "{metric} seed {seed}");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_centroids_on_any_thread_count() {
        let (data, _) = blobs(6, 50, 16);
        let train = |threads| {
            KMeans {
                k: 8,
                iterations: 10,
                seed: 9,
                threads,
            }
            .train(&data, 16, Metric::Cosine)
        };
        assert_eq!(train(1), train(3));
        let other = KMeans {
            k: 8,
            iterations: 10,
            seed: 10,
            threads: 1,
        };
        assert_eq!(train(1).k(), other.train(&data, 16, Metric::Cosine).k());
    }

    #[test]
    fn small_inputs_and_ranking() {
        let data = [1.0f32, 0.0, 0.0, 1.0];
        let c = KMeans {
            k: 5,
            iterations: 3,
            seed: 1,
            threads: 1,
        }
        .train(&data, 2, Metric::L2);
        assert_eq!(c.k(), 2, "k is capped at the rows");
        let r = c.rank(&[0.9, 0.1], 2);
        assert_eq!(r.len(), 2);
        assert!(r[0].1 <= r[1].1);
        assert_eq!(c.centroid(r[0].0 as usize), &[1.0, 0.0]);
        let empty = KMeans {
            k: 3,
            iterations: 3,
            seed: 1,
            threads: 1,
        }
        .train(&[], 4, Metric::Dot);
        assert_eq!(empty.k(), 1);
    }
}

//! Criterion benchmarks: distance kernels, search (brute force vs HNSW) on the real minilm set
//! and on seeded random data, and insert throughput.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-core cargo bench -p akidb-core --bench index
//! ```
//!
//! Search benchmarks time a whole pass over a fixed query batch per iteration and report
//! throughput in queries (elements) per second. Recall@10 for every ef is printed once before
//! the timed loops. 100k random vectors are skipped (not measured): 10k uniform random 384-d
//! vectors take ≈ 5 s to build single-threaded and the cost grows faster than linearly, so
//! 100k extrapolates to more than the 60 s budget.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Duration;

use akidb_core::distance::{self, available_kernels};
use akidb_core::{HnswParams, Metric, SearchOptions, VectorIndex};
use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};

fn kernels(c: &mut Criterion) {
    let mut g = c.benchmark_group("distance");
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(800));
    for dim in [384usize, 1536] {
        let a = common::random_vectors(1, dim, 1);
        let b = common::random_vectors(1, dim, 2);
        g.throughput(Throughput::Elements(dim as u64));
        // The dispatched public API, per metric.
        for metric in [Metric::Cosine, Metric::Dot, Metric::L2] {
            g.bench_function(format!("{metric}/{dim}"), |bch| {
                bch.iter(|| distance::distance(metric, black_box(&a), black_box(&b)))
            });
        }
        // The same distance from an 8-bit code (a quarter of the bytes), with its bound.
        let sample = common::random_vectors(256, dim, 3);
        let q8 = akidb_core::sq8::Sq8::train(dim, sample.chunks_exact(dim));
        let mut code = vec![0u8; dim];
        let meta = q8.encode(&b, &mut code);
        let prepared = q8.query(Metric::Dot, &a);
        g.bench_function(format!("sq8-dot/{dim}"), |bch| {
            bch.iter(|| prepared.distance(black_box(&code), black_box(meta)))
        });
        // Each instruction-set variant this CPU supports (dot).
        for k in available_kernels() {
            g.bench_function(format!("dot-{}/{dim}", k.name()), |bch| {
                bch.iter(|| k.dot(black_box(&a), black_box(&b)))
            });
        }
    }
    g.finish();
}

fn recall_line(
    idx: &VectorIndex,
    queries: &[f32],
    dim: usize,
    gt: &[Vec<u32>],
    opts: &SearchOptions<'_>,
) -> f64 {
    let found: Vec<Vec<u32>> = queries
        .chunks_exact(dim)
        .map(|q| idx.search(q, 10, opts).iter().map(|n| n.slot).collect())
        .collect();
    common::recall_at_10(&found, gt)
}

fn search_minilm(c: &mut Criterion) {
    let ds = common::load_minilm();
    let mut idx = VectorIndex::new(ds.dim, Metric::Cosine, HnswParams::default());
    for i in 0..ds.n_base() {
        idx.push(ds.base_vec(i));
    }
    let t = std::time::Instant::now();
    idx.index_pending(usize::MAX);
    println!(
        "minilm: built 20,000 × 384 in {:.2} s (M=16, ef_construction=200), kernel {}",
        t.elapsed().as_secs_f64(),
        distance::kernels().name()
    );
    let efs = [10usize, 20, 40, 80, 160];
    for ef in efs {
        let opts = SearchOptions {
            ef: Some(ef),
            ..Default::default()
        };
        println!(
            "minilm: ef {ef:>3}: recall@10 = {:.4}",
            recall_line(&idx, &ds.queries, ds.dim, &ds.gt, &opts)
        );
    }
    let mut g = c.benchmark_group("search_minilm_20k");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    // Brute force: 100 queries per iteration.
    let exact = SearchOptions {
        exact: true,
        ..Default::default()
    };
    let q100 = &ds.queries[..100 * ds.dim];
    g.throughput(Throughput::Elements(100));
    g.bench_function("brute_force", |b| {
        b.iter(|| {
            for q in q100.chunks_exact(ds.dim) {
                black_box(idx.search(q, 10, &exact));
            }
        })
    });
    g.throughput(Throughput::Elements(ds.n_queries() as u64));
    for ef in efs {
        let opts = SearchOptions {
            ef: Some(ef),
            ..Default::default()
        };
        g.bench_function(format!("hnsw_ef{ef}"), |b| {
            b.iter(|| {
                for q in ds.queries.chunks_exact(ds.dim) {
                    black_box(idx.search(q, 10, &opts));
                }
            })
        });
    }
    g.finish();
}

fn search_random(c: &mut Criterion) {
    let dim = 384;
    let mut queries = common::random_vectors(200, dim, 7);
    common::normalize_rows(&mut queries, dim);
    // 100k builds in about a minute and a half on 2 cores; AKIDB_BENCH_SKIP_100K=1 leaves it out.
    let sizes: &[usize] = if std::env::var_os("AKIDB_BENCH_SKIP_100K").is_some() {
        &[1_000, 10_000]
    } else {
        &[1_000, 10_000, 100_000]
    };
    for &n in sizes {
        let mut data = common::random_vectors(n, dim, 100 + n as u64);
        common::normalize_rows(&mut data, dim);
        let mut idx = VectorIndex::new(dim, Metric::Cosine, HnswParams::default());
        idx.set_brute_force_threshold(0); // always the graph when not `exact`
        for row in data.chunks_exact(dim) {
            idx.push(row);
        }
        let t = std::time::Instant::now();
        idx.index_pending(usize::MAX);
        println!(
            "random {n} × {dim}: built in {:.2} s",
            t.elapsed().as_secs_f64()
        );
        let exact = SearchOptions {
            exact: true,
            ..Default::default()
        };
        let gt: Vec<Vec<u32>> = queries
            .chunks_exact(dim)
            .map(|q| idx.search(q, 10, &exact).iter().map(|n| n.slot).collect())
            .collect();
        let def = SearchOptions::default();
        println!(
            "random {n} × {dim}: recall@10 at default ef {} = {:.4} (uniform random 384-d is a hard case for any graph index)",
            idx.params().ef_search,
            recall_line(&idx, &queries, dim, &gt, &def)
        );
        let mut g = c.benchmark_group(format!("search_random_{n}"));
        g.sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(2))
            .throughput(Throughput::Elements(200));
        for (name, opts) in [("brute_force", exact), ("hnsw_default_ef", def)] {
            g.bench_function(name, |b| {
                b.iter(|| {
                    for q in queries.chunks_exact(dim) {
                        black_box(idx.search(q, 10, &opts));
                    }
                })
            });
        }
        g.finish();
    }
}

fn insert(c: &mut Criterion) {
    let ds = common::load_minilm();
    let n = 10_000;
    let mut g = c.benchmark_group("insert");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Elements(n as u64));
    g.bench_function("index_pending_minilm_10k", |b| {
        b.iter_batched(
            || {
                let mut idx = VectorIndex::new(ds.dim, Metric::Cosine, HnswParams::default());
                for i in 0..n {
                    idx.push(ds.base_vec(i));
                }
                idx
            },
            |mut idx| {
                assert_eq!(idx.index_pending(usize::MAX), n);
                idx
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// k-means on the 20,000 minilm vectors: training time per k, and how many rows a query's
/// nearest centroids hold against how many of its true top-10 they contain (the IVF trade-off).
fn kmeans(c: &mut Criterion) {
    use akidb_core::kmeans::KMeans;
    let ds = common::load_minilm();
    let base: Vec<f32> = (0..ds.n_base())
        .flat_map(|i| ds.base_vec(i).to_vec())
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut g = c.benchmark_group("kmeans_minilm_20k");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(5));
    for k in [64usize, 141] {
        let km = KMeans {
            k,
            iterations: 10,
            seed: 1,
            threads,
        };
        let centroids = km.train(&base, ds.dim, Metric::Cosine);
        let assigned = centroids.assign(&base, threads);
        for nprobe in [1usize, 4, 8, 16] {
            let (mut rows, mut hits) = (0usize, 0usize);
            for (q, gt) in ds.queries.chunks_exact(ds.dim).zip(&ds.gt) {
                let probed: Vec<u32> = centroids.rank(q, nprobe).iter().map(|r| r.0).collect();
                rows += assigned.iter().filter(|a| probed.contains(a)).count();
                hits += gt[..10]
                    .iter()
                    .filter(|&&id| probed.contains(&assigned[id as usize]))
                    .count();
            }
            let nq = ds.gt.len();
            println!(
                "kmeans k {k}, nprobe {nprobe:>2}: {:.1}% of rows read, recall@10 ceiling {:.4}",
                100.0 * rows as f64 / (nq * ds.n_base()) as f64,
                hits as f64 / (nq * 10) as f64
            );
        }
        g.bench_function(format!("train_k{k}_10iter_{threads}threads"), |b| {
            b.iter(|| km.train(black_box(&base), ds.dim, Metric::Cosine))
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    kernels,
    search_minilm,
    search_random,
    insert,
    kmeans
);
criterion_main!(benches);

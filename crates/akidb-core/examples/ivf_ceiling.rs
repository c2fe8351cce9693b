//! How much of a collection a partitioned (IVF) scan must read to keep the true top-10 in
//! reach, on any texmex folder (`../shared/data/debian-minilm-384`, or one written by
//! `akidb-synth`): spherical k-means on a sample, every base row assigned to its nearest
//! centroid, then for each query the share of rows in its `nprobe` nearest partitions and the
//! share of its true top-10 inside them (the best recall@10 such a scan can reach).
//!
//! ```text
//! cargo run --release -p akidb-core --example ivf_ceiling -- DIR [K] [SAMPLE]
//! ```
//! K defaults to √n, SAMPLE (training rows) to 256 per centroid.

use std::path::PathBuf;
use std::time::Instant;

use akidb_core::Metric;
use akidb_core::kmeans::KMeans;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = PathBuf::from(args.first().expect("usage: ivf_ceiling DIR [K] [SAMPLE]"));
    let load = Instant::now();
    let (dim, base) = akidb_testkit::read_fvecs(&dir.join("base.fvecs")).expect("base.fvecs");
    let (_, queries) = akidb_testkit::read_fvecs(&dir.join("queries.fvecs")).expect("queries");
    let (_, gt) = akidb_testkit::read_ivecs(&dir.join("groundtruth.ivecs")).expect("gt");
    let n = base.len();
    let k: usize = args
        .get(1)
        .map_or((n as f64).sqrt() as usize, |a| a.parse().unwrap());
    let sample: usize = args.get(2).map_or(256 * k, |a| a.parse().unwrap()).min(n);
    let flat: Vec<f32> = base.iter().flatten().copied().collect();
    drop(base);
    println!(
        "{}: {n} × {dim} loaded in {:.1} s",
        dir.display(),
        load.elapsed().as_secs_f64()
    );
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    // Every (n / sample)-th row trains.
    let stride = n / sample.max(1);
    let training: Vec<f32> = flat
        .chunks_exact(dim)
        .step_by(stride.max(1))
        .take(sample)
        .flatten()
        .copied()
        .collect();
    let t = Instant::now();
    let centroids = KMeans {
        k,
        iterations: 10,
        seed: 1,
        threads,
    }
    .train(&training, dim, Metric::Cosine);
    let train_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let assigned = centroids.assign(&flat, threads);
    let assign_s = t.elapsed().as_secs_f64();
    let mut sizes = vec![0usize; centroids.k()];
    assigned.iter().for_each(|a| sizes[*a as usize] += 1);
    let largest = sizes.iter().max().copied().unwrap_or(0);
    println!(
        "k {k}: trained on {sample} rows in {train_s:.1} s, assigned {n} rows in {assign_s:.1} s \
         ({threads} threads); partition sizes mean {:.0}, largest {largest}",
        n as f64 / centroids.k() as f64
    );
    for nprobe in [1usize, 2, 4, 8, 16, 32, 64] {
        let (mut rows, mut hits) = (0usize, 0usize);
        for (q, truth) in queries.iter().zip(&gt) {
            let probed: Vec<u32> = centroids.rank(q, nprobe).iter().map(|r| r.0).collect();
            rows += probed.iter().map(|p| sizes[*p as usize]).sum::<usize>();
            hits += truth[..10]
                .iter()
                .filter(|&&id| probed.contains(&assigned[id as usize]))
                .count();
        }
        println!(
            "nprobe {nprobe:>2}: {:>5.2}% of rows read, recall@10 ceiling {:.4}",
            100.0 * rows as f64 / (queries.len() * n) as f64,
            hits as f64 / (queries.len() * 10) as f64
        );
    }
}

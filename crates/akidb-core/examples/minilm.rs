//! Measures build time, `index_pending` throughput, memory, and recall@10 / QPS per ef on the
//! debian-minilm-384 set (single thread, best of 3 passes over the 1,000 queries; env `PASSES`, `EFS=10,20`).
//! `DATA=DIR` reads another texmex folder (an `akidb-synth` one); `QUANTIZE=after` builds the
//! graph over f32 and then quantizes to 8-bit codes (a hot load), `QUANTIZE=before` quantizes
//! after the first 1,000 vectors and builds the rest over codes (an ingest); the full vectors
//! then live in a file read with pread, as the engine keeps them.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-core cargo run --release -p akidb-core --example minilm [-- M EF_C]
//! ```

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use akidb_core::index::FullVectors;
use akidb_core::{HnswParams, Metric, SearchOptions, VectorIndex};

/// Full vectors in a file, read with pread (the engine's `VectorFile`, minus the cleanup).
struct FileVectors(std::fs::File, usize);

impl FullVectors for FileVectors {
    fn append(&mut self, vectors: &[f32]) -> std::io::Result<()> {
        use std::io::Write;
        let bytes: Vec<u8> = vectors.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.0.write_all(&bytes)
    }

    fn read(&self, slot: u32, out: &mut [f32]) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let mut bytes = vec![0u8; self.1 * 4];
        self.0
            .read_exact_at(&mut bytes, slot as u64 * self.1 as u64 * 4)?;
        for (x, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
            *x = f32::from_le_bytes(b.try_into().unwrap());
        }
        Ok(())
    }
}

fn vector_file(dim: usize) -> Box<dyn FullVectors> {
    if std::env::var("IN_RAM").is_ok() {
        return Box::new(akidb_core::index::VectorsInRam::new(dim));
    }
    let path = std::env::temp_dir().join(format!("akidb-minilm-{}.f32", std::process::id()));
    let file = std::fs::File::options()
        .read(true)
        .append(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .unwrap();
    std::fs::remove_file(&path).unwrap(); // gone when the process ends
    Box::new(FileVectors(file, dim))
}

/// On-CPU time of this (main) thread from /proc/self/schedstat, in seconds: unlike wall time
/// it does not count time the thread was descheduled on a shared machine. NaN if unavailable.
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns * 1e-9)
}

fn main() {
    // Optional env: EFS=10,20,40 (which ef values), PASSES=3 (timed passes, best kept),
    // BUILD_THREADS=2 (threads planning insertions; default 1).
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let passes: usize = std::env::var("PASSES")
        .ok()
        .map_or(3, |p| p.parse().unwrap());
    let mut params = HnswParams::default();
    if let Some(&m) = args.first() {
        params.m = m;
    }
    if let Some(&efc) = args.get(1) {
        params.ef_construction = efc;
    }
    let ds = match std::env::var("DATA") {
        Ok(dir) => common::load_dir(std::path::Path::new(&dir)),
        Err(_) => common::load_minilm(),
    };
    let quantize = std::env::var("QUANTIZE").ok();
    println!(
        "kernel {}; M={} ef_construction={}",
        akidb_core::distance::kernels().name(),
        params.m,
        params.ef_construction
    );
    let mut idx = VectorIndex::new(ds.dim, Metric::Cosine, params);
    let threads: usize = std::env::var("BUILD_THREADS")
        .ok()
        .map_or(1, |t| t.parse().unwrap());
    idx.set_build_threads(threads);
    println!("build threads: {threads}");
    let t = Instant::now();
    let mut n = 0;
    if quantize.as_deref() == Some("before") {
        for i in 0..1_000 {
            idx.push(ds.base_vec(i));
        }
        n += idx.index_pending(usize::MAX);
        idx.quantize(vector_file(ds.dim)).unwrap();
    }
    for i in idx.len()..ds.n_base() {
        idx.push(ds.base_vec(i));
    }
    let push_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    n += idx.index_pending(usize::MAX);
    let build_s = t.elapsed().as_secs_f64();
    if quantize.as_deref() == Some("after") {
        let t = Instant::now();
        idx.quantize(vector_file(ds.dim)).unwrap();
        println!("quantized in {:.2} s", t.elapsed().as_secs_f64());
    }
    println!("quantization: {:?}", idx.quantization());
    println!(
        "push {n} vectors: {:.3} s; index_pending: {:.2} s = {:.0} vectors/s",
        push_s,
        build_s,
        n as f64 / build_s
    );
    let raw = ds.base.len() * 4;
    println!(
        "memory_bytes {} = {:.3} × raw vector bytes {}; level-0 links alone {} bytes",
        idx.memory_bytes(),
        idx.memory_bytes() as f64 / raw as f64,
        raw,
        n * (1 + 2 * idx.params().m) * 4
    );
    let nq = ds.n_queries();
    let exact_opts = SearchOptions {
        exact: true,
        ..Default::default()
    };
    let efs: Vec<Option<usize>> = match std::env::var("EFS") {
        Ok(list) => list
            .split(',')
            .map(|e| Some(e.trim().parse().unwrap()))
            .collect(),
        Err(_) => vec![
            None,
            Some(10),
            Some(16),
            Some(20),
            Some(24),
            Some(32),
            Some(40),
            Some(80),
            Some(160),
        ],
    };
    let mut rows: Vec<(String, Option<usize>, bool)> = efs
        .into_iter()
        .map(|ef| {
            (
                ef.map_or(format!("default({})", idx.params().ef_search), |e| {
                    e.to_string()
                }),
                ef,
                false,
            )
        })
        .collect();
    if std::env::var("EFS").is_err() {
        rows.push(("exact".into(), None, true));
    }
    for (label, ef, exact) in rows {
        let opts = if exact {
            exact_opts
        } else {
            SearchOptions {
                ef,
                ..Default::default()
            }
        };
        let found: Vec<Vec<u32>> = (0..nq)
            .map(|q| {
                idx.search(ds.query(q), 10, &opts)
                    .iter()
                    .map(|n| n.slot)
                    .collect()
            })
            .collect();
        let recall = common::recall_at_10(&found, &ds.gt);
        let mut best = f64::INFINITY;
        let mut best_cpu = f64::INFINITY;
        for _ in 0..passes {
            let c = cpu_seconds();
            let t = Instant::now();
            let mut sink = 0u32;
            for q in 0..nq {
                sink ^= idx.search(ds.query(q), 10, &opts)[0].slot;
            }
            std::hint::black_box(sink);
            best = best.min(t.elapsed().as_secs_f64());
            best_cpu = best_cpu.min(cpu_seconds() - c);
        }
        println!(
            "ef {label:>12}: recall@10 {recall:.4}  QPS {:.0}  ({:.1} µs/query)  on-CPU QPS {:.0}",
            nq as f64 / best,
            best / nq as f64 * 1e6,
            nq as f64 / best_cpu
        );
    }

    if std::env::var("CROSSOVER").is_ok() {
        // Brute force vs HNSW (default ef) on prefixes of the base set: where is the crossover?
        for n in [250usize, 500, 1000, 1500, 2000, 3000, 5000] {
            let mut small = VectorIndex::new(ds.dim, Metric::Cosine, params);
            small.set_brute_force_threshold(0);
            for i in 0..n {
                small.push(ds.base_vec(i));
            }
            small.index_pending(usize::MAX);
            let mut line = format!("n {n:>5}:");
            for (label, opts) in [("hnsw", SearchOptions::default()), ("brute", exact_opts)] {
                let mut best = f64::INFINITY;
                for _ in 0..passes {
                    let t = Instant::now();
                    for q in 0..nq {
                        std::hint::black_box(small.search(ds.query(q), 10, &opts));
                    }
                    best = best.min(t.elapsed().as_secs_f64());
                }
                line += &format!("  {label} {:.1} µs/query", best / nq as f64 * 1e6);
            }
            println!("{line}");
        }
    }
}

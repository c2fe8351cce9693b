//! `akidb-synth`: writes a seeded synthetic data set with exact ground truth as a texmex folder
//! (`base.fvecs`, `queries.fvecs`, `groundtruth.ivecs`, `groundtruth-scores.fvecs`), the
//! layout of `../shared/data`, for the scale benchmarks, the load tool (`--dataset DIR`) and
//! the recall harness. Same flags, same bytes. See `akidb_testkit::synth` for the mixture.

use std::path::PathBuf;
use std::time::Instant;

use akidb_testkit::Synth;
use clap::Parser;

#[derive(Parser)]
#[command(about = "Write a seeded synthetic vector data set with exact ground truth")]
struct Args {
    /// Output folder (created).
    #[arg(long)]
    out: PathBuf,
    /// Base vectors.
    #[arg(long, default_value_t = 100_000)]
    n: usize,
    #[arg(long, default_value_t = 384)]
    dim: usize,
    /// Mixture centres.
    #[arg(long, default_value_t = 100)]
    clusters: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Query vectors (from the same mixture, not base members).
    #[arg(long, default_value_t = 1_000)]
    queries: usize,
    /// Neighbours per query in the ground truth.
    #[arg(long, default_value_t = 100)]
    k: usize,
    /// Noise of a vector around its centre, per coordinate, in units of 1/sqrt(dim) (default 0.3).
    #[arg(long)]
    spread: Option<f32>,
    /// Clusters per family (centres are drawn around family centres, so siblings overlap; default 10).
    #[arg(long)]
    clusters_per_family: Option<usize>,
    /// Noise of a centre around its family, per coordinate, in units of 1/sqrt(dim) (default 0.5).
    #[arg(long)]
    family_spread: Option<f32>,
    /// Dimensions of each cluster's own subspace (0: none; default 32).
    #[arg(long)]
    manifold_dim: Option<usize>,
    /// Spread along each of those directions (a unit vector is 1; default 0.4).
    #[arg(long)]
    manifold_spread: Option<f32>,
    /// Threads for generation and ground truth (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> std::io::Result<()> {
    let a = Args::parse();
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let started = Instant::now();
    let d = Synth::new(a.dim, a.clusters, a.seed);
    let unit = 1.0 / (a.dim as f32).sqrt();
    let synth = Synth::shaped(
        a.dim,
        a.clusters,
        a.seed,
        a.spread.map_or(d.spread, |s| s * unit),
        a.clusters_per_family
            .map_or(d.families, |c| (a.clusters / c.max(1)).max(1)),
        a.family_spread.map_or(d.family_spread, |s| s * unit),
    )
    .with_manifold(
        a.manifold_dim.unwrap_or(d.manifold_dim),
        a.manifold_spread.unwrap_or(d.manifold_spread),
    );
    synth.write_texmex(&a.out, a.n, a.queries, a.k, threads)?;
    let params = format!(
        "{{\"generator\": \"akidb-synth\", \"n\": {}, \"dim\": {}, \"clusters\": {}, \"seed\": {}, \"spread\": {}, \"families\": {}, \"family_spread\": {}, \"queries\": {}, \"k\": {}, \"metric\": \"cosine (unit vectors: inner product)\"}}\n",
        a.n,
        a.dim,
        a.clusters,
        a.seed,
        synth.spread,
        synth.families,
        synth.family_spread,
        a.queries,
        a.k
    );
    std::fs::write(a.out.join("params.json"), params)?;
    eprintln!(
        "wrote {} base and {} query vectors of dimension {} with top-{} ground truth to {} in {:.1} s ({threads} threads)",
        a.n,
        a.queries,
        a.dim,
        a.k,
        a.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

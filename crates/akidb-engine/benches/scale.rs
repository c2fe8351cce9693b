//! Warm and cold search of one large collection with a partitioned base, on a texmex folder
//! with exact ground truth (make one with `akidb-synth`), over a `file://` store with a fixed
//! latency added to every call. Not Criterion: the figures are first queries after restarts,
//! recall, bytes and RSS, printed as a table.
//!
//! ```text
//! cargo run --release -p akidb-testkit --bin akidb-synth -- --out /tmp/synth-1m --n 1000000
//! cargo bench -p akidb-engine --bench scale -- --data /tmp/synth-1m
//! ```
//! Flags: `--latency-ms` (50), `--restarts` (first queries measured, 10), `--queries` (100),
//! `--nprobe` (a comma list for the recall curve, default 8,16,30,60,120),
//! `--work DIR` (store and data directories; default a temporary directory), `--hot` (also
//! wait until the HNSW graph holds every vector, and measure the hot tier: index rate, RSS,
//! recall and QPS per ef).
//!
//! Steps: upsert everything (hot), demote to cold (the base is built then: its time and size are
//! reported), then per restart a new engine with an *empty* data directory over the same store:
//! time to open, then the first query (cold: header + partitions by ranged GETs). Then on the
//! last engine: `--queries` queries twice (the second pass reads the block cache), the recall
//! curve over nprobe cold and warm (after a move to warm, which downloads the base), and RSS.

use std::sync::Arc;
use std::time::{Duration, Instant};

use akidb_core::{Metric, Quantization};
use akidb_engine::store::faulty::FaultyStore;
use akidb_engine::tier::Tier;
use akidb_engine::{
    CreateCollection, Engine, EngineConfig, NewDocument, ReadReport, SearchQuery, TierAction,
};
use object_store::ObjectStore;

struct Args {
    data: std::path::PathBuf,
    latency: Duration,
    restarts: usize,
    queries: usize,
    nprobes: Vec<usize>,
    work: Option<std::path::PathBuf>,
    /// Also wait for the HNSW index and measure the hot tier (ef curve, RSS, index rate).
    hot: bool,
    /// Stop after the hot tier (`--hot-only`).
    hot_only: bool,
    /// The collection's `quantization` (`--quantization sq8`).
    quantization: Quantization,
}

fn args() -> Option<Args> {
    let mut a = Args {
        data: Default::default(),
        latency: Duration::from_millis(50),
        restarts: 10,
        queries: 100,
        nprobes: vec![8, 16, 30, 60, 120],
        work: None,
        hot: false,
        hot_only: false,
        quantization: Quantization::None,
    };
    let mut data = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().expect("a value after the flag");
        match flag.as_str() {
            "--data" => data = Some(value().into()),
            "--latency-ms" => a.latency = Duration::from_millis(value().parse().unwrap()),
            "--restarts" => a.restarts = value().parse().unwrap(),
            "--queries" => a.queries = value().parse().unwrap(),
            "--nprobe" => {
                a.nprobes = value().split(',').map(|v| v.parse().unwrap()).collect();
            }
            "--work" => a.work = Some(value().into()),
            "--hot" => a.hot = true,
            "--hot-only" => (a.hot, a.hot_only) = (true, true),
            "--quantization" => a.quantization = value().parse().unwrap(),
            "--bench" => {}
            "--list" => return None, // `cargo test --benches` lists; nothing to run
            other => panic!("unknown flag {other}"),
        }
    }
    a.data = data?;
    Some(a)
}

fn config(dir: &std::path::Path) -> EngineConfig {
    let mut c = EngineConfig::new(dir);
    c.tiering.enabled = false;
    c.tiering.policy.promote_accesses = usize::MAX; // reads never promote here
    c.flush_max_docs = 200_000;
    c
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap();
    kib / 1024.0
}

fn pct(mut xs: Vec<f64>, p: f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[((xs.len() - 1) as f64 * p).round() as usize]
}

/// Runs `queries` with `nprobe`; returns (latencies ms, recall@10, reports).
async fn run(
    engine: &Engine,
    queries: &[Vec<f32>],
    truth: &[Vec<i32>],
    nprobe: Option<usize>,
) -> (Vec<f64>, f64, Vec<ReadReport>) {
    let (mut times, mut found, mut reports) = (vec![], 0, vec![]);
    for (q, t) in queries.iter().zip(truth) {
        let started = Instant::now();
        let (hits, report) = engine
            .search_with_report(
                "big",
                SearchQuery {
                    nprobe,
                    ..SearchQuery::new(q.clone(), 10)
                },
            )
            .await
            .unwrap();
        times.push(started.elapsed().as_secs_f64() * 1e3);
        let truth: Vec<String> = t.iter().take(10).map(|i| format!("{i}")).collect();
        found += hits.iter().filter(|h| truth.contains(&h.id)).count();
        reports.push(report);
    }
    (times, found as f64 / (10 * queries.len()) as f64, reports)
}

/// The hot tier: how fast the graph takes every vector (from the first upsert), then RSS and
/// recall and QPS per ef.
async fn hot(engine: &Engine, queries: &[Vec<f32>], truth: &[Vec<i32>], raw: f64) {
    let started = Instant::now();
    let mut pending = engine.collection_info("big").await.unwrap().index_pending;
    let at_start = pending;
    while pending > 0 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        pending = engine.collection_info("big").await.unwrap().index_pending;
    }
    let n = engine.collection_info("big").await.unwrap().count;
    println!(
        "hot: {at_start} of {n} vectors still unindexed after the upsert, indexed {:.1} s later",
        started.elapsed().as_secs_f64()
    );
    println!(
        "hot RSS: {:.0} MiB ({:.2} x the raw vectors)",
        rss_mib(),
        rss_mib() * 1048576.0 / raw
    );
    let info = engine.collection_info("big").await.unwrap();
    println!(
        "hot index: quantization {}, bytes_in_ram {:.0} MiB",
        info.def.quantization.as_str(),
        info.bytes_in_ram as f64 / 1048576.0
    );
    println!("ef | hot p50 ms | recall@10 | QPS (1 client)");
    for ef in [16, 24, 32, 48, 96] {
        let (mut times, mut found) = (vec![], 0);
        let started = Instant::now();
        for (q, t) in queries.iter().zip(truth) {
            let at = Instant::now();
            let hits = engine
                .search(
                    "big",
                    SearchQuery {
                        ef: Some(ef),
                        ..SearchQuery::new(q.clone(), 10)
                    },
                )
                .await
                .unwrap();
            times.push(at.elapsed().as_secs_f64() * 1e3);
            let truth: Vec<String> = t.iter().take(10).map(|i| format!("{i}")).collect();
            found += hits.iter().filter(|h| truth.contains(&h.id)).count();
        }
        let qps = queries.len() as f64 / started.elapsed().as_secs_f64();
        println!(
            "{ef} | {:.2} | {:.3} | {qps:.0}",
            pct(times, 0.5),
            found as f64 / (10 * queries.len()) as f64
        );
    }
}

/// Promotes the collection to hot in the background while one client keeps searching it:
/// how long the promotion takes, how many searches it answered meanwhile (and from which
/// tier), and that none failed.
async fn promote_under_queries(engine: &Engine, queries: &[Vec<f32>]) {
    let started = Instant::now();
    let promotion = {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine
                .tier_action("big", TierAction::Promote, Some(Tier::Hot))
                .await
        })
    };
    let (mut times, mut failed, mut by_tier) = (vec![], 0, std::collections::BTreeMap::new());
    let mut i = 0;
    while !promotion.is_finished() {
        let q = &queries[i % queries.len()];
        i += 1;
        let at = Instant::now();
        match engine
            .search_with_report("big", SearchQuery::new(q.clone(), 10))
            .await
        {
            Ok((_, report)) => {
                times.push(at.elapsed().as_secs_f64() * 1e3);
                *by_tier.entry(format!("{:?}", report.tier)).or_insert(0) += 1;
            }
            Err(e) => {
                failed += 1;
                eprintln!("search failed during the promotion: {e}");
            }
        }
    }
    promotion.await.unwrap().unwrap();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "promotion to hot (from warm) under queries: {secs:.1} s; {} searches answered meanwhile ({by_tier:?}), p50 {:.1} ms, max {:.1} ms; {failed} failed; RSS hot {:.0} MiB",
        times.len(),
        if times.is_empty() {
            0.0
        } else {
            pct(times.clone(), 0.5)
        },
        if times.is_empty() {
            0.0
        } else {
            pct(times, 1.0)
        },
        rss_mib()
    );
}

fn main() {
    let Some(args) = args() else {
        return;
    };
    let (_, mut base) = akidb_testkit::read_fvecs(&args.data.join("base.fvecs")).unwrap();
    let (_, queries) = akidb_testkit::read_fvecs(&args.data.join("queries.fvecs")).unwrap();
    let (_, truth) = akidb_testkit::read_ivecs(&args.data.join("groundtruth.ivecs")).unwrap();
    let (n, dim) = (base.len(), base[0].len());
    let raw = (n * dim * 4) as f64;
    let tmp = tempfile::tempdir().unwrap();
    let work = args
        .work
        .clone()
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let store_dir = work.join("store");
    std::fs::create_dir_all(&store_dir).unwrap();
    let inner: Arc<dyn ObjectStore> =
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&store_dir).unwrap());
    let store = Arc::new(FaultyStore::new(inner));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        println!(
            "{n} x {dim} ({}), {} ms added to every object-store call, raw vectors {:.0} MiB",
            args.data.display(),
            args.latency.as_millis(),
            raw / 1048576.0
        );
        let engine = Engine::open_with_store(config(&work.join("data-0")), store.clone())
            .await
            .unwrap();
        engine
            .create_collection(CreateCollection {
                quantization: Some(args.quantization),
                ..CreateCollection::new("big", dim, Metric::Cosine)
            })
            .await
            .unwrap();
        let started = Instant::now();
        for (c, chunk) in std::mem::take(&mut base).chunks(1000).enumerate() {
            let docs = chunk
                .iter()
                .enumerate()
                .map(|(i, v)| NewDocument {
                    id: Some(format!("{}", c * 1000 + i)),
                    vector: v.clone(),
                    metadata: None,
                })
                .collect();
            engine.upsert("big", docs).await.unwrap();
        }
        println!("upsert (hot): {:.1} s", started.elapsed().as_secs_f64());
        // The data set (taken above) has left; its pages go back too, since the bench and the
        // engine share this process's RSS.
        // SAFETY: malloc_trim only releases free memory.
        unsafe {
            libc::malloc_trim(0);
        }
        if args.hot {
            hot(&engine, &queries[..args.queries.min(queries.len())], &truth, raw).await;
        }
        if args.hot_only {
            engine.shutdown().await;
            return;
        }
        store.set_latency(args.latency);
        let started = Instant::now();
        engine
            .tier_action("big", TierAction::Demote, Some(Tier::Cold))
            .await
            .unwrap();
        let info = engine.tier_info("big").unwrap();
        println!(
            "demote to cold with the base build: {:.1} s; {:.0} MiB in the object store",
            started.elapsed().as_secs_f64(),
            info.bytes_in_object_store as f64 / 1048576.0
        );
        let stored = info.bytes_in_object_store as f64;
        engine.shutdown().await;
        drop(engine);

        let (mut opens, mut firsts, mut first_bytes, mut first_gets) = (vec![], vec![], vec![], vec![]);
        let mut last = None;
        for r in 0..args.restarts {
            let dir = work.join(format!("data-{}", r + 1));
            let started = Instant::now();
            let engine = Engine::open_with_store(config(&dir), store.clone())
                .await
                .unwrap();
            opens.push(started.elapsed().as_secs_f64() * 1e3);
            let q = &queries[r % queries.len()];
            let started = Instant::now();
            let (_, report) = engine
                .search_with_report("big", SearchQuery::new(q.clone(), 10))
                .await
                .unwrap();
            firsts.push(started.elapsed().as_secs_f64() * 1e3);
            assert_eq!(report.tier, Some(Tier::Cold));
            first_bytes.push(report.bytes_object_store as f64);
            first_gets.push(report.object_store_gets as f64);
            if let Some(old) = last.replace(engine) {
                old.shutdown().await;
            }
        }
        let engine = last.expect("at least one restart");
        println!(
            "restart to serving (empty data dir): p50 {:.0} ms, max {:.0} ms",
            pct(opens.clone(), 0.5),
            pct(opens, 1.0)
        );
        println!(
            "cold first query: p50 {:.0} ms, max {:.0} ms; {:.2}% of the stored bytes ({:.1} MiB), {:.0} GETs (p50)",
            pct(firsts.clone(), 0.5),
            pct(firsts, 1.0),
            100.0 * pct(first_bytes.clone(), 0.5) / stored,
            pct(first_bytes, 0.5) / 1048576.0,
            pct(first_gets, 0.5)
        );
        let rss_before = rss_mib();
        let nq = args.queries.min(queries.len());
        let (qs, ts) = (&queries[..nq], &truth[..nq]);
        for pass in ["cold, new partitions", "cold, block cache"] {
            let (times, recall, reports) = run(&engine, qs, ts, None).await;
            let fetched: u64 = reports.iter().map(|r| r.bytes_object_store).sum();
            println!(
                "{pass}: p50 {:.1} ms, p99 {:.1} ms, recall@10 {recall:.3}, {:.2}% of the stored bytes fetched per query",
                pct(times.clone(), 0.5),
                pct(times, 0.99),
                100.0 * fetched as f64 / nq as f64 / stored
            );
        }
        println!(
            "RSS: {:.0} MiB after the restarts, {:.0} MiB after the queries ({:.1}% of the raw vectors)",
            rss_before,
            rss_mib(),
            100.0 * rss_mib() * 1048576.0 / raw
        );
        println!(
            "nprobe | cold p50 ms (block cache filling) | recall@10 | warm p50 ms | QPS warm (1 client)"
        );
        let mut curve = vec![];
        for &nprobe in &args.nprobes {
            let (times, recall, _) = run(&engine, qs, ts, Some(nprobe)).await;
            curve.push((nprobe, pct(times, 0.5), recall));
        }
        engine
            .tier_action("big", TierAction::Promote, Some(Tier::Warm))
            .await
            .unwrap();
        let (times, recall, _) = run(&engine, qs, ts, None).await;
        println!(
            "warm at the default nprobe: p50 {:.1} ms, recall@10 {recall:.3}; RSS {:.0} MiB",
            pct(times, 0.5),
            rss_mib()
        );
        for (nprobe, cold, recall) in curve {
            let started = Instant::now();
            let (times, warm_recall, _) = run(&engine, qs, ts, Some(nprobe)).await;
            let qps = nq as f64 / started.elapsed().as_secs_f64();
            assert!((warm_recall - recall).abs() < 1e-9);
            println!(
                "{nprobe} | {cold:.1} | {recall:.3} | {:.1} | {qps:.0}",
                pct(times, 0.5)
            );
        }
        println!("RSS after the curve: {:.0} MiB", rss_mib());
        promote_under_queries(&engine, qs).await;
        engine.shutdown().await;
    });
}

//! First-query latency per tier and restart-to-serving time, over an object store with a fixed
//! latency added to every call (`FaultyStore` over `InMemory`; 50 ms by default, as the issue's
//! target asks). Not Criterion: each figure is one cold event, so it prints the min, median
//! and max of several repetitions.
//!
//! `cargo bench -p akidb-engine --bench tiers` (env: `AKIDB_BENCH_LATENCY_MS`, default 50;
//! `AKIDB_BENCH_REPS`, default 5). Data: the 20,000 × 384 vectors of
//! `../shared/data/debian-minilm-384`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use akidb_core::Metric;
use akidb_engine::TierAction;
use akidb_engine::store::faulty::FaultyStore;
use akidb_engine::tier::Tier;
use akidb_engine::{CreateCollection, Engine, EngineConfig, NewDocument, SearchQuery};
use object_store::ObjectStore;

fn read_fvecs(path: &std::path::Path) -> Vec<Vec<f32>> {
    akidb_testkit::read_fvecs(path)
        .unwrap_or_else(|e| panic!("{e}"))
        .1
}

fn config(dir: &std::path::Path) -> EngineConfig {
    let mut c = EngineConfig::new(dir);
    c.background_flush = false;
    c.tiering.enabled = false;
    c
}

fn query(v: &[f32]) -> SearchQuery {
    SearchQuery {
        vector: v.to_vec(),
        k: 10,
        ef: None,
        nprobe: None,
        exact: false,
        filter: None,
        include_vector: false,
        include_metadata: false,
        deadline: None,
        text: None,
    }
}

/// Upserts the data set as `doc-0`, `doc-1`, ... in batches of 1,000.
async fn upsert_all(engine: &Engine, base: &[Vec<f32>]) {
    for (c, chunk) in base.chunks(1000).enumerate() {
        let docs = chunk
            .iter()
            .enumerate()
            .map(|(i, v)| NewDocument {
                id: Some(format!("doc-{}", c * 1000 + i)),
                vector: v.clone(),
                metadata: None,
            })
            .collect();
        engine.upsert("minilm", docs).await.unwrap();
    }
}

fn summary(mut xs: Vec<Duration>) -> String {
    xs.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "{:.1} ms (min {:.1}, max {:.1}, n={})",
        ms(xs[xs.len() / 2]),
        ms(xs[0]),
        ms(xs[xs.len() - 1]),
        xs.len()
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists; nothing to run
    }
    let latency = Duration::from_millis(
        std::env::var("AKIDB_BENCH_LATENCY_MS").map_or(50, |v| v.parse().unwrap()),
    );
    let reps: usize = std::env::var("AKIDB_BENCH_REPS").map_or(5, |v| v.parse().unwrap());
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/debian-minilm-384");
    let base = read_fvecs(&data.join("base.fvecs"));
    let queries = read_fvecs(&data.join("queries.fvecs"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let inner: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let faulty = Arc::new(FaultyStore::new(inner));
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open_with_store(config(dir.path()), faulty.clone())
            .await
            .unwrap();
        engine
            .create_collection(CreateCollection {
                name: "minilm".into(),
                dimension: 384,
                metric: Metric::Cosine,
                m: None,
                ef_construction: None,
                ef_search: None,
                quantization: None,
            })
            .await
            .unwrap();
        upsert_all(&engine, &base).await;
        while engine.collection_info("minilm").await.unwrap().index_pending > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        engine.flush_all().await.unwrap();
        faulty.set_latency(latency);
        println!(
            "first query per tier: 20,000 x 384 (minilm), {} ms added to every object-store call",
            latency.as_millis()
        );
        let mut results: Vec<(Tier, Vec<Duration>, Vec<usize>)> = vec![];
        for tier in [Tier::Hot, Tier::Warm, Tier::Cold] {
            let (mut times, mut calls) = (vec![], vec![]);
            for q in queries.iter().take(reps) {
                let action = if tier == Tier::Hot {
                    TierAction::Promote
                } else {
                    TierAction::Demote
                };
                // From hot each time, so every repetition is a first query after the move.
                engine
                    .tier_action("minilm", TierAction::Promote, None)
                    .await
                    .unwrap();
                engine
                    .tier_action("minilm", action, Some(tier))
                    .await
                    .unwrap();
                faulty.clear_history();
                let started = Instant::now();
                let hits = engine.search("minilm", query(q)).await.unwrap();
                times.push(started.elapsed());
                calls.push(faulty.history().len());
                assert_eq!(hits.len(), 10);
            }
            results.push((tier, times, calls));
        }
        for (tier, times, calls) in results {
            println!(
                "  {tier:<4}: {}  object-store calls per first query: {:?}",
                summary(times),
                calls
            );
        }
        // Compaction: every document replaced once (20,000 dead slots of 40,000), then the
        // rewrite, with the 50 ms store latency still on.
        engine
            .tier_action("minilm", TierAction::Promote, None)
            .await
            .unwrap();
        upsert_all(&engine, &base).await;
        engine.flush_all().await.unwrap();
        let started = Instant::now();
        let removed = engine.compact("minilm").await.unwrap();
        println!(
            "compaction of 20,000 dead slots (40,000 slots): {:.1} ms, {removed} removed",
            started.elapsed().as_secs_f64() * 1e3
        );
        engine
            .tier_action("minilm", TierAction::Demote, Some(Tier::Cold))
            .await
            .unwrap();
        engine.shutdown().await;
        drop(engine);

        // Restart to serving: a new engine over the same store, with an empty data dir.
        for collections in [1usize, 100] {
            if collections > 1 {
                let dir = tempfile::tempdir().unwrap();
                faulty.set_latency(Duration::ZERO);
                let e = Engine::open_with_store(config(dir.path()), faulty.clone())
                    .await
                    .unwrap();
                for i in 1..collections {
                    let name = format!("extra-{i}");
                    e.create_collection(CreateCollection {
                        name: name.clone(),
                        dimension: 384,
                        metric: Metric::Cosine,
                        m: None,
                        ef_construction: None,
                        ef_search: None,
                        quantization: None,
                    })
                    .await
                    .unwrap();
                    let docs = base[..100]
                        .iter()
                        .enumerate()
                        .map(|(j, v)| NewDocument {
                            id: Some(format!("d{j}")),
                            vector: v.clone(),
                            metadata: None,
                        })
                        .collect();
                    e.upsert(&name, docs).await.unwrap();
                }
                e.shutdown().await;
                drop(e);
                faulty.set_latency(latency);
            }
            let mut times = vec![];
            for _ in 0..reps {
                let dir = tempfile::tempdir().unwrap();
                let started = Instant::now();
                let e = Engine::open_with_store(config(dir.path()), faulty.clone())
                    .await
                    .unwrap();
                times.push(started.elapsed());
                assert_eq!(e.list_collections().len(), collections);
                e.shutdown().await;
            }
            println!(
                "restart to serving, empty data dir, {collections} collection(s) (one of 20,000 vectors): {}",
                summary(times)
            );
        }
    });
}

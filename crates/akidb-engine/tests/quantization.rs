//! A hot collection with `quantization: sq8` (8-bit codes in RAM, f32 in a local file): it
//! answers exact searches exactly as an f32 twin does, approximate ones nearly so, returns the
//! full vectors, holds less RAM, and keeps all of it through a restart and a change back to
//! `none`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use akidb_core::{Metric, Quantization};
use akidb_engine::tier::Tier;
use akidb_engine::{
    CreateCollection, Engine, EngineConfig, Hit, NewDocument, SearchQuery, TierAction,
};
use serde_json::json;

const DIM: usize = 48;
const N: usize = 3_000;
/// RAM a quantized state saves at least: 2 bytes per coordinate.
const SAVED: usize = N * DIM * 2;

fn config(dir: &Path) -> EngineConfig {
    let mut c = EngineConfig::new(dir);
    c.flush_idle = Duration::from_secs(3600);
    c.flush_max_age = Duration::from_secs(3600);
    c.tiering.enabled = false;
    c
}

fn docs() -> Vec<NewDocument> {
    (0..N)
        .map(|i| NewDocument {
            id: Some(format!("doc-{i}")),
            vector: akidb_testkit::seeded_vector(i as u64, DIM),
            metadata: Some(json!({"even": i % 2 == 0})),
        })
        .collect()
}

fn query(i: usize, exact: bool, filter: Option<serde_json::Value>) -> SearchQuery {
    SearchQuery {
        exact,
        filter,
        include_vector: true,
        ..SearchQuery::new(akidb_testkit::seeded_vector(1_000_000 + i as u64, DIM), 10)
    }
}

/// The files holding a quantized collection's full vectors.
fn vector_files(data: &Path, id: &str) -> Vec<PathBuf> {
    std::fs::read_dir(data.join("collections").join(id).join("hot-vectors"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

/// Waits until the collection is fully indexed and `ready(bytes_in_ram)` holds.
async fn settle(engine: &Engine, name: &str, ready: impl Fn(usize) -> bool) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let info = engine.collection_info(name).await.unwrap();
        if info.index_pending == 0 && ready(info.bytes_in_ram) {
            return info.bytes_in_ram;
        }
        assert!(Instant::now() < deadline, "{name} did not settle: {info:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The stored setting of collection `sq8`.
async fn quantization(engine: &Engine) -> Quantization {
    let info = engine.collection_info("sq8").await.unwrap();
    info.def.quantization
}

fn ids(hits: &[Hit]) -> Vec<&str> {
    hits.iter().map(|h| h.id.as_str()).collect()
}

/// Exact searches (with and without a filter) give the same ids, scores and vectors in both
/// collections; approximate ones find about as many of the exact top 10 as f32 does.
async fn assert_same_answers(engine: &Engine, quantized: &str, plain: &str) {
    let (mut found, mut found_plain) = (0, 0);
    for i in 0..20 {
        let filter = (i % 2 == 1).then(|| json!({"even": true}));
        let want = engine
            .search(plain, query(i, true, filter.clone()))
            .await
            .unwrap();
        let got = engine
            .search(quantized, query(i, true, filter.clone()))
            .await
            .unwrap();
        assert_eq!(ids(&got), ids(&want), "exact search {i}");
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g.score - w.score).abs() < 1e-5,
                "{} vs {}",
                g.score,
                w.score
            );
            assert_eq!(g.vector, w.vector);
        }
        for (name, found) in [(quantized, &mut found), (plain, &mut found_plain)] {
            let approx = engine
                .search(name, query(i, false, filter.clone()))
                .await
                .unwrap();
            *found += approx
                .iter()
                .filter(|h| ids(&want).contains(&h.id.as_str()))
                .count();
        }
    }
    // 48-d random vectors are hard for a graph at the default ef; sq8 finds what f32 finds.
    assert!(
        found + 6 >= found_plain && found_plain >= 150,
        "approximate search found {found} (sq8) and {found_plain} (f32) of 200"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quantized_collection_answers_like_f32_through_restart_and_change() {
    let dir = tempfile::tempdir().unwrap();
    let id;
    let (plain_ram, sq8_ram);
    {
        let engine = Engine::open(config(dir.path())).await.unwrap();
        let info = engine
            .create_collection(CreateCollection {
                quantization: Some(Quantization::Sq8),
                ..CreateCollection::new("sq8", DIM, Metric::Cosine)
            })
            .await
            .unwrap();
        assert_eq!(info.def.quantization, Quantization::Sq8);
        id = info.def.id.clone();
        engine
            .create_collection(CreateCollection::new("plain", DIM, Metric::Cosine))
            .await
            .unwrap();
        engine.upsert("sq8", docs()).await.unwrap();
        engine.upsert("plain", docs()).await.unwrap();
        plain_ram = settle(&engine, "plain", |_| true).await;
        // A code is a quarter of an f32 vector: at least 2 of every 4 bytes are saved.
        sq8_ram = settle(&engine, "sq8", |b| b + SAVED <= plain_ram).await;
        let files = vector_files(dir.path(), &id);
        assert_eq!(files.len(), 1, "{files:?}");
        assert_eq!(
            std::fs::metadata(&files[0]).unwrap().len(),
            (N * DIM * 4) as u64
        );
        // The file counts as the collection's local disk (the tiering policy's disk budget).
        let disk = |name| engine.tier_info(name).unwrap().bytes_on_disk;
        assert_eq!(disk("sq8"), disk("plain") + (N * DIM * 4) as u64);
        assert_same_answers(&engine, "sq8", "plain").await;
        let doc = engine.get_document("sq8", "doc-7").await.unwrap();
        let want = engine.get_document("plain", "doc-7").await.unwrap();
        assert_eq!(doc.vector, want.vector);
        engine.flush_all().await.unwrap();
        // dropped without shutdown: the state (and its vector file) goes with the engine
    }
    assert!(vector_files(dir.path(), &id).is_empty());
    // What a killed process would leave behind.
    let stale = dir
        .path()
        .join("collections")
        .join(&id)
        .join("hot-vectors")
        .join("stale.f32");
    std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
    std::fs::write(&stale, [0u8; 64]).unwrap();

    let engine = Engine::open(config(dir.path())).await.unwrap();
    assert_eq!(quantization(&engine).await, Quantization::Sq8);
    for name in ["sq8", "plain"] {
        engine
            .tier_action(name, TierAction::Promote, Some(Tier::Hot))
            .await
            .unwrap();
    }
    // Quantized again by the load (a new file; the stale one is gone).
    let again = settle(&engine, "sq8", |b| b + SAVED <= plain_ram).await;
    assert!(again <= sq8_ram * 2, "{again} vs {sq8_ram}");
    let files = vector_files(dir.path(), &id);
    assert_eq!(files.len(), 1);
    assert_ne!(files[0], stale);
    assert_same_answers(&engine, "sq8", "plain").await;

    // Back to f32: durable at once, converted by the indexer, the file deleted.
    let info = engine
        .set_quantization("sq8", Quantization::None)
        .await
        .unwrap();
    assert_eq!(info.def.quantization, Quantization::None);
    settle(&engine, "sq8", |b| b + N * DIM >= plain_ram).await;
    assert!(vector_files(dir.path(), &id).is_empty());
    assert_same_answers(&engine, "sq8", "plain").await;
    engine.shutdown().await;
    drop(engine);
    let engine = Engine::open(config(dir.path())).await.unwrap();
    assert_eq!(quantization(&engine).await, Quantization::None);
    engine.shutdown().await;
}

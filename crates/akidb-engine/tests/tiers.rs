//! Tiers through the engine, on every store: `memory://`, `file://`, moto and SeaweedFS.
//!
//! - a round trip hot → warm → cold → hot and a restart with an empty data dir gives the same
//!   HNSW answers (not exact ones: the saved graph is what makes them equal), with replaced and
//!   deleted documents in the mix;
//! - restart is lazy: no segment is read until a collection is used;
//! - a cold collection's first query costs at most two sequential rounds of object-store calls,
//!   with 50 ms of latency on each;
//! - the policy task moves collections under budgets, and pinned ones stay;
//! - orphan objects are swept, referenced ones kept;
//! - concurrency: writers, flushes and tier moves at once lose nothing and duplicate nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use akidb_core::Metric;
use akidb_engine::manifest::Manifest;
use akidb_engine::segment::{self, Row};
use akidb_engine::store::faulty::{FaultyStore, Op};
use akidb_engine::store::open_store;
use akidb_engine::tier::{PolicyConfig, Tier};
use akidb_engine::{
    CreateCollection, Engine, EngineConfig, EngineError, NewDocument, S3Options, SearchQuery,
};
use akidb_engine::{TierAction, TieringConfig};
use akidb_testkit::{s3_servers, unique_prefix};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde_json::json;

const DIM: usize = 32;

fn config(dir: &std::path::Path) -> EngineConfig {
    let mut c = EngineConfig::new(dir);
    c.flush_idle = Duration::from_secs(3600);
    c.flush_max_age = Duration::from_secs(3600);
    c.background_flush = false;
    c.tiering.enabled = false; // moves only where a test asks for them
    c
}

fn create(name: &str) -> CreateCollection {
    CreateCollection {
        name: name.into(),
        dimension: DIM,
        metric: Metric::Cosine,
        m: None,
        ef_construction: None,
        ef_search: None,
        quantization: None,
    }
}

/// Deterministic pseudo-random vectors.
fn vector(seed: u64) -> Vec<f32> {
    akidb_testkit::seeded_vector(seed, DIM)
}

fn doc(i: u64) -> NewDocument {
    NewDocument {
        id: Some(format!("d{i}")),
        vector: vector(i),
        metadata: Some(json!({"i": i})),
    }
}

fn hnsw_query(seed: u64) -> SearchQuery {
    SearchQuery {
        vector: vector(seed),
        k: 10,
        ef: None,
        nprobe: None,
        exact: false,
        filter: None,
        include_vector: false,
        include_metadata: true,
        deadline: None,
        text: None,
    }
}

/// Top-10 ids and scores of 40 HNSW queries.
async fn answers(engine: &Engine, name: &str) -> Vec<Vec<(String, f32)>> {
    let mut out = vec![];
    for q in 0..40 {
        let hits = engine
            .search(name, hnsw_query(1_000_000 + q))
            .await
            .unwrap();
        assert_eq!(hits.len(), 10);
        out.push(hits.into_iter().map(|h| (h.id, h.score)).collect());
    }
    out
}

async fn wait_indexed(engine: &Engine, name: &str) {
    for _ in 0..6000 {
        if engine.collection_info(name).await.unwrap().index_pending == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{name} not indexed within 60 s");
}

/// Files under `dir` whose name ends with one of `exts`.
fn local_objects(dir: &std::path::Path, exts: &[&str]) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(local_objects(&p, exts));
        } else if exts.iter().any(|x| p.to_string_lossy().ends_with(x)) {
            out.push(p);
        }
    }
    out
}

/// Fills a collection with 3,000 documents over three flushes, replacing and deleting some
/// (so the slots include superseded ones), and leaves a few writes only in the WAL.
async fn fill(engine: &Engine, name: &str) {
    engine.create_collection(create(name)).await.unwrap();
    for chunk in 0..3u64 {
        let docs: Vec<_> = (chunk * 1000..(chunk + 1) * 1000).map(doc).collect();
        engine.upsert(name, docs).await.unwrap();
        engine.flush_all().await.unwrap();
    }
    let mut replaced = doc(5);
    replaced.vector = vector(777_777);
    engine.upsert(name, vec![replaced]).await.unwrap();
    engine
        .delete_documents(name, vec!["d7".into(), "d1500".into()])
        .await
        .unwrap();
    engine
        .upsert(name, vec![doc(3000), doc(3001)])
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tier_round_trip_gives_the_same_answers_on_every_store() {
    let (_moto, s3) = s3_servers("akidb");
    let objects = tempfile::tempdir().unwrap();
    let mut targets: Vec<(&str, String, S3Options)> = vec![
        ("memory", "memory://".into(), S3Options::default()),
        (
            "file",
            format!("file://{}", objects.path().display()),
            S3Options::default(),
        ),
    ];
    for ep in &s3 {
        targets.push((ep.kind, ep.url(&unique_prefix("tiers")), s3_options(ep)));
    }
    for (kind, url, s3) in targets {
        let data = tempfile::tempdir().unwrap();
        let mut c = config(data.path());
        c.object_store = Some(url.clone());
        c.s3 = s3.clone();
        let store = open_store(&url, &s3).unwrap();
        let engine = Engine::open_with_store(c.clone(), store.clone())
            .await
            .unwrap();
        fill(&engine, "t").await;
        wait_indexed(&engine, "t").await;
        let hot = answers(&engine, "t").await;
        let d5 = engine.get_document("t", "d5").await.unwrap();
        let info = engine.tier_info("t").unwrap();
        assert_eq!(info.tier, Tier::Hot, "{kind}");
        assert!(
            info.bytes_in_ram > 3000 * DIM as u64 * 4,
            "{kind}: {info:?}"
        );

        // Warm: RAM freed, local copies kept, same answers.
        let warm = engine
            .tier_action("t", TierAction::Demote, None)
            .await
            .unwrap();
        assert_eq!((warm.tier, warm.bytes_in_ram), (Tier::Warm, 0), "{kind}");
        assert!(warm.bytes_on_disk > 0 && warm.bytes_in_object_store > 0);
        let coll_dir = data.path().join("collections");
        assert!(!local_objects(&coll_dir, &[".parquet"]).is_empty());
        assert_eq!(local_objects(&coll_dir, &[".hnsw"]).len(), 1, "{kind}");
        // The first read loads a temporary state; the second reaches the default promotion
        // rate (2 accesses a minute) and makes it hot: both paths answer the same.
        assert_eq!(answers(&engine, "t").await, hot, "{kind}: warm answers");
        engine
            .tier_action("t", TierAction::Demote, Some(Tier::Cold))
            .await
            .unwrap();
        let cold = engine.tier_info("t").unwrap();
        assert_eq!(cold.tier, Tier::Cold, "{kind}");
        assert!(
            local_objects(&coll_dir, &[".parquet", ".hnsw"]).is_empty(),
            "{kind}: cold keeps no local copies"
        );
        assert_eq!(cold.bytes_in_ram, 0);
        // Cold answers: fetched on first use, identical.
        assert_eq!(answers(&engine, "t").await, hot, "{kind}: cold answers");
        assert_eq!(engine.get_document("t", "d5").await.unwrap(), d5);
        assert!(matches!(
            engine.get_document("t", "d7").await,
            Err(EngineError::DocumentNotFound { .. })
        ));
        // Promote and write: still the same, plus the write.
        engine
            .tier_action("t", TierAction::Promote, None)
            .await
            .unwrap();
        assert_eq!(engine.tier_info("t").unwrap().tier, Tier::Hot);
        assert_eq!(answers(&engine, "t").await, hot, "{kind}: promoted answers");
        assert_eq!(engine.collection_info("t").await.unwrap().count, 3000);
        if kind == "memory" {
            continue; // memory:// does not outlive its engine
        }
        engine.shutdown().await;
        drop(engine);
        // A new machine: empty data dir, same bucket. Lazy: cold until used.
        let data2 = tempfile::tempdir().unwrap();
        let mut c2 = c.clone();
        c2.data_dir = data2.path().to_path_buf();
        let engine = Engine::open(c2).await.unwrap();
        assert_eq!(engine.tier_info("t").unwrap().tier, Tier::Cold, "{kind}");
        assert_eq!(
            answers(&engine, "t").await,
            hot,
            "{kind}: answers after restart"
        );
        assert_eq!(engine.get_document("t", "d5").await.unwrap(), d5);
        engine.shutdown().await;
    }
}

/// Calls made while `f` ran, grouped into rounds: a round is a maximal set of calls that
/// overlap in time (the next round starts after every call of the previous one finished).
fn rounds(calls: &[akidb_engine::store::faulty::Call]) -> Vec<Vec<String>> {
    let mut calls = calls.to_vec();
    calls.sort_by_key(|c| c.started);
    let mut out: Vec<Vec<String>> = vec![];
    let mut end = None;
    for c in calls {
        if end.is_none_or(|e| c.started >= e) {
            out.push(vec![]);
        }
        end = Some(end.map_or(c.finished, |e: tokio::time::Instant| e.max(c.finished)));
        out.last_mut()
            .unwrap()
            .push(format!("{:?} {}", c.op, c.path));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_is_lazy_and_a_cold_query_takes_two_rounds() {
    let inner: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let data = tempfile::tempdir().unwrap();
    let engine = Engine::open_with_store(config(data.path()), inner.clone())
        .await
        .unwrap();
    fill(&engine, "lazy").await;
    wait_indexed(&engine, "lazy").await;
    let hot = answers(&engine, "lazy").await;
    engine
        .tier_action("lazy", TierAction::Demote, Some(Tier::Cold))
        .await
        .unwrap();
    engine.shutdown().await;
    drop(engine);

    // Restart over a store with 50 ms on every call and an empty data dir.
    let faulty = Arc::new(FaultyStore::new(inner));
    faulty.set_latency(Duration::from_millis(50));
    let data2 = tempfile::tempdir().unwrap();
    let engine = Engine::open_with_store(config(data2.path()), faulty.clone())
        .await
        .unwrap();
    let at_start = faulty.history();
    assert!(
        at_start.iter().all(|c| !c.path.contains("/segments/")),
        "restart read data: {:?}",
        at_start.iter().map(|c| &c.path).collect::<Vec<_>>()
    );
    faulty.clear_history();
    let started = std::time::Instant::now();
    let first = engine.search("lazy", hnsw_query(1_000_000)).await.unwrap();
    let first_query = started.elapsed();
    // The start-up orphan sweep runs in the background and may list `segments/` meanwhile;
    // every other call is the query's, and must be a read.
    let (sweep, calls): (Vec<_>, Vec<_>) = faulty
        .history()
        .into_iter()
        .partition(|c| c.op == Op::List && c.path.ends_with("/segments"));
    assert!(sweep.len() <= 1, "{sweep:?}");
    let rounds = rounds(&calls);
    eprintln!(
        "cold first query: {first_query:?}, {} calls in {} rounds: {rounds:?}",
        calls.len(),
        rounds.len()
    );
    assert!(rounds.len() <= 2, "{rounds:?}");
    assert!(calls.iter().all(|c| c.op == Op::Get), "{rounds:?}");
    let ids: Vec<_> = first.into_iter().map(|h| (h.id, h.score)).collect();
    assert_eq!(ids, hot[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_demotes_under_budget_and_keeps_pinned() {
    let data = tempfile::tempdir().unwrap();
    let mut c = config(data.path());
    c.object_store = Some("memory://".into());
    let engine = Engine::open(c).await.unwrap();
    for name in ["a", "b", "c"] {
        engine.create_collection(create(name)).await.unwrap();
        let docs: Vec<_> = (0..500).map(doc).collect();
        engine.upsert(name, docs).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await; // distinct last-access times
    }
    engine
        .tier_action("a", TierAction::Pin, None)
        .await
        .unwrap();
    let ram = engine.tier_info("b").unwrap().bytes_in_ram;
    // Budget for two collections: the least recently used unpinned one ("b") goes warm.
    let mut policy = PolicyConfig {
        ram_budget_bytes: ram * 2 + ram / 2,
        ..PolicyConfig::default()
    };
    let moved = engine.run_tiering_once_with(&policy).await;
    assert_eq!(
        moved
            .iter()
            .map(|m| (m.name.as_str(), m.to))
            .collect::<Vec<_>>(),
        vec![("b", Tier::Warm)]
    );
    assert_eq!(engine.tier_info("a").unwrap().tier, Tier::Hot);
    assert_eq!(engine.tier_info("c").unwrap().tier, Tier::Hot);
    // Idle: everything unpinned goes down; the pinned one stays.
    policy.ram_budget_bytes = 0;
    policy.hot_idle_ms = 1;
    policy.warm_idle_ms = 1;
    tokio::time::sleep(Duration::from_millis(10)).await;
    engine.run_tiering_once_with(&policy).await;
    let tiers: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|n| engine.tier_info(n).unwrap().tier)
        .collect();
    assert_eq!(tiers, vec![Tier::Hot, Tier::Cold, Tier::Cold]);
    // Every tier still answers, and the data is all there.
    for name in ["a", "b", "c"] {
        let hit = &engine.search(name, hnsw_query(42)).await.unwrap()[0];
        assert_eq!(hit.id, "d42", "{name}");
        assert_eq!(engine.collection_info(name).await.unwrap().count, 500);
    }
    // Each had its write and this search within the window: two accesses, the default
    // promotion rate, so the reads made them hot again.
    let totals = engine.tier_totals();
    assert_eq!(
        totals
            .iter()
            .map(|(t, v)| (*t, v.collections))
            .collect::<Vec<_>>(),
        vec![(Tier::Hot, 3), (Tier::Warm, 0), (Tier::Cold, 0)]
    );
    assert!(!engine.tier_moves().moves.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_are_swept_and_referenced_objects_kept() {
    let data = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let engine = Engine::open_with_store(config(data.path()), store.clone())
        .await
        .unwrap();
    let id = engine.create_collection(create("o")).await.unwrap().def.id;
    engine
        .upsert("o", (0..50).map(doc).collect())
        .await
        .unwrap();
    engine.flush_all().await.unwrap();
    // What a crash between an upload and its manifest leaves behind.
    let orphan = Path::from(format!("collections/{id}/segments/crashed.parquet"));
    store
        .put(&orphan, PutPayload::from_static(b"x"))
        .await
        .unwrap();
    assert_eq!(
        engine
            .sweep_orphans(Duration::from_secs(3600))
            .await
            .unwrap(),
        0,
        "a young orphan may still be an upload in progress"
    );
    assert_eq!(engine.sweep_orphans(Duration::ZERO).await.unwrap(), 1);
    assert!(store.head(&orphan).await.is_err());
    engine
        .tier_action("o", TierAction::Demote, Some(Tier::Cold))
        .await
        .unwrap();
    assert_eq!(engine.sweep_orphans(Duration::ZERO).await.unwrap(), 0);
    assert_eq!(engine.collection_info("o").await.unwrap().count, 50);
    assert_eq!(engine.search("o", hnsw_query(3)).await.unwrap()[0].id, "d3");
}

/// Every `Put` row in the newest manifest's segments, by id.
async fn stored_rows(store: &Arc<dyn ObjectStore>, id: &str) -> HashMap<String, usize> {
    let manifest = Manifest::read_latest(store, id).await.unwrap().unwrap();
    let mut rows = HashMap::new();
    for seg in &manifest.segments {
        let data = store
            .get(&Path::from(seg.path.as_str()))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        for row in segment::decode(DIM, data).unwrap() {
            if let Row::Put(d) = row {
                *rows.entry(d.id).or_insert(0) += 1;
            }
        }
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_flushes_and_tier_moves_lose_nothing() {
    let data = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let mut c = config(data.path());
    // Frequent flushes (every 7 documents, and every 500 ms tick) and a policy that demotes
    // anything idle for 50 ms, run every 50 ms, beside the writers below.
    c.flush_max_docs = 7;
    c.background_flush = true;
    c.tiering = TieringConfig {
        policy: PolicyConfig {
            hot_idle_ms: 50,
            warm_idle_ms: 50,
            ..PolicyConfig::default()
        },
        interval: Duration::from_millis(50),
        enabled: true,
        orphan_grace: Duration::from_secs(3600),
    };
    let engine = Engine::open_with_store(c, store.clone()).await.unwrap();
    let names: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
    let mut ids = HashMap::new();
    for n in &names {
        ids.insert(
            n.clone(),
            engine.create_collection(create(n)).await.unwrap().def.id,
        );
    }
    let mut tasks = vec![];
    // 10 writers × 100 documents into one collection.
    for w in 0..10u64 {
        let e = engine.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..100 {
                e.upsert("c0", vec![doc(w * 1000 + i)]).await.unwrap();
            }
        }));
    }
    // 50 tasks × 10 documents over the other nine collections.
    for t in 0..50u64 {
        let e = engine.clone();
        let name = names[1 + (t as usize % 9)].clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                e.upsert(&name, vec![doc(100_000 + t * 100 + i)])
                    .await
                    .unwrap();
            }
        }));
    }
    // 20 API workers reading meanwhile (which also promotes and loads).
    for r in 0..20u64 {
        let e = engine.clone();
        let name = names[r as usize % 10].clone();
        tasks.push(tokio::spawn(async move {
            for q in 0..10 {
                e.search(&name, hnsw_query(r * 10 + q)).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // 10 collections flushed at once.
    let flushes: Vec<_> = names
        .iter()
        .map(|n| {
            let e = engine.clone();
            let n = n.clone();
            tokio::spawn(async move {
                let _ = e.tier_action(&n, TierAction::Promote, None).await;
                e.flush_all().await
            })
        })
        .collect();
    for f in flushes {
        f.await.unwrap().unwrap();
    }
    let moves: u64 = engine.tier_moves().moves.iter().map(|m| m.2).sum();
    eprintln!("tier moves during the run: {moves}");
    assert!(moves > 0, "the tiering task never moved anything");
    // Every acknowledged document is stored exactly once and is searchable.
    let mut expected: HashMap<String, Vec<u64>> = HashMap::new();
    expected.insert(
        "c0".into(),
        (0..10)
            .flat_map(|w| (0..100).map(move |i| w * 1000 + i))
            .collect(),
    );
    for t in 0..50u64 {
        let name = names[1 + (t as usize % 9)].clone();
        expected
            .entry(name)
            .or_default()
            .extend((0..10).map(|i| 100_000 + t * 100 + i));
    }
    for (name, docs) in &expected {
        let rows = stored_rows(&store, &ids[name]).await;
        assert_eq!(rows.len(), docs.len(), "{name}: stored ids");
        for d in docs {
            assert_eq!(rows.get(&format!("d{d}")), Some(&1), "{name}: d{d}");
        }
        assert_eq!(
            engine.collection_info(name).await.unwrap().count,
            docs.len()
        );
        for d in docs.iter().step_by(25) {
            let mut q = hnsw_query(0);
            q.vector = vector(*d);
            q.exact = true;
            let top = &engine.search(name, q).await.unwrap()[0];
            assert_eq!(top.id, format!("d{d}"), "{name}");
        }
    }
}

/// Start-up reads (catalog, manifests) and cold reads are retried like uploads: with half of
/// all object-store calls failing transiently, the server still starts and answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_and_cold_reads_ride_out_transient_failures() {
    use akidb_engine::store::faulty::Fault;
    use akidb_engine::upload::retry::RetryPolicy;

    let inner: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let data = tempfile::tempdir().unwrap();
    let engine = Engine::open_with_store(config(data.path()), inner.clone())
        .await
        .unwrap();
    fill(&engine, "flaky").await;
    wait_indexed(&engine, "flaky").await;
    let hot = answers(&engine, "flaky").await;
    engine
        .tier_action("flaky", TierAction::Demote, Some(Tier::Cold))
        .await
        .unwrap();
    engine.shutdown().await;
    drop(engine);

    let faulty = Arc::new(FaultyStore::new(inner));
    faulty.fail_randomly(0.5, Fault::SLOW_DOWN, &[], 11);
    let data2 = tempfile::tempdir().unwrap();
    let mut c = config(data2.path());
    c.upload.retry = RetryPolicy {
        max_attempts: 30,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
    };
    c.upload.breaker_failure_threshold = 1000;
    let engine = Engine::open_with_store(c, faulty.clone()).await.unwrap();
    assert_eq!(engine.tier_info("flaky").unwrap().tier, Tier::Cold);
    assert_eq!(answers(&engine, "flaky").await, hot);
    let failed = faulty
        .history()
        .iter()
        .filter(|c| matches!(c.outcome, akidb_engine::store::faulty::Outcome::Failed(_)))
        .count();
    assert!(failed > 0, "no fault was injected");
}

/// Replacing and deleting documents leaves dead slots; compaction rewrites the collection with
/// only the live ones, answers the same, stores each id once, and survives a cold round trip and
/// a restart from the bucket alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_drops_dead_slots_and_keeps_every_answer() {
    let data = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let engine = Engine::open_with_store(config(data.path()), store.clone())
        .await
        .unwrap();
    let id = engine.create_collection(create("c")).await.unwrap().def.id;
    engine
        .upsert("c", (0..3000).map(doc).collect())
        .await
        .unwrap();
    engine.flush_all().await.unwrap();
    // Replace 2,000 documents (new vectors) and delete 100: 2,100 dead slots of 5,000.
    let replaced: Vec<_> = (0..2000)
        .map(|i| NewDocument {
            id: Some(format!("d{i}")),
            vector: vector(500_000 + i),
            metadata: Some(json!({"i": i, "v": 2})),
        })
        .collect();
    engine.upsert("c", replaced).await.unwrap();
    let gone: Vec<String> = (2900..3000).map(|i| format!("d{i}")).collect();
    engine.delete_documents("c", gone).await.unwrap();
    engine.flush_all().await.unwrap();
    let exact = |seed: u64| {
        let mut q = hnsw_query(seed);
        q.exact = true;
        q.k = 20;
        q
    };
    let mut before = vec![];
    for s in 0..20 {
        before.push(engine.search("c", exact(2_000_000 + s)).await.unwrap());
    }
    let ram_before = engine.tier_info("c").unwrap().bytes_in_ram;
    assert_eq!(engine.compact("c").await.unwrap(), 2100);
    assert_eq!(
        engine.compact("c").await.unwrap(),
        0,
        "nothing left to remove"
    );
    let info = engine.collection_info("c").await.unwrap();
    assert_eq!(info.count, 2900);
    assert!(
        info.tier.bytes_in_ram < ram_before,
        "{} !< {ram_before}",
        info.tier.bytes_in_ram
    );
    let ids = |hits: &Vec<akidb_engine::Hit>| {
        hits.iter()
            .map(|h| (h.id.clone(), h.score, h.metadata.clone()))
            .collect::<Vec<_>>()
    };
    for (s, expected) in before.iter().enumerate() {
        let got = engine
            .search("c", exact(2_000_000 + s as u64))
            .await
            .unwrap();
        assert_eq!(ids(&got), ids(expected));
    }
    // Each live id once in the store, nothing else.
    let rows = stored_rows(&store, &id).await;
    assert_eq!(rows.len(), 2900);
    assert!(rows.values().all(|&n| n == 1));
    // Cold and back, then a restart with an empty data dir: the same HNSW answers.
    wait_indexed(&engine, "c").await;
    let hot = answers(&engine, "c").await;
    engine
        .tier_action("c", TierAction::Demote, Some(Tier::Cold))
        .await
        .unwrap();
    assert_eq!(answers(&engine, "c").await, hot);
    engine.shutdown().await;
    drop(engine);
    let data2 = tempfile::tempdir().unwrap();
    let engine = Engine::open_with_store(config(data2.path()), store.clone())
        .await
        .unwrap();
    assert_eq!(answers(&engine, "c").await, hot);
    assert_eq!(
        engine
            .get_document("c", "d5")
            .await
            .unwrap()
            .metadata
            .unwrap()["v"],
        2
    );
    assert_eq!(engine.sweep_orphans(Duration::ZERO).await.unwrap(), 0);
}

/// The engine's S3 settings for a loopback server.
fn s3_options(ep: &akidb_testkit::S3Endpoint) -> akidb_engine::S3Options {
    akidb_engine::S3Options::static_credentials(
        &ep.endpoint,
        &ep.access_key_id,
        &ep.secret_access_key,
    )
}

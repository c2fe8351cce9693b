//! Partial reads of a partitioned base, on every store: `memory://`, `file://`, moto and
//! SeaweedFS, each wrapped in the fault-injecting store (no faults) for its call history.
//!
//! - a cold query reads the base's header and the partitions it needs with ranged GETs (and
//!   the small tail whole), a fraction of the collection's bytes, asserted from the call
//!   history and the query's own report;
//! - exact search (with and without a filter) gives the same answers and scores hot, cold,
//!   warm, after a restart with an empty data directory, and hot again, with documents
//!   replaced, deleted and added after the base (the tail);
//! - a warm query reads the local copy only.

use std::sync::Arc;
use std::time::Duration;

use akidb_core::Metric;
use akidb_engine::manifest::Manifest;
use akidb_engine::store::faulty::{FaultyStore, Op};
use akidb_engine::store::open_store;
use akidb_engine::tier::Tier;
use akidb_engine::{
    CreateCollection, Engine, EngineConfig, NewDocument, S3Options, SearchQuery, TierAction,
};
use akidb_testkit::{S3Endpoint, s3_servers, unique_prefix};
use object_store::ObjectStore;
use serde_json::json;

const DIM: usize = 32;
const BASE_DOCS: u64 = 4000;

fn config(dir: &std::path::Path) -> EngineConfig {
    let mut c = EngineConfig::new(dir);
    c.flush_idle = Duration::from_secs(3600);
    c.flush_max_age = Duration::from_secs(3600);
    c.background_flush = false;
    c.tiering.enabled = false;
    c.tiering.policy.promote_accesses = usize::MAX; // reads do not promote
    c.partitions.min_rows = 1000;
    c.partitions.tail_fraction = 0.5; // the tail below stays a tail
    c.partitions.threads = 2;
    c
}

/// Vectors around 20 seeded centres (so that partitions mean something).
fn vector(i: u64) -> Vec<f32> {
    let centre = akidb_testkit::seeded_vector(1_000_000 + i % 20, DIM);
    let noise = akidb_testkit::seeded_vector(i, DIM);
    centre
        .iter()
        .zip(&noise)
        .map(|(c, n)| c + 0.3 * n)
        .collect()
}

fn doc(id: String, i: u64) -> NewDocument {
    NewDocument {
        id: Some(id),
        vector: vector(i),
        metadata: Some(json!({"i": i, "even": i.is_multiple_of(2)})),
    }
}

fn exact(i: u64, filter: Option<serde_json::Value>) -> SearchQuery {
    SearchQuery {
        exact: true,
        filter,
        include_metadata: true,
        deadline: None,
        ..SearchQuery::new(vector(i), 10)
    }
}

type Answers = Vec<Vec<(String, f32, Option<serde_json::Value>)>>;

/// Exact answers to ten queries, five of them filtered.
async fn exact_answers(engine: &Engine) -> Answers {
    let mut out = Vec::new();
    for q in 0..10u64 {
        let filter = (q % 2 == 1).then(|| json!({"even": true}));
        let hits = engine
            .search("p", exact(q * 397 + 5, filter))
            .await
            .unwrap();
        out.push(
            hits.into_iter()
                .map(|h| {
                    let m = h.metadata.map(serde_json::Value::Object);
                    (h.id, h.score, m)
                })
                .collect(),
        );
    }
    out
}

fn stores(s3: &[S3Endpoint], dir: &std::path::Path) -> Vec<(&'static str, Arc<dyn ObjectStore>)> {
    let mut out: Vec<(&'static str, Arc<dyn ObjectStore>)> = vec![
        (
            "memory",
            open_store("memory://", &S3Options::default()).unwrap(),
        ),
        (
            "file",
            open_store(
                &format!("file://{}", dir.join("objects").display()),
                &S3Options::default(),
            )
            .unwrap(),
        ),
    ];
    for ep in s3 {
        let opts =
            S3Options::static_credentials(&ep.endpoint, &ep.access_key_id, &ep.secret_access_key);
        let url = ep.url(&unique_prefix("partial"));
        out.push((ep.kind, open_store(&url, &opts).unwrap()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_query_reads_part_of_the_base_and_exact_answers_match_in_every_tier() {
    let (_moto, s3) = s3_servers("akidb");
    let files = tempfile::tempdir().unwrap();
    for (kind, inner) in stores(&s3, files.path()) {
        let store = Arc::new(FaultyStore::new(inner.clone()));
        let data = tempfile::tempdir().unwrap();
        let engine = Engine::open_with_store(config(data.path()), store.clone())
            .await
            .unwrap();
        engine
            .create_collection(CreateCollection::new("p", DIM, Metric::Cosine))
            .await
            .unwrap();
        for chunk in 0..BASE_DOCS / 500 {
            let docs = (chunk * 500..(chunk + 1) * 500)
                .map(|i| doc(format!("d{i}"), i))
                .collect();
            engine.upsert("p", docs).await.unwrap();
        }
        engine.flush_all().await.unwrap();
        assert!(engine.build_base("p").await.unwrap(), "{kind}");
        // The tail: replaced, deleted and new documents after the base.
        let replaced = (1..100).map(|i| doc(format!("d{i}"), 50_000 + i)).collect();
        engine.upsert("p", replaced).await.unwrap();
        let deleted = (200..250).map(|i| format!("d{i}")).collect();
        engine.delete_documents("p", deleted).await.unwrap();
        let added = (0..200).map(|i| doc(format!("n{i}"), 60_000 + i)).collect();
        engine.upsert("p", added).await.unwrap();
        engine.flush_all().await.unwrap();
        let hot = exact_answers(&engine).await;
        assert!(hot.iter().all(|a| a.len() == 10), "{kind}");

        engine
            .tier_action("p", TierAction::Demote, Some(Tier::Cold))
            .await
            .unwrap();
        let id = engine.collection_info("p").await.unwrap().def.id;
        let manifest = Manifest::read_latest(&(store.clone() as Arc<dyn ObjectStore>), &id)
            .await
            .unwrap()
            .unwrap();
        let base = manifest.base.clone().expect("a base");
        assert_eq!(
            manifest.segments.len(),
            1,
            "{kind}: the tail is one segment"
        );
        let total = manifest.object_bytes();

        // A cold, approximate query: the header, then the nearest partitions, by range.
        store.clear_history();
        let (hits, report) = engine
            .search_with_report("p", SearchQuery::new(vector(5), 10))
            .await
            .unwrap();
        assert_eq!(hits.len(), 10, "{kind}");
        assert_eq!(report.tier, Some(Tier::Cold), "{kind}");
        let history = store.history();
        assert!(
            history.iter().all(|c| c.op == Op::Get),
            "{kind}: {history:?}"
        );
        let base_gets: Vec<_> = history.iter().filter(|c| c.path == base.path).collect();
        assert!(
            base_gets.iter().all(|c| c.range.is_some()),
            "{kind}: whole-base GET"
        );
        assert_eq!(
            base_gets.len(),
            1 + report.partitions,
            "{kind}: the header and one GET per partition"
        );
        assert_eq!(report.partitions, 8, "{kind}: the default probes");
        assert_eq!(report.object_store_gets as usize, base_gets.len(), "{kind}");
        let fraction = report.bytes_object_store as f64 / total as f64;
        assert!(
            fraction < 0.3,
            "{kind}: a cold query read {fraction:.2} of the collection's bytes"
        );
        // A second query reuses the header and the tail: only partitions are read.
        store.clear_history();
        engine
            .search_with_report("p", SearchQuery::new(vector(6), 10))
            .await
            .unwrap();
        assert!(
            store
                .history()
                .iter()
                .all(|c| c.path == base.path && c.range.is_some())
        );

        // The first query again: its partitions are in the block cache, the store is not called.
        store.clear_history();
        let (again, report) = engine
            .search_with_report("p", SearchQuery::new(vector(5), 10))
            .await
            .unwrap();
        assert!(store.history().is_empty(), "{kind}: {:?}", store.history());
        assert_eq!(report.tier, Some(Tier::Cold), "{kind}");
        assert_eq!(report.bytes_object_store, 0, "{kind}");
        assert!(report.bytes_local > 0, "{kind}");
        assert_eq!(
            again.iter().map(|h| &h.id).collect::<Vec<_>>(),
            hits.iter().map(|h| &h.id).collect::<Vec<_>>(),
            "{kind}"
        );
        assert!(engine.block_cache().bytes() > 0, "{kind}");

        // Documents by id, cold: the id index and one partition, never the whole base.
        store.clear_history();
        let d500 = engine.get_document("p", "d500").await.unwrap();
        assert_eq!(d500.metadata.unwrap()["i"], 500, "{kind}");
        assert_eq!(d500.vector.len(), DIM);
        let d1 = engine.get_document("p", "d1").await.unwrap();
        assert_eq!(
            d1.metadata.unwrap()["i"],
            50_001,
            "{kind}: replaced in the tail"
        );
        assert!(
            engine.get_document("p", "d200").await.is_err(),
            "{kind}: deleted"
        );
        assert!(engine.get_document("p", "nope").await.is_err(), "{kind}");
        assert_eq!(
            engine
                .get_document("p", "n5")
                .await
                .unwrap()
                .metadata
                .unwrap()["i"],
            60_005,
            "{kind}: added in the tail"
        );
        let history = store.history();
        assert!(
            history
                .iter()
                .all(|c| c.path == base.path && c.range.is_some()),
            "{kind}: {history:?}"
        );
        assert_eq!(engine.tier_info("p").unwrap().tier, Tier::Cold, "{kind}");

        assert_eq!(
            exact_answers(&engine).await,
            hot,
            "{kind}: cold exact answers"
        );

        engine
            .tier_action("p", TierAction::Promote, Some(Tier::Warm))
            .await
            .unwrap();
        store.clear_history();
        let (_, report) = engine
            .search_with_report("p", SearchQuery::new(vector(7), 10))
            .await
            .unwrap();
        assert_eq!(report.tier, Some(Tier::Warm), "{kind}");
        assert_eq!(report.bytes_object_store, 0, "{kind}");
        assert!(report.bytes_local > 0, "{kind}");
        assert!(
            store.history().is_empty(),
            "{kind}: a warm query called the store"
        );
        assert_eq!(
            exact_answers(&engine).await,
            hot,
            "{kind}: warm exact answers"
        );

        if kind != "memory" {
            // Damage in the local copy (header and partitions alike) is read around, from the
            // store, never reported as the collection's: the copy is a cache.
            engine.shutdown().await;
            drop(engine);
            let local = data
                .path()
                .join("collections")
                .join(&id)
                .join("segments")
                .join(base.path.rsplit('/').next().unwrap());
            let mut bytes = std::fs::read(&local).unwrap();
            let header_mid = (base.header.offset + base.header.len / 2) as usize;
            bytes[header_mid] ^= 0x20;
            for at in (0..bytes.len()).step_by(4099) {
                bytes[at] ^= 0x01;
            }
            std::fs::write(&local, bytes).unwrap();
            let engine = Engine::open_with_store(config(data.path()), store.clone())
                .await
                .unwrap();
            assert_eq!(engine.tier_info("p").unwrap().tier, Tier::Warm, "{kind}");
            assert_eq!(
                exact_answers(&engine).await,
                hot,
                "{kind}: damaged local copy"
            );
            assert_eq!(
                engine
                    .get_document("p", "d500")
                    .await
                    .unwrap()
                    .metadata
                    .unwrap()["i"],
                500,
                "{kind}"
            );
            engine.shutdown().await;
            drop(engine);
            // Another machine: an empty data directory, the same store.
            let data2 = tempfile::tempdir().unwrap();
            let store2 = Arc::new(FaultyStore::new(inner.clone()));
            let engine2 = Engine::open_with_store(config(data2.path()), store2)
                .await
                .unwrap();
            assert_eq!(
                exact_answers(&engine2).await,
                hot,
                "{kind}: after a restart"
            );
            let d1 = engine2.get_document("p", "d1").await.unwrap();
            assert_eq!(d1.metadata.unwrap()["i"], 50_001, "{kind}");
            assert!(engine2.get_document("p", "d200").await.is_err(), "{kind}");
            engine2
                .tier_action("p", TierAction::Promote, Some(Tier::Hot))
                .await
                .unwrap();
            assert_eq!(exact_answers(&engine2).await, hot, "{kind}: hot again");
            let info = engine2.collection_info("p").await.unwrap();
            assert_eq!(info.count as u64, BASE_DOCS - 50 + 200, "{kind}");
        } else {
            engine
                .tier_action("p", TierAction::Promote, Some(Tier::Hot))
                .await
                .unwrap();
            assert_eq!(exact_answers(&engine).await, hot, "{kind}: hot again");
        }
    }
}

/// An engine holding collection `p` of `BASE_DOCS` documents, demoted to cold (with a base).
async fn cold_collection(config: EngineConfig) -> Engine {
    filled_and_cold(Engine::open(config).await.unwrap()).await
}

/// `engine` with collection `p` of `BASE_DOCS` documents, demoted to cold (with a base).
async fn filled_and_cold(engine: Engine) -> Engine {
    engine
        .create_collection(CreateCollection::new("p", DIM, Metric::Cosine))
        .await
        .unwrap();
    let docs = (0..BASE_DOCS).map(|i| doc(format!("d{i}"), i)).collect();
    engine.upsert("p", docs).await.unwrap();
    engine
        .tier_action("p", TierAction::Demote, Some(Tier::Cold))
        .await
        .unwrap();
    engine
}

/// Approximate cold answers find most of the true neighbours at the default probes, and all
/// of them when every partition is probed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_recall_grows_with_nprobe() {
    let data = tempfile::tempdir().unwrap();
    let engine = cold_collection(config(data.path())).await;
    let mut found = [0usize; 2];
    let queries = 50u64;
    for q in 0..queries {
        let v = vector(q * 7919 + 13);
        let truth: Vec<String> = engine
            .search(
                "p",
                SearchQuery {
                    exact: true,
                    ..SearchQuery::new(v.clone(), 10)
                },
            )
            .await
            .unwrap()
            .into_iter()
            .map(|h| h.id)
            .collect();
        for (i, nprobe) in [None, Some(10_000)].into_iter().enumerate() {
            let (hits, report) = engine
                .search_with_report(
                    "p",
                    SearchQuery {
                        nprobe,
                        ..SearchQuery::new(v.clone(), 10)
                    },
                )
                .await
                .unwrap();
            assert_eq!(report.tier, Some(Tier::Cold));
            found[i] += hits.iter().filter(|h| truth.contains(&h.id)).count();
        }
    }
    let recall = found.map(|f| f as f64 / (10 * queries) as f64);
    assert!(
        recall[0] >= 0.8,
        "recall@10 at the default probes: {}",
        recall[0]
    );
    assert_eq!(recall[1], 1.0, "every partition probed");
}

/// The block cache stays within its disk budget, least recently used out, and a damaged block
/// is fetched again, never served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_block_cache_keeps_to_its_budget_and_refetches_damage() {
    let data = tempfile::tempdir().unwrap();
    let mut config = config(data.path());
    config.partitions.cache_disk_budget_bytes = 300_000;
    let engine = cold_collection(config).await;
    let truth = engine.search("p", exact(3, None)).await.unwrap();
    let blocks_dir = data
        .path()
        .join("collections")
        .join(engine.collection_info("p").await.unwrap().def.id)
        .join("blocks");
    let on_disk = || -> u64 {
        std::fs::read_dir(&blocks_dir)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum()
    };
    assert!(on_disk() <= 300_000, "an exact query read every partition");
    for q in 0..30 {
        engine
            .search("p", SearchQuery::new(vector(q * 31 + 1), 10))
            .await
            .unwrap();
        assert!(engine.block_cache().bytes() <= 300_000);
        assert!(on_disk() <= 300_000);
    }
    assert!(
        engine
            .block_cache()
            .evictions
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
    // Flip a byte in every kept block: the next exact query fetches again and answers right.
    for e in std::fs::read_dir(&blocks_dir).unwrap() {
        let path = e.unwrap().path();
        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x40;
        std::fs::write(&path, bytes).unwrap();
    }
    let again = engine.search("p", exact(3, None)).await.unwrap();
    let ids = |h: &[akidb_engine::Hit]| {
        h.iter()
            .map(|h| (h.id.clone(), h.score))
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&again), ids(&truth));
}

/// A promotion to hot loads in the background: searches of the partitioned collection are
/// answered (cold) while it runs, none fails, a write waits for it and is then visible.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_are_served_while_a_promotion_loads() {
    let data = tempfile::tempdir().unwrap();
    let store = Arc::new(FaultyStore::new(
        open_store("memory://", &S3Options::default()).unwrap(),
    ));
    let engine = Engine::open_with_store(config(data.path()), store.clone())
        .await
        .unwrap();
    let engine = filled_and_cold(engine).await;
    // Warm the header and tail so that searches during the load are one round each.
    engine
        .search("p", SearchQuery::new(vector(1), 10))
        .await
        .unwrap();
    store.set_latency(Duration::from_millis(300));
    let promotion = {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine
                .tier_action("p", TierAction::Promote, Some(Tier::Hot))
                .await
        })
    };
    // Searches start once the promotion is loading (it holds the tier lock shared meanwhile).
    while !engine.tier_info("p").unwrap().promoting {
        assert!(
            !promotion.is_finished(),
            "the promotion ended before it was seen loading"
        );
        tokio::task::yield_now().await;
    }
    let mut during = 0;
    for q in 0..20 {
        let finished = promotion.is_finished();
        let (hits, report) = engine
            .search_with_report("p", SearchQuery::new(vector(q + 100), 10))
            .await
            .unwrap();
        assert_eq!(hits.len(), 10);
        if finished || report.tier == Some(Tier::Hot) {
            assert_eq!(report.tier, Some(Tier::Hot));
            break;
        }
        assert_eq!(report.tier, Some(Tier::Cold));
        during += 1;
    }
    assert!(
        during > 0,
        "no search was answered while the promotion loaded"
    );
    let write = engine.upsert("p", vec![doc("late".into(), 99)]);
    write.await.unwrap();
    promotion.await.unwrap().unwrap();
    assert_eq!(engine.tier_info("p").unwrap().tier, Tier::Hot);
    let hit = engine.search("p", exact(99, None)).await.unwrap();
    assert!(hit.iter().any(|h| h.id == "late"));
}

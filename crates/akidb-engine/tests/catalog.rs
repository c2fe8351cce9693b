//! The catalog across restarts: a start from a catalog checkpoint reads one object, not a
//! manifest per collection; after a crash the summaries are brought up to date; interrupted
//! deletes are finished; a damaged checkpoint is skipped.

use std::sync::Arc;
use std::time::Duration;

use akidb_core::Metric;
use akidb_engine::TierAction;
use akidb_engine::store::faulty::{FaultyStore, Op};
use akidb_engine::tier::Tier;
use akidb_engine::{CollectionStatus, CreateCollection, Engine, EngineConfig, NewDocument};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

const DIM: usize = 4;

fn config(dir: &std::path::Path) -> EngineConfig {
    let mut c = EngineConfig::new(dir);
    c.flush_idle = Duration::from_secs(3600);
    c.flush_max_age = Duration::from_secs(3600);
    c.tiering.enabled = false;
    c
}

fn docs(from: usize, n: usize) -> Vec<NewDocument> {
    (from..from + n)
        .map(|i| NewDocument {
            id: Some(format!("d{i}")),
            vector: vec![i as f32 + 1.0, 1.0, 0.5, 0.25],
            metadata: None,
        })
        .collect()
}

async fn open(dir: &std::path::Path, store: &Arc<FaultyStore>) -> Engine {
    Engine::open_with_store(config(dir), store.clone())
        .await
        .unwrap()
}

/// `count` collections `c0..`, `docs_each` documents each, all demoted to cold.
async fn populate(engine: &Engine, count: usize, docs_each: usize) {
    for i in 0..count {
        let name = format!("c{i}");
        engine
            .create_collection(CreateCollection::new(name.clone(), DIM, Metric::L2))
            .await
            .unwrap();
        engine.upsert(&name, docs(0, docs_each)).await.unwrap();
        engine
            .tier_action(&name, TierAction::Demote, Some(Tier::Cold))
            .await
            .unwrap();
    }
}

fn counts(engine: &Engine) -> Vec<(String, usize)> {
    engine
        .list_collections()
        .into_iter()
        .map(|s| match s {
            CollectionStatus::Ready(info) => (info.def.name, info.count),
            CollectionStatus::Failed { def, reason } => panic!("{} failed: {reason}", def.name),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_restart_reads_one_checkpoint_not_every_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FaultyStore::new(Arc::new(InMemory::new())));
    let engine = open(dir.path(), &store).await;
    populate(&engine, 50, 3).await;
    let before = counts(&engine);
    engine.shutdown().await;
    drop(engine);

    store.clear_history();
    let engine = open(dir.path(), &store).await;
    let manifest_reads: Vec<_> = store
        .history()
        .into_iter()
        .filter(|c| c.op == Op::Get && c.path.contains("/manifest/"))
        .collect();
    assert!(
        manifest_reads.is_empty(),
        "a start from a clean checkpoint read manifests: {manifest_reads:?}"
    );
    assert_eq!(counts(&engine), before);
    let hits = engine
        .search(
            "c7",
            akidb_engine::SearchQuery {
                exact: true,
                ..akidb_engine::SearchQuery::new(vec![2.0, 1.0, 0.5, 0.25], 1)
            },
        )
        .await
        .unwrap();
    assert_eq!(hits[0].id, "d1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_crash_summaries_catch_up_and_reads_see_the_newest_data() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FaultyStore::new(Arc::new(InMemory::new())));
    let engine = open(dir.path(), &store).await;
    populate(&engine, 10, 3).await;
    engine.shutdown().await;
    drop(engine);

    // A start from the clean checkpoint, then changes the checkpoint does not hold, then a
    // crash (no shutdown, no new checkpoint).
    let engine = open(dir.path(), &store).await;
    engine.upsert("c4", docs(3, 7)).await.unwrap();
    engine
        .tier_action("c4", TierAction::Demote, Some(Tier::Cold))
        .await
        .unwrap();
    drop(engine);

    let engine = open(dir.path(), &store).await;
    // Reading c4 finds its newest manifest, whatever the checkpoint said.
    let doc = engine.get_document("c4", "d9").await.unwrap();
    assert_eq!(doc.vector[0], 10.0);
    // And the list catches up in the background for the rest.
    let want: Vec<(String, usize)> = (0..10)
        .map(|i| (format!("c{i}"), if i == 4 { 10 } else { 3 }))
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_iter()
        .collect();
    for _ in 0..100 {
        if counts(&engine) == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("summaries did not catch up: {:?}", counts(&engine));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_delete_is_finished_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let store = Arc::new(FaultyStore::new(inner.clone()));
    let engine = open(dir.path(), &store).await;
    populate(&engine, 3, 5).await;
    let ids: Vec<String> = engine
        .list_collections()
        .into_iter()
        .map(|s| match s {
            CollectionStatus::Ready(info) => info.def.id,
            CollectionStatus::Failed { def, .. } => def.id,
        })
        .collect();
    engine.shutdown().await;
    drop(engine);
    // A crash right after a delete marker was written.
    inner
        .put(
            &Path::from(format!("deleted/{}", ids[0])),
            PutPayload::from_static(b"{}"),
        )
        .await
        .unwrap();
    let engine = open(dir.path(), &store).await;
    assert_eq!(
        counts(&engine),
        vec![("c1".to_string(), 5), ("c2".to_string(), 5)]
    );
    engine.shutdown().await;
    drop(engine);
    // The marker of earlier versions (which wrote no catalog checkpoint), mid-delete.
    let checkpoints: Vec<_> = inner
        .list(Some(&Path::from("catalog")))
        .collect::<Vec<_>>()
        .await;
    for m in checkpoints {
        inner.delete(&m.unwrap().location).await.unwrap();
    }
    inner
        .put(
            &Path::from(format!("collections/{}/DELETED", ids[1])),
            PutPayload::from_static(b"{}"),
        )
        .await
        .unwrap();
    let engine = open(dir.path(), &store).await;
    assert_eq!(counts(&engine), vec![("c2".to_string(), 5)]);
    for id in &ids[..2] {
        let left: Vec<_> = inner
            .list(Some(&Path::from(format!("collections/{id}"))))
            .collect::<Vec<_>>()
            .await;
        assert!(left.is_empty(), "{id}: {left:?}");
    }
    let markers: Vec<_> = inner
        .list(Some(&Path::from("deleted")))
        .collect::<Vec<_>>()
        .await;
    assert!(markers.is_empty(), "{markers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_checkpoint_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let store = Arc::new(FaultyStore::new(inner.clone()));
    let engine = open(dir.path(), &store).await;
    populate(&engine, 5, 2).await;
    engine.shutdown().await;
    drop(engine);
    let engine = open(dir.path(), &store).await;
    engine.shutdown().await;
    drop(engine);
    // Flip a byte in the newest checkpoint: the one before it (or the manifests) serve.
    let mut newest = inner
        .list(Some(&Path::from("catalog")))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(|m| m.unwrap().location)
        .filter(|p| p.as_ref().ends_with(".json"))
        .collect::<Vec<_>>();
    newest.sort();
    let newest = newest.pop().unwrap();
    let mut data = inner
        .get(&newest)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let mid = data.len() / 2;
    data[mid] ^= 0x20;
    inner.put(&newest, data.into()).await.unwrap();
    let engine = open(dir.path(), &store).await;
    assert_eq!(counts(&engine).len(), 5);
    assert!(counts(&engine).iter().all(|(_, n)| *n == 2));
}

use futures::StreamExt;

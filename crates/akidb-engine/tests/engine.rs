//! Engine-level behaviour on the embedded local-filesystem store: durability across reopen,
//! flush into segments, WAL truncation, replace and delete semantics, filters.

use std::time::Duration;

use akidb_core::Metric;
use akidb_engine::{CreateCollection, Engine, EngineConfig, EngineError, NewDocument, SearchQuery};
use serde_json::json;

fn config(dir: &std::path::Path) -> EngineConfig {
    let mut c = EngineConfig::new(dir);
    // Only explicit flushes in these tests.
    c.flush_idle = Duration::from_secs(3600);
    c.flush_max_age = Duration::from_secs(3600);
    c
}

fn vector(i: usize, dim: usize) -> Vec<f32> {
    (0..dim)
        .map(|j| ((i * 31 + j * 7) % 97) as f32 / 97.0 - 0.5)
        .collect()
}

fn doc(i: usize, dim: usize) -> NewDocument {
    NewDocument {
        id: Some(format!("doc-{i}")),
        vector: vector(i, dim),
        metadata: Some(json!({"i": i, "parity": if i.is_multiple_of(2) { "even" } else { "odd" }})),
    }
}

fn query(v: Vec<f32>, k: usize) -> SearchQuery {
    SearchQuery {
        vector: v,
        k,
        ef: None,
        nprobe: None,
        exact: true,
        filter: None,
        include_vector: false,
        include_metadata: true,
        deadline: None,
        text: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_survive_reopen_with_and_without_flush() {
    let dir = tempfile::tempdir().unwrap();
    let dim = 8;
    {
        let engine = Engine::open(config(dir.path())).await.unwrap();
        engine
            .create_collection(CreateCollection::new("docs", dim, Metric::L2))
            .await
            .unwrap();
        let batch: Vec<_> = (0..100).map(|i| doc(i, dim)).collect();
        assert_eq!(engine.upsert("docs", batch).await.unwrap().len(), 100);
        engine.flush_all().await.unwrap(); // 100 docs into a segment
        let info = engine.collection_info("docs").await.unwrap();
        assert_eq!(
            (info.segments, info.unflushed, info.manifest_version),
            (1, 0, 2)
        );
        // After the flush: replace one, delete one, add one; these live only in the WAL.
        let mut replaced = doc(5, dim);
        replaced.vector = vec![9.0; dim];
        replaced.metadata = Some(json!({"replaced": true}));
        engine
            .upsert("docs", vec![replaced, doc(100, dim)])
            .await
            .unwrap();
        assert_eq!(
            engine
                .delete_documents("docs", vec!["doc-7".into(), "nope".into()])
                .await
                .unwrap(),
            1
        );
        // dropped without shutdown: no flush, as after a crash
    }
    let engine = Engine::open(config(dir.path())).await.unwrap();
    let info = engine.collection_info("docs").await.unwrap();
    assert_eq!(info.count, 100);
    let five = engine.get_document("docs", "doc-5").await.unwrap();
    assert_eq!(five.vector, vec![9.0; dim]);
    assert_eq!(five.metadata.unwrap()["replaced"], json!(true));
    assert!(matches!(
        engine.get_document("docs", "doc-7").await,
        Err(EngineError::DocumentNotFound { .. })
    ));
    assert!(engine.get_document("docs", "doc-100").await.is_ok());

    // The replaced vector is found at its new place only.
    let hits = engine
        .search("docs", query(vec![9.0; dim], 3))
        .await
        .unwrap();
    assert_eq!(hits[0].id, "doc-5");
    assert_eq!(hits[0].score, 0.0);
    assert_eq!(hits.iter().filter(|h| h.id == "doc-5").count(), 1);

    // Flush again: the tombstone for doc-7 and the replacement go to a second segment.
    engine.flush_all().await.unwrap();
    drop(engine);
    let engine = Engine::open(config(dir.path())).await.unwrap();
    assert_eq!(engine.collection_info("docs").await.unwrap().count, 100);
    assert_eq!(engine.collection_info("docs").await.unwrap().segments, 2);
    assert!(engine.get_document("docs", "doc-7").await.is_err());
    assert_eq!(
        engine.get_document("docs", "doc-5").await.unwrap().vector,
        vec![9.0; dim]
    );
    // The WAL files the manifest covers are gone.
    assert_eq!(engine.collection_info("docs").await.unwrap().wal_bytes, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_return_k_matches() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(config(dir.path())).await.unwrap();
    engine
        .create_collection(CreateCollection::new("f", 4, Metric::Cosine))
        .await
        .unwrap();
    let batch: Vec<_> = (0..2000).map(|i| doc(i + 1, 4)).collect();
    engine.upsert("f", batch).await.unwrap();
    let mut q = query(vector(3, 4), 10);
    q.exact = false;
    q.filter = Some(json!({"i": {"$in": [1, 2, 3, 500, 1999]}}));
    let hits = engine.search("f", q.clone()).await.unwrap();
    let mut ids: Vec<_> = hits.iter().map(|h| h.id.clone()).collect();
    ids.sort();
    assert_eq!(ids, vec!["doc-1", "doc-1999", "doc-2", "doc-3", "doc-500"]);
    q.filter = Some(json!({"parity": "odd"}));
    let hits = engine.search("f", q).await.unwrap();
    assert_eq!(hits.len(), 10);
    assert!(
        hits.iter()
            .all(|h| h.metadata.as_ref().unwrap()["parity"] == "odd")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_collection_removes_its_data_and_frees_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(config(dir.path())).await.unwrap();
    engine
        .create_collection(CreateCollection::new("tmp", 4, Metric::Dot))
        .await
        .unwrap();
    engine.upsert("tmp", vec![doc(1, 4)]).await.unwrap();
    engine.flush_all().await.unwrap();
    assert!(matches!(
        engine
            .create_collection(CreateCollection::new("tmp", 4, Metric::Dot))
            .await,
        Err(EngineError::CollectionExists(_))
    ));
    engine.delete_collection("tmp").await.unwrap();
    // Only the store's identity (which store this data directory belongs to) and the data
    // directory's lock file stay.
    let leftovers: Vec<_> = walkdir(dir.path())
        .into_iter()
        .filter(|p| p.is_file())
        .filter(|p| {
            !p.ends_with("store.json") && !p.ends_with("objects/akidb.json") && !p.ends_with("LOCK")
        })
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
    engine
        .create_collection(CreateCollection::new("tmp", 4, Metric::Dot))
        .await
        .unwrap();
    assert_eq!(engine.collection_info("tmp").await.unwrap().count, 0);
    drop(engine);
    let engine = Engine::open(config(dir.path())).await.unwrap();
    assert_eq!(engine.list_collections().len(), 1);
}

fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corruption_fails_only_the_collection_it_is_in() {
    let dir = tempfile::tempdir().unwrap();
    let (bad_id, worse_id) = {
        let engine = Engine::open(config(dir.path())).await.unwrap();
        let mut ids = vec![];
        for name in ["good", "bad", "worse"] {
            ids.push(
                engine
                    .create_collection(CreateCollection::new(name, 4, Metric::L2))
                    .await
                    .unwrap()
                    .def
                    .id,
            );
            for i in 0..3 {
                engine.upsert(name, vec![doc(i, 4)]).await.unwrap();
            }
        }
        (ids[1].clone(), ids[2].clone())
    };
    // Flip a byte inside the first WAL record of "bad": corruption in the middle of the log.
    let wal_dir = dir.path().join("collections").join(&bad_id).join("wal");
    let wal_file = std::fs::read_dir(&wal_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&wal_file).unwrap();
    bytes[20] ^= 0xff;
    std::fs::write(&wal_file, bytes).unwrap();
    // Truncate the manifest of "worse" to garbage.
    let manifest_dir = dir
        .path()
        .join("objects/collections")
        .join(&worse_id)
        .join("manifest");
    let manifest = std::fs::read_dir(&manifest_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&manifest, b"{\"format\": 1, \"vers").unwrap();

    let engine = Engine::open(config(dir.path())).await.unwrap();
    // Restart is lazy: "good" loads (replaying its WAL) on its first use.
    engine.upsert("good", vec![doc(10, 4)]).await.unwrap();
    assert_eq!(engine.collection_info("good").await.unwrap().count, 4);
    match engine.collection_info("bad").await {
        Err(EngineError::CollectionUnavailable { reason, .. }) => {
            assert!(reason.contains("corrupted"), "{reason}")
        }
        other => panic!(
            "expected bad to be unavailable, got {:?}",
            other.map(|i| i.count)
        ),
    }
    assert!(matches!(
        engine.upsert("bad", vec![doc(1, 4)]).await,
        Err(EngineError::CollectionUnavailable { .. })
    ));
    assert!(matches!(
        engine.collection_info(&worse_id).await,
        Err(EngineError::CollectionUnavailable { .. })
    ));
    let listed = engine.list_collections();
    assert_eq!(listed.len(), 3);
    let unavailable = listed
        .iter()
        .filter(|s| matches!(s, akidb_engine::CollectionStatus::Failed { .. }))
        .count();
    assert_eq!(unavailable, 2);
}

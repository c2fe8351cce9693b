//! Small segments are merged (see `collection/merge.rs`): a collection demoted after every
//! small write keeps a handful of segments instead of one per demotion, and its documents, its
//! exact and HNSW answers (the saved graph still matches its slots) and a restart from the
//! object store alone are unchanged; the replaced segments are deleted, not left as orphans.
//! On the in-memory store, moto, and SeaweedFS when `scripts/s3-servers` started it.

use std::collections::BTreeMap;
use std::time::Duration;

use akidb_core::Metric;
use akidb_engine::store::open_store;
use akidb_engine::tier::Tier;
use akidb_engine::{
    CreateCollection, Engine, EngineConfig, Hit, NewDocument, S3Options, SearchQuery, TierAction,
};
use akidb_testkit::{s3_servers, unique_prefix};
use serde_json::json;

const DIM: usize = 16;
const ROUNDS: u64 = 40;

fn config(dir: &std::path::Path, url: &str, s3: &S3Options) -> EngineConfig {
    let mut c = EngineConfig::new(dir);
    c.flush_idle = Duration::from_secs(3600);
    c.flush_max_age = Duration::from_secs(3600);
    c.background_flush = false;
    c.tiering.enabled = false;
    c.object_store = Some(url.to_string());
    c.s3 = s3.clone();
    c
}

fn doc(i: u64, version: u64) -> NewDocument {
    NewDocument {
        id: Some(format!("d{i}")),
        vector: akidb_testkit::seeded_vector(i * 1_000 + version, DIM),
        metadata: Some(json!({"i": i, "v": version})),
    }
}

fn query(seed: u64, exact: bool) -> SearchQuery {
    SearchQuery {
        vector: akidb_testkit::seeded_vector(9_000_000 + seed, DIM),
        k: 10,
        ef: None,
        nprobe: None,
        exact,
        filter: None,
        include_vector: false,
        include_metadata: true,
        deadline: None,
        text: None,
    }
}

async fn answers(engine: &Engine, exact: bool) -> Vec<Vec<(String, f32)>> {
    let mut out = vec![];
    for q in 0..20 {
        let hits: Vec<Hit> = engine.search("m", query(q, exact)).await.unwrap();
        out.push(hits.into_iter().map(|h| (h.id, h.score)).collect());
    }
    out
}

/// Every expected document is there with its latest version, and no deleted one.
async fn check_documents(engine: &Engine, expected: &BTreeMap<u64, Option<u64>>, kind: &str) {
    for (&i, version) in expected {
        let got = engine.get_document("m", &format!("d{i}")).await;
        match version {
            Some(v) => {
                let got = got.unwrap_or_else(|e| panic!("{kind}: d{i}: {e}"));
                assert_eq!(got.vector, doc(i, *v).vector, "{kind}: d{i}");
                assert_eq!(got.metadata.unwrap()["v"], json!(v), "{kind}: d{i}");
            }
            None => assert!(got.is_err(), "{kind}: d{i} was deleted"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demotions_after_small_writes_keep_few_segments_and_every_answer() {
    let (_moto, s3) = s3_servers("akidb");
    let mut targets = vec![("memory", "memory://".to_string(), S3Options::default())];
    for ep in &s3 {
        let options =
            S3Options::static_credentials(&ep.endpoint, &ep.access_key_id, &ep.secret_access_key);
        targets.push((ep.kind, ep.url(&unique_prefix("merge")), options));
    }
    for (kind, url, s3) in targets {
        let data = tempfile::tempdir().unwrap();
        let store = open_store(&url, &s3).unwrap();
        let engine = Engine::open_with_store(config(data.path(), &url, &s3), store.clone())
            .await
            .unwrap();
        engine
            .create_collection(CreateCollection::new("m", DIM, Metric::L2))
            .await
            .unwrap();
        let mut expected = BTreeMap::new();
        engine
            .upsert("m", (0..1_000).map(|i| doc(i, 0)).collect())
            .await
            .unwrap();
        expected.extend((0..1_000).map(|i| (i, Some(0))));
        // A small write, then a demotion (which flushes it as a segment of its own), 40 times:
        // new documents, a replaced one, and every fifth round a deleted one.
        for round in 0..ROUNDS {
            let new = 1_000 + round * 10..1_000 + round * 10 + 10;
            let mut docs: Vec<_> = new.clone().map(|i| doc(i, 0)).collect();
            docs.push(doc(round, round + 1));
            engine.upsert("m", docs).await.unwrap();
            expected.extend(new.map(|i| (i, Some(0))));
            expected.insert(round, Some(round + 1));
            if round % 5 == 4 {
                let gone = 500 + round;
                engine
                    .delete_documents("m", vec![format!("d{gone}")])
                    .await
                    .unwrap();
                expected.insert(gone, None);
            }
            let info = engine
                .tier_action("m", TierAction::Demote, Some(Tier::Warm))
                .await
                .unwrap();
            assert_eq!(info.tier, Tier::Warm, "{kind}");
        }
        // 41 flushes; without merging, 41 segments. Merged by levels of 8: the large first
        // one, and fewer than 8 at each of the two levels below it.
        let segments = engine.collection_info("m").await.unwrap().segments;
        assert!(segments <= 15, "{kind}: {segments} segments");

        check_documents(&engine, &expected, kind).await;
        let exact = answers(&engine, true).await;
        // Make it hot and fully indexed; its HNSW answers are then the reference.
        engine
            .tier_action("m", TierAction::Promote, None)
            .await
            .unwrap();
        let mut polls = 0;
        while engine.collection_info("m").await.unwrap().index_pending > 0 {
            polls += 1;
            assert!(polls < 6_000, "{kind}: not indexed within 60 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let hnsw = answers(&engine, false).await;
        assert_eq!(answers(&engine, true).await, exact, "{kind}: exact, hot");
        // Cold (the saved graph, loaded over the merged segments), then a restart with an
        // empty data dir: the same answers and documents.
        engine
            .tier_action("m", TierAction::Demote, Some(Tier::Cold))
            .await
            .unwrap();
        assert_eq!(answers(&engine, false).await, hnsw, "{kind}: hnsw, cold");
        engine.shutdown().await;
        drop(engine);
        let data2 = tempfile::tempdir().unwrap();
        let engine = Engine::open_with_store(config(data2.path(), &url, &s3), store.clone())
            .await
            .unwrap();
        assert_eq!(
            answers(&engine, false).await,
            hnsw,
            "{kind}: hnsw, restarted"
        );
        assert_eq!(
            answers(&engine, true).await,
            exact,
            "{kind}: exact, restarted"
        );
        check_documents(&engine, &expected, kind).await;
        // The merged-away segments were deleted: nothing is left for the sweep.
        assert_eq!(
            engine.sweep_orphans(Duration::ZERO).await.unwrap(),
            0,
            "{kind}"
        );
        engine.shutdown().await;
    }
}

//! The filter language in every tier: random filters over random metadata (the testkit's
//! generators), each answered by search (exact and approximate), count and scroll while the
//! collection is hot (without and with payload indexes on every field), warm and cold (a
//! partitioned base plus a tail of replaced, deleted and new documents), and after a restart,
//! compared with the testkit's brute-force oracle. Then delete by filter.

use std::collections::BTreeSet;
use std::time::Duration;

use akidb_core::Metric;
use akidb_engine::tier::Tier;
use akidb_engine::{
    CreateCollection, Engine, EngineConfig, IndexType, NewDocument, ScrollQuery, SearchQuery,
    TierAction,
};
use akidb_testkit::filters::{Rng, filter_oracle, random_filter, random_metadata};
use serde_json::{Map, Value};

const DIM: usize = 8;
const DOCS: usize = 1500;

fn config(dir: &std::path::Path) -> EngineConfig {
    let mut c = EngineConfig::new(dir);
    c.flush_idle = Duration::from_secs(3600);
    c.flush_max_age = Duration::from_secs(3600);
    c.background_flush = false;
    c.tiering.enabled = false;
    c.tiering.policy.promote_accesses = usize::MAX; // reads do not promote
    c.partitions.min_rows = 1000;
    c.partitions.tail_fraction = 0.5;
    c.partitions.threads = 2;
    c
}

/// What the collection holds, by id: the oracle's side.
type Truth = std::collections::BTreeMap<String, Option<Map<String, Value>>>;

async fn upsert(
    engine: &Engine,
    truth: &mut Truth,
    rng: &mut Rng,
    ids: impl Iterator<Item = usize>,
) {
    let docs: Vec<NewDocument> = ids
        .map(|i| {
            let m = random_metadata(rng);
            truth.insert(format!("d{i:05}"), m.clone());
            NewDocument {
                id: Some(format!("d{i:05}")),
                vector: akidb_testkit::seeded_vector(rng.next_u64(), DIM),
                metadata: m.map(Value::Object),
            }
        })
        .collect();
    engine.upsert("f", docs).await.unwrap();
}

fn matching(truth: &Truth, filter: &Value) -> BTreeSet<String> {
    truth
        .iter()
        .filter(|(_, m)| filter_oracle(filter, m.as_ref()))
        .map(|(id, _)| id.clone())
        .collect()
}

async fn check_searches(engine: &Engine, truth: &Truth, filters: &[Value], tier: &str) {
    for (n, f) in filters.iter().enumerate() {
        let want = matching(truth, f);
        let q = akidb_testkit::seeded_vector(n as u64, DIM);
        let all = engine
            .search(
                "f",
                SearchQuery {
                    exact: true,
                    filter: Some(f.clone()),
                    ..SearchQuery::new(q.clone(), DOCS)
                },
            )
            .await
            .unwrap();
        let got: BTreeSet<String> = all.into_iter().map(|h| h.id).collect();
        assert_eq!(got, want, "{tier}: exact search with {f}");
        let top = engine
            .search(
                "f",
                SearchQuery {
                    filter: Some(f.clone()),
                    ..SearchQuery::new(q, 10)
                },
            )
            .await
            .unwrap();
        assert_eq!(top.len(), want.len().min(10), "{tier}: top 10 with {f}");
        assert!(top.iter().all(|h| want.contains(&h.id)), "{tier}: {f}");
    }
}

async fn check_listings(engine: &Engine, truth: &Truth, filters: &[Value], tier: &str) {
    for f in filters {
        let want = matching(truth, f);
        let count = engine.count("f", Some(f.clone())).await.unwrap();
        assert_eq!(count, want.len(), "{tier}: count with {f}");
        let mut got = Vec::new();
        let mut cursor = None;
        loop {
            let page = engine
                .scroll(
                    "f",
                    ScrollQuery {
                        filter: Some(f.clone()),
                        limit: 97,
                        cursor,
                        include_metadata: true,
                        include_vector: false,
                    },
                )
                .await
                .unwrap();
            for d in &page.documents {
                assert_eq!(
                    d.metadata.as_ref(),
                    truth[&d.id].as_ref(),
                    "{tier}: metadata of {}",
                    d.id
                );
            }
            got.extend(page.documents.into_iter().map(|d| d.id));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let want: Vec<String> = want.into_iter().collect();
        assert_eq!(got, want, "{tier}: scroll with {f} (id order, each once)");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_filter_agrees_with_the_oracle_in_every_tier() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(config(dir.path())).await.unwrap();
    engine
        .create_collection(CreateCollection::new("f", DIM, Metric::L2))
        .await
        .unwrap();
    let mut rng = Rng::new(7);
    let mut truth = Truth::new();
    upsert(&engine, &mut truth, &mut rng, 0..DOCS).await;
    engine.flush_all().await.unwrap();
    // Demoted once so that a partitioned base is built; then a tail: replaced, deleted, new.
    engine
        .tier_action("f", TierAction::Demote, Some(Tier::Cold))
        .await
        .unwrap();
    engine
        .tier_action("f", TierAction::Promote, None)
        .await
        .unwrap();
    upsert(&engine, &mut truth, &mut rng, (0..DOCS).step_by(7)).await;
    upsert(&engine, &mut truth, &mut rng, DOCS..DOCS + 100).await;
    let gone: Vec<String> = (1..DOCS).step_by(11).map(|i| format!("d{i:05}")).collect();
    gone.iter().for_each(|id| {
        truth.remove(id);
    });
    engine.delete_documents("f", gone).await.unwrap();
    engine.flush_all().await.unwrap();

    let filters: Vec<Value> = (0..120).map(|_| random_filter(&mut rng, 3)).collect();
    check_searches(&engine, &truth, &filters, "hot").await;
    check_listings(&engine, &truth, &filters, "hot").await;

    // The same answers through payload indexes (candidates, planner, scans of the matches),
    // built over the hot state, and then at every load.
    for (field, kind) in [
        ("n", IndexType::Integer),
        ("n", IndexType::Float),
        ("s", IndexType::Keyword),
        ("b", IndexType::Bool),
        ("tags", IndexType::Keyword),
        ("o.x", IndexType::Keyword),
        ("o.y", IndexType::Float),
    ] {
        assert!(engine.create_payload_index("f", field, kind).await.unwrap());
    }
    assert!(
        !engine
            .create_payload_index("f", "n", IndexType::Integer)
            .await
            .unwrap()
    );
    assert_eq!(
        engine
            .collection_info("f")
            .await
            .unwrap()
            .def
            .payload_indexes
            .len(),
        7
    );
    check_searches(&engine, &truth, &filters, "hot, indexed").await;
    check_listings(&engine, &truth, &filters, "hot, indexed").await;

    engine
        .tier_action("f", TierAction::Demote, Some(Tier::Cold))
        .await
        .unwrap();
    let info = engine.collection_info("f").await.unwrap();
    assert!(info.segments > 0);
    check_searches(&engine, &truth, &filters, "cold").await;
    // A listing of a cold collection fetches it to local disk first: it is warm afterwards.
    check_listings(&engine, &truth, &filters, "cold").await;
    assert_eq!(
        engine.collection_info("f").await.unwrap().tier.tier,
        Tier::Warm
    );
    check_searches(&engine, &truth, &filters, "warm").await;
    check_listings(&engine, &truth, &filters, "warm").await;

    // Delete by filter removes exactly the matching documents, in any tier.
    let f = serde_json::json!({"$or": [{"n": {"$gte": 3}}, {"tags": "a"}]});
    let want = matching(&truth, &f);
    assert!(want.len() > 50, "{}", want.len());
    let deleted = engine.delete_by_filter("f", f.clone()).await.unwrap();
    assert_eq!(deleted, want.len());
    truth.retain(|id, _| !want.contains(id));
    assert_eq!(engine.count("f", Some(f)).await.unwrap(), 0);
    assert_eq!(engine.count("f", None).await.unwrap(), truth.len());
    engine
        .tier_action("f", TierAction::Promote, None)
        .await
        .unwrap();
    check_listings(&engine, &truth, &filters[..20], "hot after delete").await;
}

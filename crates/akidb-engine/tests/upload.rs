//! The upload path under limits and faults, through the engine, over `FaultyStore` wrapping a
//! real in-memory store. Every test checks what actually ended up in the store.

use std::sync::Arc;
use std::time::Duration;

use akidb_core::Metric;
use akidb_engine::manifest::Manifest;
use akidb_engine::segment::{self, Row};
use akidb_engine::store::faulty::{Fault, FaultyStore, Op, Outcome, Step, max_concurrent};
use akidb_engine::upload::retry::RetryPolicy;
use akidb_engine::{CreateCollection, Engine, EngineConfig, FlushError, NewDocument, SearchQuery};
use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt};

const DIM: usize = 4;

struct Setup {
    engine: Engine,
    faulty: Arc<FaultyStore>,
    inner: Arc<dyn ObjectStore>,
    id: String,
    _dir: tempfile::TempDir,
}

fn config(dir: &std::path::Path, batch: usize) -> EngineConfig {
    let mut c = EngineConfig::new(dir);
    c.flush_max_docs = batch;
    c.flush_idle = Duration::from_secs(3600);
    c.flush_max_age = Duration::from_secs(3600);
    c.upload.retry = RetryPolicy {
        max_attempts: 10,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(20),
    };
    c.upload.breaker_failure_threshold = 1000;
    // The tests flush explicitly; a background flush racing them would take their faults.
    c.background_flush = false;
    c
}

async fn setup(batch: usize, tweak: impl FnOnce(&mut EngineConfig)) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let faulty = Arc::new(FaultyStore::new(inner.clone()));
    let mut c = config(dir.path(), batch);
    tweak(&mut c);
    let engine = Engine::open_with_store(c, faulty.clone()).await.unwrap();
    let info = engine
        .create_collection(CreateCollection::new("c", DIM, Metric::L2))
        .await
        .unwrap();
    faulty.clear_history();
    Setup {
        engine,
        faulty,
        inner,
        id: info.def.id,
        _dir: dir,
    }
}

fn docs(range: std::ops::Range<usize>) -> Vec<NewDocument> {
    range
        .map(|i| NewDocument {
            id: Some(format!("d{i}")),
            vector: vec![i as f32, 1.0, 2.0, 3.0],
            metadata: None,
        })
        .collect()
}

/// Rows of every segment the newest manifest lists, read back from the inner store.
async fn stored(s: &Setup) -> (Manifest, Vec<Vec<Row>>) {
    let manifest = Manifest::read_latest(&s.inner, &s.id)
        .await
        .unwrap()
        .unwrap();
    let mut segments = vec![];
    for seg in &manifest.segments {
        let data = s
            .inner
            .get(&object_store::path::Path::from(seg.path.as_str()))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        segments.push(segment::decode(DIM, data).unwrap());
    }
    (manifest, segments)
}

fn ids(segments: &[Vec<Row>]) -> Vec<String> {
    let mut ids: Vec<String> = segments
        .iter()
        .flatten()
        .map(|r| r.id().to_string())
        .collect();
    ids.sort();
    ids
}

fn segment_puts(s: &Setup) -> Vec<akidb_engine::store::faulty::Call> {
    s.faulty
        .history()
        .into_iter()
        .filter(|c| c.op == Op::Put && c.path.contains("/segments/"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_cut_at_the_batch_size() {
    let s = setup(10, |_| {}).await;
    s.engine.upsert("c", docs(0..25)).await.unwrap();
    s.engine.flush_all().await.unwrap();
    let (_, segments) = stored(&s).await;
    let sizes: Vec<usize> = segments.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![10, 10, 5]);
    assert_eq!(ids(&segments).len(), 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_more_than_max_in_flight_uploads() {
    let s = setup(5, |c| c.upload.max_in_flight = 3).await;
    s.faulty.set_latency(Duration::from_millis(30));
    s.engine.upsert("c", docs(0..100)).await.unwrap();
    s.engine.flush_all().await.unwrap();
    let puts = segment_puts(&s);
    assert_eq!(puts.len(), 20);
    let overlap = max_concurrent(&puts, Op::Put);
    assert!(overlap <= 3, "{overlap} uploads overlapped, the limit is 3");
    assert!(
        overlap >= 2,
        "uploads ran one at a time ({overlap}): no parallelism"
    );
    assert_eq!(ids(&stored(&s).await.1).len(), 100);
}

#[tokio::test(start_paused = true)]
async fn a_partial_batch_is_flushed_by_the_timer() {
    let s = setup(10, |c| {
        c.flush_max_age = Duration::from_secs(30);
        c.background_flush = true; // the timer is what this test is about
    })
    .await;
    s.engine.upsert("c", docs(0..5)).await.unwrap();
    tokio::time::advance(Duration::from_secs(20)).await;
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        s.engine.collection_info("c").await.unwrap().segments,
        0,
        "flushed before the maximum wait"
    );
    tokio::time::advance(Duration::from_secs(15)).await;
    for _ in 0..200 {
        if s.engine.collection_info("c").await.unwrap().segments == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, segments) = stored(&s).await;
    assert_eq!(segments.iter().map(Vec::len).collect::<Vec<_>>(), vec![5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_dimension_is_rejected_before_anything_is_written() {
    let s = setup(10, |_| {}).await;
    let mut bad = docs(0..3);
    bad[2].vector = vec![1.0, 2.0];
    assert!(s.engine.upsert("c", bad).await.is_err());
    assert_eq!(s.engine.collection_info("c").await.unwrap().count, 0);
    assert_eq!(
        s.engine
            .wal_stats()
            .appends
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    s.engine.flush_all().await.unwrap();
    assert!(s.faulty.history().is_empty(), "nothing may reach the store");
}

#[tokio::test(start_paused = true)]
async fn slow_down_twice_then_success_with_growing_backoff() {
    let s = setup(10, |c| c.upload.retry = RetryPolicy::default()).await;
    s.engine.upsert("c", docs(0..10)).await.unwrap();
    s.faulty.script(
        Op::Put,
        [Step::Fail(Fault::SLOW_DOWN), Step::Fail(Fault::SLOW_DOWN)],
    );
    s.engine.flush_all().await.unwrap();
    let puts = segment_puts(&s);
    assert_eq!(
        puts.iter().map(|c| c.outcome.clone()).collect::<Vec<_>>(),
        vec![
            Outcome::Failed(Fault::SLOW_DOWN),
            Outcome::Failed(Fault::SLOW_DOWN),
            Outcome::Passed
        ]
    );
    let gap1 = puts[1].started - puts[0].finished;
    let gap2 = puts[2].started - puts[1].finished;
    assert!(gap1 > Duration::ZERO, "no backoff at all");
    assert!(gap2 > gap1, "backoff did not grow: {gap1:?} then {gap2:?}");
    assert_eq!(ids(&stored(&s).await.1).len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_denied_is_attempted_once_dead_lettered_and_re_driven() {
    let s = setup(10, |_| {}).await;
    s.engine.upsert("c", docs(0..10)).await.unwrap();
    s.faulty.script(Op::Put, [Step::Fail(Fault::ACCESS_DENIED)]);
    let err = s.engine.flush_all().await.unwrap_err();
    assert!(err.is_permanent(), "{err}");
    assert_eq!(
        segment_puts(&s).len(),
        1,
        "a permanent failure is attempted exactly once"
    );
    let dlq = s.engine.dead_letters();
    assert_eq!(dlq.len(), 1);
    assert!(dlq[0].reason.contains("403"), "{}", dlq[0].reason);
    // Nothing is lost meanwhile: the data serves from memory and stays in the WAL.
    assert_eq!(s.engine.collection_info("c").await.unwrap().unflushed, 10);
    let hits = s
        .engine
        .search(
            "c",
            SearchQuery {
                exact: true,
                ..SearchQuery::new(vec![3.0, 1.0, 2.0, 3.0], 1)
            },
        )
        .await
        .unwrap();
    assert_eq!(hits[0].id, "d3");
    // The fault is gone; re-drive for real.
    let (ok, failed) = s.engine.retry_dead_letters().await;
    assert_eq!((ok.len(), failed.len()), (1, 0));
    assert!(s.engine.dead_letters().is_empty());
    assert_eq!(ids(&stored(&s).await.1).len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_percent_random_failures_over_100_uploads() {
    let s = setup(1, |_| {}).await;
    s.engine.upsert("c", docs(0..100)).await.unwrap();
    s.faulty
        .fail_randomly(0.3, Fault::SLOW_DOWN, &[Op::Put], 42);
    s.engine.flush_all().await.unwrap();
    let failed = segment_puts(&s)
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Failed(_)))
        .count();
    assert!(failed > 10, "the faults did not fire ({failed})");
    let stored_ids = ids(&stored(&s).await.1);
    assert_eq!(stored_ids.len(), 100);
    let mut dedup = stored_ids.clone();
    dedup.dedup();
    assert_eq!(dedup.len(), 100, "a document was stored twice");
}

#[tokio::test(start_paused = true)]
async fn a_partition_opens_the_breaker_and_nothing_is_lost_after_healing() {
    let s = setup(10, |c| {
        c.upload.breaker_failure_threshold = 3;
        c.upload.breaker_cool_down = Duration::from_secs(10);
        c.upload.retry = RetryPolicy::default();
    })
    .await;
    s.faulty.set_partitioned(true);
    s.engine.upsert("c", docs(0..30)).await.unwrap();
    let err = s.engine.flush_all().await.unwrap_err();
    assert!(
        matches!(err, FlushError::Upload(_)) && !err.is_permanent(),
        "{err}"
    );
    assert!(s.engine.uploader().breaker_open());
    let calls_while_open = s.faulty.history().len();
    // Hot data keeps serving, writes keep landing in the WAL, and the store is left alone.
    s.engine.upsert("c", docs(30..40)).await.unwrap();
    assert_eq!(s.engine.collection_info("c").await.unwrap().count, 40);
    assert!(s.engine.flush_all().await.is_err());
    assert_eq!(
        s.faulty.history().len(),
        calls_while_open,
        "the open breaker let a call through"
    );
    // Heal; after the cool-down a probe closes the breaker and everything is uploaded.
    s.faulty.set_partitioned(false);
    tokio::time::advance(Duration::from_secs(11)).await;
    s.engine.flush_all().await.unwrap();
    assert!(!s.engine.uploader().breaker_open());
    assert_eq!(ids(&stored(&s).await.1).len(), 40);
}

/// Regression (issue 8, case 6): after an outage, with several segments per flush, the
/// half-open probe was dropped when its sibling uploads failed fast, and the breaker stayed
/// half-open for ever (`/ready` degraded, no call to the recovered store, the WAL growing to its
/// budget). Now the first flush after the cool-down goes through whole.
#[tokio::test(start_paused = true)]
async fn after_an_outage_a_flush_of_several_segments_closes_the_breaker() {
    let s = setup(10, |c| {
        c.upload.breaker_failure_threshold = 3;
        c.upload.breaker_cool_down = Duration::from_secs(10);
        c.upload.retry = RetryPolicy::default();
    })
    .await;
    s.faulty.set_partitioned(true);
    s.engine.upsert("c", docs(0..30)).await.unwrap();
    assert!(s.engine.flush_all().await.is_err());
    assert!(s.engine.uploader().breaker_open());
    // The store recovers, slowly: every call takes a second, so the probe is still in flight
    // when its two sibling segments reach the breaker.
    s.faulty.set_partitioned(false);
    s.faulty.set_latency(Duration::from_secs(1));
    tokio::time::advance(Duration::from_secs(11)).await;
    s.engine.flush_all().await.unwrap();
    assert!(!s.engine.uploader().breaker_open());
    let (manifest, segments) = stored(&s).await;
    assert_eq!(manifest.segments.len(), 3);
    assert_eq!(ids(&segments).len(), 30);
}

#[tokio::test(start_paused = true)]
async fn half_a_second_of_latency_per_call_completes() {
    let s = setup(10, |_| {}).await;
    s.faulty.set_latency(Duration::from_millis(500));
    s.engine.upsert("c", docs(0..25)).await.unwrap();
    s.engine.flush_all().await.unwrap();
    assert_eq!(ids(&stored(&s).await.1).len(), 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_fail_after_commit_is_neither_duplicated_nor_a_false_failure() {
    let s = setup(10, |_| {}).await;
    s.engine.upsert("c", docs(0..10)).await.unwrap();
    // The segment put passes; the manifest put is applied, then its response is "lost".
    s.faulty.script(
        Op::Put,
        [Step::Pass, Step::FailAfterCommit(Fault::INTERNAL_ERROR)],
    );
    s.engine.flush_all().await.unwrap();
    let (manifest, segments) = stored(&s).await;
    assert_eq!(manifest.version, 2, "exactly one new manifest version");
    assert_eq!(segments.len(), 1);
    assert_eq!(ids(&segments).len(), 10);
    let manifests = s
        .inner
        .list_with_delimiter(Some(&format!("collections/{}/manifest", s.id).into()))
        .await
        .unwrap();
    assert_eq!(manifests.objects.len(), 2);
    assert_eq!(s.engine.collection_info("c").await.unwrap().unflushed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_then_permanent_is_classified_as_permanent() {
    let s = setup(10, |_| {}).await;
    s.engine.upsert("c", docs(0..10)).await.unwrap();
    s.faulty.script(
        Op::Put,
        [
            Step::Fail(Fault::SLOW_DOWN),
            Step::Fail(Fault::REQUEST_TIMEOUT),
            Step::Fail(Fault::NO_SUCH_BUCKET),
        ],
    );
    let err = s.engine.flush_all().await.unwrap_err();
    assert!(err.is_permanent());
    assert_eq!(
        segment_puts(&s).len(),
        3,
        "two transient failures retried, the permanent one not"
    );
    assert_eq!(s.engine.dead_letters().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn during_an_outage_writes_stop_at_the_wal_budget_and_resume_after_recovery() {
    let s = setup(10, |c| {
        c.wal_budget_bytes = 4_000;
        c.upload.breaker_failure_threshold = 2;
        c.upload.breaker_cool_down = Duration::from_secs(10);
        c.upload.retry = RetryPolicy::default();
    })
    .await;
    s.faulty.set_partitioned(true);
    let mut accepted = 0;
    let refused = loop {
        match s.engine.upsert("c", docs(accepted..accepted + 10)).await {
            Ok(_) => accepted += 10,
            Err(e) => break e,
        }
        assert!(accepted < 1_000, "the budget never applied");
        let _ = s.engine.flush_all().await; // fails: partitioned
    };
    assert!(
        matches!(
            refused,
            akidb_engine::EngineError::Backpressure {
                retry_after_secs: 10,
                ..
            }
        ),
        "{refused}"
    );
    assert!(accepted > 0, "the first writes fit in the budget");
    // Everything accepted is still served; the refused batch left nothing behind.
    assert_eq!(s.engine.collection_info("c").await.unwrap().count, accepted);
    // Heal: the flush empties the WAL and writes are taken again.
    s.faulty.set_partitioned(false);
    tokio::time::advance(Duration::from_secs(11)).await;
    s.engine.flush_all().await.unwrap();
    s.engine
        .upsert("c", docs(accepted..accepted + 10))
        .await
        .unwrap();
    assert_eq!(ids(&stored(&s).await.1).len(), accepted);
}

/// Deletes go through the same door as uploads: a transient failure is retried and counted, and
/// an open breaker stops them without a call to the store (they used to call the store
/// directly: neither retried nor counted, and not stopped by an open breaker).
#[tokio::test(start_paused = true)]
async fn deletes_are_retried_counted_and_stopped_by_an_open_breaker() {
    let s = setup(10, |c| {
        c.upload.breaker_failure_threshold = 3;
        c.upload.breaker_cool_down = Duration::from_secs(10);
    })
    .await;
    let uploader = s.engine.uploader();
    let path = object_store::path::Path::from("collections/x/segments/orphan.parquet");
    s.inner
        .put(&path, object_store::PutPayload::from_static(b"x"))
        .await
        .unwrap();
    s.faulty.script(
        Op::Delete,
        [Step::Fail(Fault::SLOW_DOWN), Step::Fail(Fault::SLOW_DOWN)],
    );
    let retries = uploader
        .stats
        .retries
        .load(std::sync::atomic::Ordering::Relaxed);
    uploader.delete(&path).await.unwrap();
    assert!(s.inner.head(&path).await.is_err(), "deleted");
    assert_eq!(
        uploader
            .stats
            .retries
            .load(std::sync::atomic::Ordering::Relaxed)
            - retries,
        2
    );
    assert_eq!(
        uploader
            .stats
            .deletes
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    // An outage opens the breaker; a delete is then refused without touching the store.
    s.faulty.set_partitioned(true);
    s.engine.upsert("c", docs(0..10)).await.unwrap();
    assert!(s.engine.flush_all().await.is_err());
    assert!(uploader.breaker_open());
    s.faulty.clear_history();
    let refused = uploader.delete(&path).await.unwrap_err();
    assert!(
        matches!(
            refused,
            akidb_engine::upload::retry::RetryError::BreakerOpen
        ),
        "{refused}"
    );
    assert!(s.faulty.history().is_empty(), "{:?}", s.faulty.history());
}

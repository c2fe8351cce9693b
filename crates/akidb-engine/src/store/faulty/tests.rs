//! Unit tests of FaultyStore: scripted steps, fail-after-commit, permanent faults and partitions, reproducible random failures, latency.

use object_store::memory::InMemory;

use super::*;
use crate::store::classify::{ErrorClass, classify};

fn store() -> FaultyStore {
    FaultyStore::new(Arc::new(InMemory::new()))
}

async fn read(store: &FaultyStore, path: &Path) -> Option<Bytes> {
    match store.inner.get(path).await {
        Ok(r) => Some(r.bytes().await.unwrap()),
        Err(object_store::Error::NotFound { .. }) => None,
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn scripted_steps_then_pass_through() {
    let s = store();
    let path = Path::from("a");
    s.script(
        Op::Put,
        [Step::Fail(Fault::SLOW_DOWN), Step::Fail(Fault::SLOW_DOWN)],
    );
    for _ in 0..2 {
        let err = s
            .put(&path, PutPayload::from_static(b"x"))
            .await
            .unwrap_err();
        assert_eq!(classify(&err), ErrorClass::Transient);
        assert_eq!(
            read(&s, &path).await,
            None,
            "a failed put must not store anything"
        );
    }
    s.put(&path, PutPayload::from_static(b"x")).await.unwrap();
    assert_eq!(read(&s, &path).await.as_deref(), Some(&b"x"[..]));
    let outcomes: Vec<_> = s.history().into_iter().map(|c| c.outcome).collect();
    assert_eq!(
        outcomes,
        vec![
            Outcome::Failed(Fault::SLOW_DOWN),
            Outcome::Failed(Fault::SLOW_DOWN),
            Outcome::Passed
        ]
    );
}

#[tokio::test]
async fn fail_after_commit_applies_the_write() {
    let s = store();
    let path = Path::from("m");
    s.script(Op::Put, [Step::FailAfterCommit(Fault::INTERNAL_ERROR)]);
    let err = s
        .put(&path, PutPayload::from_static(b"v1"))
        .await
        .unwrap_err();
    assert_eq!(classify(&err), ErrorClass::Transient);
    assert_eq!(
        read(&s, &path).await.as_deref(),
        Some(&b"v1"[..]),
        "the write landed despite the error"
    );
}

#[tokio::test]
async fn permanent_faults_and_partition() {
    let s = store();
    let path = Path::from("p");
    s.script(Op::Get, [Step::Fail(Fault::ACCESS_DENIED)]);
    let err = s.get(&path).await.unwrap_err();
    assert!(matches!(err, object_store::Error::PermissionDenied { .. }));
    assert_eq!(classify(&err), ErrorClass::Permanent);
    s.set_partitioned(true);
    let err = s
        .put(&path, PutPayload::from_static(b"x"))
        .await
        .unwrap_err();
    assert_eq!(classify(&err), ErrorClass::Transient);
    let listed: Vec<_> = s.list(None).collect().await;
    assert!(listed.len() == 1 && listed[0].is_err());
    s.set_partitioned(false);
    s.put(&path, PutPayload::from_static(b"x")).await.unwrap();
    let deleted: Vec<_> = s
        .delete_stream(futures::stream::iter([Ok(path.clone())]).boxed())
        .collect()
        .await;
    assert!(deleted[0].is_ok());
    assert_eq!(read(&s, &path).await, None);
}

#[tokio::test]
async fn random_failures_are_reproducible() {
    let pattern = |seed| async move {
        let s = store();
        s.fail_randomly(0.3, Fault::SLOW_DOWN, &[Op::Put], seed);
        let mut failed = vec![];
        for i in 0..200 {
            let r = s
                .put(&Path::from(format!("k{i}")), PutPayload::from_static(b"x"))
                .await;
            failed.push(r.is_err());
        }
        failed
    };
    let a = pattern(7).await;
    assert_eq!(a, pattern(7).await);
    assert_ne!(a, pattern(8).await);
    let rate = a.iter().filter(|f| **f).count() as f64 / a.len() as f64;
    assert!((0.15..0.45).contains(&rate), "30% requested, {rate} drawn");
}

#[tokio::test(start_paused = true)]
async fn latency_is_added() {
    let s = store();
    s.set_latency(Duration::from_millis(500));
    let start = tokio::time::Instant::now();
    s.put(&Path::from("x"), PutPayload::from_static(b"x"))
        .await
        .unwrap();
    assert!(start.elapsed() >= Duration::from_millis(500));
}

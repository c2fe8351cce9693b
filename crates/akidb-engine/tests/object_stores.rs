//! One conformance suite for every object store AkiDB runs on: `memory://`, `file://` and the
//! real S3-compatible servers on loopback (moto, started per test, and SeaweedFS, started by
//! `scripts/test` for the run; see `akidb-testkit`).
//!
//! - object_store's own integration suite (put/get/delete/list, ranges, list with delimiter,
//!   create-only and conditional puts, multipart);
//! - create-only puts under a race: exactly one of 32 writers wins a key (manifests rely on it);
//! - the engine end to end: write, flush, restart with an *empty* data directory against the
//!   same store (disaster recovery), same documents and same answers.
//!
//! The S3 servers come from `scripts/test` (which installs moto and SeaweedFS into
//! `.venv-test/`), or `moto_server` on PATH. Without moto these tests fail, saying so: they
//! never skip silently.

use std::sync::Arc;
use std::time::Duration;

use akidb_core::Metric;
use akidb_engine::store::faulty::FaultyStore;
use akidb_engine::store::open_store;
use akidb_engine::{CreateCollection, Engine, EngineConfig, NewDocument, S3Options, SearchQuery};
use akidb_testkit::{S3Endpoint, s3_servers, unique_prefix};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, integration};
use serde_json::json;

/// The store kinds under test, each freshly created.
fn stores(
    s3: &[S3Endpoint],
    dir: &std::path::Path,
    name: &str,
) -> Vec<(&'static str, Arc<dyn ObjectStore>)> {
    let mut stores: Vec<(&'static str, Arc<dyn ObjectStore>)> = vec![
        (
            "memory",
            open_store("memory://", &S3Options::default()).unwrap(),
        ),
        (
            "file",
            open_store(
                &format!("file://{}", dir.join(name).display()),
                &S3Options::default(),
            )
            .unwrap(),
        ),
        // The fault-injecting wrapper with no faults planned must be indistinguishable.
        (
            "faulty(memory)",
            Arc::new(FaultyStore::new(
                open_store("memory://", &S3Options::default()).unwrap(),
            )),
        ),
    ];
    for ep in s3 {
        let url = ep.url(&unique_prefix(name));
        stores.push((ep.kind, open_store(&url, &s3_options(ep)).unwrap()));
    }
    stores
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_store_conformance() {
    let (_moto, s3) = s3_servers("akidb");
    let dir = tempfile::tempdir().unwrap();
    for (kind, store) in stores(&s3, dir.path(), "conformance") {
        eprintln!("conformance: {kind}");
        let started = std::time::Instant::now();
        if kind == "seaweedfs" {
            // SeaweedFS 4.48 treats ListObjectsV2's StartAfter as a directory boundary (an
            // offset of "a" also skips "a/…"), so the suite's list_with_offset case fails
            // there. AkiDB never lists with an offset; the rest of the suite runs below.
            put_get_delete_list_basic(&*store).await;
        } else {
            integration::put_get_delete_list(&*store).await;
        }
        integration::get_opts(&*store).await;
        // Conditional updates (If-Match): in memory and S3, not on the local filesystem.
        integration::put_opts(&*store, kind != "file").await;
        integration::list_uses_directories_correctly(&*store).await;
        integration::list_with_delimiter(&*store).await;
        integration::get_nonexistent_object(&*store, None)
            .await
            .unwrap_err();
        integration::stream_get(&*store).await;
        eprintln!("conformance: {kind} took {:?}", started.elapsed());
    }
}

/// Ranged reads through the one door (`Uploader::get_range` / `get_ranges`), on every store: the
/// exact bytes of each range, one counted GET per range, and the ranges visible in FaultyStore's
/// call history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranged_reads_return_exact_bytes_and_are_counted() {
    use akidb_engine::upload::{UploadConfig, Uploader};
    use std::sync::atomic::Ordering::Relaxed;

    let (_moto, s3) = s3_servers("akidb");
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let ranges = [0..10u64, 4_096..70_000, 299_990..300_000, 150_000..150_001];
    for (kind, store) in stores(&s3, dir.path(), "ranges") {
        let faulty = Arc::new(FaultyStore::new(store));
        let uploader = Uploader::new(faulty.clone(), UploadConfig::default());
        let path = Path::from("run/part.bin");
        uploader
            .put_object(&path, bytes::Bytes::from(data.clone()))
            .await
            .unwrap();
        faulty.clear_history();
        let got = uploader.get_ranges(&path, &ranges).await.unwrap();
        for (range, bytes) in ranges.iter().zip(&got) {
            let want = &data[range.start as usize..range.end as usize];
            assert_eq!(&bytes[..], want, "{kind}: range {range:?}");
        }
        let one = uploader.get_range(&path, 100..200).await.unwrap();
        assert_eq!(&one[..], &data[100..200], "{kind}");
        let wanted: u64 = ranges.iter().map(|r| r.end - r.start).sum::<u64>() + 100;
        assert_eq!(
            uploader.stats.gets.load(Relaxed),
            5,
            "{kind}: one GET per range"
        );
        assert_eq!(uploader.stats.get_bytes.load(Relaxed), wanted, "{kind}");
        let mut seen: Vec<_> = faulty
            .history()
            .into_iter()
            .map(|c| format!("{:?}", c.range))
            .collect();
        seen.sort();
        let mut expected: Vec<_> = ranges
            .iter()
            .chain([&(100..200)])
            .map(|r| format!("{:?}", Some(object_store::GetRange::Bounded(r.clone()))))
            .collect();
        expected.sort();
        assert_eq!(
            seen, expected,
            "{kind}: the ranges asked for, as the store saw them"
        );
    }
}

/// Put, get, list (with and without a prefix and delimiter) and delete, for a store that cannot
/// run the suite's list-with-offset case.
async fn put_get_delete_list_basic(store: &dyn ObjectStore) {
    let paths = ["c/a.parquet", "c/b/x.json", "c/b/y.json", "d.txt"].map(Path::from);
    for (i, p) in paths.iter().enumerate() {
        store
            .put(p, PutPayload::from(format!("v{i}")))
            .await
            .unwrap();
    }
    for (i, p) in paths.iter().enumerate() {
        let got = store.get(p).await.unwrap().bytes().await.unwrap();
        assert_eq!(got, format!("v{i}").as_bytes());
    }
    let mut all: Vec<Path> = store
        .list(None)
        .map_ok(|m| m.location)
        .try_collect()
        .await
        .unwrap();
    all.sort();
    assert_eq!(all, paths.to_vec());
    let listing = store
        .list_with_delimiter(Some(&Path::from("c")))
        .await
        .unwrap();
    assert_eq!(listing.common_prefixes, vec![Path::from("c/b")]);
    assert_eq!(listing.objects.len(), 1);
    for p in &paths {
        store.delete(p).await.unwrap();
    }
    let left: Vec<_> = store.list(None).try_collect().await.unwrap();
    assert!(left.is_empty(), "{left:?}");
    assert!(matches!(
        store.get(&paths[0]).await,
        Err(object_store::Error::NotFound { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_only_put_has_exactly_one_winner() {
    let (_moto, s3) = s3_servers("akidb");
    let dir = tempfile::tempdir().unwrap();
    for (kind, store) in stores(&s3, dir.path(), "race") {
        let started = std::time::Instant::now();
        // SeaweedFS 4.48 resolves 32 racing create-only puts correctly but slowly (about 26 s
        // per key here); one round shows it. AkiDB has one manifest writer per collection.
        let rounds = if kind == "seaweedfs" { 1 } else { 3 };
        for round in 0..rounds {
            let path = Path::from(format!("race/manifest/{round:020}.json"));
            let tasks: Vec<_> = (0..32)
                .map(|writer| {
                    let store = store.clone();
                    let path = path.clone();
                    tokio::spawn(async move {
                        let opts = PutOptions {
                            mode: PutMode::Create,
                            ..Default::default()
                        };
                        let r = store
                            .put_opts(&path, PutPayload::from(format!("writer {writer}")), opts)
                            .await;
                        (writer, r)
                    })
                })
                .collect();
            let mut winners = vec![];
            for t in tasks {
                match t.await.unwrap() {
                    (w, Ok(_)) => winners.push(w),
                    (_, Err(object_store::Error::AlreadyExists { .. })) => {}
                    (w, Err(e)) => panic!("{kind}: writer {w}: unexpected error {e}"),
                }
            }
            assert_eq!(
                winners.len(),
                1,
                "{kind} round {round}: winners {winners:?}"
            );
            let stored = store.get(&path).await.unwrap().bytes().await.unwrap();
            assert_eq!(
                stored,
                format!("writer {}", winners[0]).as_bytes(),
                "{kind}: the winner's content is stored"
            );
        }
        eprintln!("create-only race: {kind} took {:?}", started.elapsed());
    }
}

fn vector(i: usize) -> Vec<f32> {
    (0..16)
        .map(|j| (((i * 7919 + j * 104729) % 1000) as f32 / 1000.0) - 0.5)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_recovers_from_the_bucket_alone() {
    let (_moto, s3) = s3_servers("akidb");
    let mut targets: Vec<(&str, Option<&S3Endpoint>)> = vec![("memory", None)];
    targets.extend(s3.iter().map(|ep| (ep.kind, Some(ep))));
    for (kind, ep) in targets {
        let data1 = tempfile::tempdir().unwrap();
        let mut config = EngineConfig::new(data1.path());
        config.flush_idle = Duration::from_secs(3600);
        if let Some(ep) = ep {
            config.s3 = s3_options(ep);
        }
        let url = ep.map(|ep| ep.url(&unique_prefix("engine")));
        config.object_store = Some(url.clone().unwrap_or("memory://".to_string()));
        let engine = Engine::open(config.clone()).await.unwrap();
        engine
            .create_collection(CreateCollection::new("dr", 16, Metric::L2))
            .await
            .unwrap();
        for chunk in 0..4 {
            let docs: Vec<_> = (chunk * 500..(chunk + 1) * 500)
                .map(|i| NewDocument {
                    id: Some(format!("d{i}")),
                    vector: vector(i),
                    metadata: Some(json!({"i": i})),
                })
                .collect();
            engine.upsert("dr", docs).await.unwrap();
            engine.flush_all().await.unwrap(); // four segments
        }
        engine
            .delete_documents("dr", vec!["d7".into()])
            .await
            .unwrap();
        engine.flush_all().await.unwrap();
        let query = SearchQuery {
            vector: vector(42),
            k: 10,
            ef: None,
            nprobe: None,
            exact: true,
            filter: None,
            include_vector: true,
            include_metadata: true,
            deadline: None,
            text: None,
        };
        let before: Vec<_> = engine
            .search("dr", query.clone())
            .await
            .unwrap()
            .into_iter()
            .map(|h| (h.id, h.score))
            .collect();
        if url.is_none() {
            // memory:// does not outlive its engine; it is here for the conformance of the write
            // path only.
            assert_eq!(before[0].0, "d42");
            continue;
        }
        drop(engine);
        // A new machine: empty data directory, same bucket.
        let data2 = tempfile::tempdir().unwrap();
        let mut config2 = config.clone();
        config2.data_dir = data2.path().to_path_buf();
        let engine = Engine::open(config2).await.unwrap();
        let info = engine
            .collection_info("dr")
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(info.count, 1999, "{kind}");
        assert_eq!(info.segments, 5, "{kind}");
        assert!(engine.get_document("dr", "d7").await.is_err());
        assert_eq!(
            engine
                .get_document("dr", "d1999")
                .await
                .unwrap()
                .metadata
                .unwrap()["i"],
            1999
        );
        let after: Vec<_> = engine
            .search("dr", query)
            .await
            .unwrap()
            .into_iter()
            .map(|h| (h.id, h.score))
            .collect();
        assert_eq!(
            before, after,
            "{kind}: answers changed after recovery from the bucket"
        );
    }
}

/// Error responses of real S3 servers are classified by their status and S3 code, which
/// object_store does not expose (it reports them as `Generic`): the observing connector reads
/// them off the wire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_s3_errors_are_classified_by_status_and_code() {
    use akidb_engine::store::classify::{ErrorClass, S3Failure, classify, classify_observed};
    use akidb_engine::store::observed::observed;
    use akidb_engine::upload::retry::RetryError;
    use akidb_engine::upload::{UploadConfig, Uploader};

    let (_moto, servers) = s3_servers("akidb");
    // 400 EntityTooSmall (moto enforces S3's 5 MiB minimum part): permanent, where object_store's
    // error alone would have said nothing.
    let moto = &servers[0];
    let store = open_store(&moto.url(&unique_prefix("classify")), &s3_options(moto)).unwrap();
    let path = Path::from("small/parts.bin");
    let (result, seen) = observed(async {
        let mut upload = store.put_multipart(&path).await?;
        upload.put_part(PutPayload::from(vec![1u8; 1024])).await?;
        upload.put_part(PutPayload::from(vec![2u8; 1024])).await?;
        upload.complete().await
    })
    .await;
    let error = result.unwrap_err();
    assert!(
        matches!(error, object_store::Error::Generic { .. }),
        "{error}"
    );
    assert_eq!(
        seen,
        Some(S3Failure {
            status: 400,
            code: "EntityTooSmall".into()
        })
    );
    assert_eq!(
        classify(&error),
        ErrorClass::Transient,
        "without the observation"
    );
    assert_eq!(
        classify_observed(&error, seen.as_ref()),
        ErrorClass::Permanent
    );
    // SeaweedFS checks signatures: a wrong secret is a 403, attempted exactly once.
    if let Some(sw) = servers.iter().find(|s| s.kind == "seaweedfs") {
        let mut wrong = s3_options(sw);
        wrong.secret_access_key = Some("not-the-secret".into());
        let store = open_store(&sw.url(&unique_prefix("denied")), &wrong).unwrap();
        let uploader = Uploader::new(store, UploadConfig::default());
        let r = uploader
            .put_object(&Path::from("x.parquet"), bytes::Bytes::from_static(b"x"))
            .await;
        match r {
            Err(RetryError::Permanent { attempts, source }) => {
                assert_eq!(attempts, 1, "{source}");
            }
            other => panic!("expected a permanent failure, got {other:?}"),
        }
    }
}

/// The engine's S3 settings for a loopback server.
fn s3_options(ep: &akidb_testkit::S3Endpoint) -> akidb_engine::S3Options {
    akidb_engine::S3Options::static_credentials(
        &ep.endpoint,
        &ep.access_key_id,
        &ep.secret_access_key,
    )
}

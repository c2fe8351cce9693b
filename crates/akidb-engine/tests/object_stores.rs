//! One conformance suite for every object store AkiDB runs on: `memory://`, `file://` and a
//! real S3-compatible server on loopback (moto's standalone server, started per test binary).
//!
//! - object_store's own integration suite (put/get/delete/list, ranges, list with delimiter,
//!   create-only and conditional puts, multipart);
//! - create-only puts under a race: exactly one of 32 writers wins a key (manifests rely on it);
//! - the engine end to end: write, flush, restart with an *empty* data directory against the
//!   same store (disaster recovery), same documents and same answers.
//!
//! The S3 server comes from `scripts/test` (which installs moto into `.venv-test/`) through
//! `AKIDB_MOTO_SERVER`, or `moto_server` on PATH. Without it these tests fail, saying so: they
//! never skip silently.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use akidb_core::Metric;
use akidb_engine::store::faulty::FaultyStore;
use akidb_engine::store::open_store;
use akidb_engine::{CreateCollection, Engine, EngineConfig, NewDocument, S3Options, SearchQuery};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, integration};
use serde_json::json;

struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_binary() -> String {
    if let Ok(path) = std::env::var("AKIDB_MOTO_SERVER") {
        return path;
    }
    let on_path = Command::new("moto_server")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if matches!(on_path, Ok(s) if s.success()) {
        return "moto_server".into();
    }
    panic!(
        "no S3-compatible test server: run the tests with scripts/test (it installs moto into .venv-test/), \
         or set AKIDB_MOTO_SERVER to a moto_server binary"
    );
}

/// Starts moto on a free loopback port and creates `bucket`.
fn start_moto(bucket: &str) -> Moto {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(moto_binary())
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto_server");
    let moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            // moto checks no signatures: a plain PUT creates the bucket.
            let req = format!(
                "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            if s.write_all(req.as_bytes()).is_ok() {
                let mut resp = String::new();
                let _ = s.read_to_string(&mut resp);
                if resp.starts_with("HTTP/1.1 200") {
                    return moto;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "moto_server did not come up on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn s3_options(moto: &Moto) -> S3Options {
    S3Options {
        endpoint: Some(moto.endpoint.clone()),
        region: Some("us-east-1".into()),
        access_key_id: Some("akidb-test".into()),
        secret_access_key: Some("akidb-test-secret".into()),
        allow_http: Some(true),
    }
}

/// The store kinds under test, each freshly created.
fn stores(
    moto: &Moto,
    dir: &std::path::Path,
    name: &str,
) -> Vec<(&'static str, Arc<dyn ObjectStore>)> {
    vec![
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
        (
            "s3",
            open_store(&format!("s3://akidb/{name}"), &s3_options(moto)).unwrap(),
        ),
        // The fault-injecting wrapper with no faults planned must be indistinguishable.
        (
            "faulty(memory)",
            Arc::new(FaultyStore::new(
                open_store("memory://", &S3Options::default()).unwrap(),
            )),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_store_conformance() {
    let moto = start_moto("akidb");
    let dir = tempfile::tempdir().unwrap();
    for (kind, store) in stores(&moto, dir.path(), "conformance") {
        eprintln!("conformance: {kind}");
        integration::put_get_delete_list(&*store).await;
        integration::get_opts(&*store).await;
        // Conditional updates (If-Match): in memory and S3, not on the local filesystem.
        integration::put_opts(&*store, kind != "file").await;
        integration::list_uses_directories_correctly(&*store).await;
        integration::list_with_delimiter(&*store).await;
        integration::get_nonexistent_object(&*store, None)
            .await
            .unwrap_err();
        integration::stream_get(&*store).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_only_put_has_exactly_one_winner() {
    let moto = start_moto("akidb");
    let dir = tempfile::tempdir().unwrap();
    for (kind, store) in stores(&moto, dir.path(), "race") {
        for round in 0..3 {
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
    }
}

fn vector(i: usize) -> Vec<f32> {
    (0..16)
        .map(|j| (((i * 7919 + j * 104729) % 1000) as f32 / 1000.0) - 0.5)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_recovers_from_the_bucket_alone() {
    let moto = start_moto("akidb");
    for (kind, url) in [("memory", None), ("s3", Some("s3://akidb/engine"))] {
        let data1 = tempfile::tempdir().unwrap();
        let mut config = EngineConfig::new(data1.path());
        config.flush_idle = Duration::from_secs(3600);
        config.s3 = s3_options(&moto);
        config.object_store = Some(url.unwrap_or("memory://").to_string());
        let engine = Engine::open(config.clone()).await.unwrap();
        engine
            .create_collection(CreateCollection {
                name: "dr".into(),
                dimension: 16,
                metric: Metric::L2,
                m: None,
                ef_construction: None,
                ef_search: None,
            })
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
            exact: true,
            filter: None,
            include_vector: true,
            include_metadata: true,
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
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(info.count, 1999, "{kind}");
        assert_eq!(info.segments, 5, "{kind}");
        assert!(engine.get_document("dr", "d7").is_err());
        assert_eq!(
            engine
                .get_document("dr", "d1999")
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

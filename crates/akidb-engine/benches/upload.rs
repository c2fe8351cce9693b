//! Upload-pipeline benchmarks: the same 200 documents (384-d) made durable in the object store
//! through the engine's flush path, over object_store's in-memory store wrapped in its
//! `ThrottledStore` to add 20 ms to every put (standing in for S3 round trips). No network.
//!
//! - `sequential`: one document per object, one upload at a time (200 puts in a row);
//! - `batched`: all 200 documents in one object;
//! - `parallel/N`: 4 documents per object (50 objects), at most N uploads in flight,
//!   N = 1, 5, 10, 20, 50.
//!
//! Each iteration upserts the documents (WAL, not timed), then times the flush: segment
//! encode, uploads, manifest commit.
//!
//! With the test S3 servers running (`source scripts/s3-servers`), `s3_loopback` also flushes
//! 20,000 documents to moto and to SeaweedFS on 127.0.0.1, against the 100,000 documents/s
//! target.
//!
//! `matrix` is the seed's benchmark matrix (sequential vs batched by size, batch sizes,
//! parallel by size, the fault-injecting store against the local file store, single
//! operations by added latency); see its doc.
//!
//! Run: `cargo bench -p akidb-engine --bench upload` (`-- matrix` for the matrix alone; HTML
//! reports in target/criterion/), or with the S3 servers:
//! `bash -c 'source scripts/s3-servers && cargo bench -p akidb-engine --bench upload -- s3_loopback'`

use std::sync::Arc;
use std::time::{Duration, Instant};

use akidb_core::Metric;
use akidb_engine::segment::{self, Row};
use akidb_engine::upload::{UploadConfig, Uploader};
use akidb_engine::{CreateCollection, Document, Engine, EngineConfig, NewDocument};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use object_store::ObjectStore;
use object_store::memory::InMemory;
use object_store::throttle::{ThrottleConfig, ThrottledStore};

const DIM: usize = 384;
const DOCS: usize = 200;
const LATENCY: Duration = Duration::from_millis(20);

fn documents(n: usize, seed: u64) -> Vec<NewDocument> {
    let mut state = seed | 1;
    (0..n)
        .map(|i| NewDocument {
            id: Some(format!("doc-{i}")),
            vector: (0..DIM)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
                })
                .collect(),
            metadata: None,
        })
        .collect()
}

/// Time to flush `docs` with `batch` documents per object and `in_flight` uploads at once.
async fn flush_time(
    store: Arc<dyn ObjectStore>,
    docs: &[NewDocument],
    batch: usize,
    in_flight: usize,
) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let mut config = EngineConfig::new(dir.path());
    config.flush_max_docs = batch;
    config.flush_idle = Duration::from_secs(3600);
    config.flush_max_age = Duration::from_secs(3600);
    config.upload.max_in_flight = in_flight;
    let engine = Engine::open_with_store(config, store).await.unwrap();
    let name = format!("c{}", uuid_like());
    engine
        .create_collection(CreateCollection {
            name: name.clone(),
            dimension: DIM,
            metric: Metric::Cosine,
            m: None,
            ef_construction: None,
            ef_search: None,
            quantization: None,
        })
        .await
        .unwrap();
    for chunk in docs.chunks(1000) {
        engine.upsert(&name, chunk.to_vec()).await.unwrap();
    }
    let started = Instant::now();
    engine.flush_all().await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(engine.collection_info(&name).await.unwrap().unflushed, 0);
    elapsed
}

/// Encodes `rows` into segments of `per_object` rows in parallel, uploads them through the
/// `Uploader` (8 in flight), then stores a manifest create-only: the flush path without the
/// engine's in-memory state.
async fn seal_and_upload(store: Arc<dyn ObjectStore>, rows: &[Row], per_object: usize) -> Duration {
    let uploader = Arc::new(Uploader::new(store, UploadConfig::default()));
    // Rows are cut before the clock starts: the flush moves them, it does not copy them.
    let chunks: Vec<Vec<Row>> = rows.chunks(per_object).map(<[Row]>::to_vec).collect();
    let started = Instant::now();
    let uploads = chunks.into_iter().enumerate().map(|(i, chunk)| {
        let uploader = uploader.clone();
        async move {
            let data = tokio::task::spawn_blocking(move || segment::encode(DIM, &chunk).unwrap())
                .await
                .unwrap();
            let path = object_store::path::Path::from(format!("segments/{i}.parquet"));
            uploader.put_object(&path, data).await.unwrap();
        }
    });
    futures::future::join_all(uploads).await;
    uploader
        .put_create_only(
            &object_store::path::Path::from("manifest/1.json"),
            bytes::Bytes::from_static(b"{}"),
        )
        .await
        .unwrap();
    started.elapsed()
}

fn uuid_like() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn throttled() -> Arc<dyn ObjectStore> {
    let config = ThrottleConfig {
        wait_put_per_call: LATENCY,
        ..Default::default()
    };
    Arc::new(ThrottledStore::new(InMemory::new(), config))
}

fn pipeline(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let docs = documents(DOCS, 7);
    let mut group = c.benchmark_group("upload_20ms");
    group
        .throughput(Throughput::Elements(DOCS as u64))
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    let mut run = |id: BenchmarkId, batch: usize, in_flight: usize| {
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| rt.block_on(flush_time(throttled(), &docs, batch, in_flight)))
                    .sum()
            })
        });
    };
    run(BenchmarkId::new("sequential", "1doc_per_object"), 1, 1);
    run(BenchmarkId::new("batched", "200docs_per_object"), DOCS, 1);
    for in_flight in [1, 5, 10, 20, 50] {
        run(
            BenchmarkId::new("parallel_4docs_per_object", in_flight),
            4,
            in_flight,
        );
    }
    group.finish();
}

fn s3_loopback(c: &mut Criterion) {
    if std::env::var_os("AKIDB_MOTO_SERVER").is_none() {
        println!("s3_loopback: skipped, AKIDB_MOTO_SERVER is not set (source scripts/s3-servers)");
        return;
    }
    let moto = akidb_testkit::Moto::start("bench");
    let mut servers = vec![moto.s3.clone()];
    servers.extend(akidb_testkit::seaweedfs());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let docs = documents(20_000, 11);
    for server in servers {
        let s3 = s3_options(&server);
        let mut group = c.benchmark_group(format!("s3_loopback_{}", server.kind));
        group
            .throughput(Throughput::Elements(docs.len() as u64))
            .sample_size(10)
            .measurement_time(Duration::from_secs(20));
        // The pipeline alone: seal (Parquet encode, in parallel) and upload (8 in flight), then
        // the create-only manifest. No engine, so no indexer competing for the two cores.
        let rows: Vec<Row> = docs
            .iter()
            .map(|d| {
                Row::Put(Document {
                    id: d.id.clone().unwrap(),
                    vector: d.vector.clone(),
                    metadata: None,
                })
            })
            .collect();
        group.bench_function(
            BenchmarkId::new("seal_and_upload_20000_dim384_docs_per_object", 5_000),
            |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| {
                            let url = server.url(&akidb_testkit::unique_prefix("bench"));
                            let store = akidb_engine::store::open_store(&url, &s3).unwrap();
                            rt.block_on(seal_and_upload(store, &rows, 5_000))
                        })
                        .sum()
                })
            },
        );
        for batch in [5_000usize, 20_000] {
            group.bench_function(
                BenchmarkId::new("flush_20000_dim384_docs_per_object", batch),
                |b| {
                    b.iter_custom(|iters| {
                        (0..iters)
                            .map(|_| {
                                let url = server.url(&akidb_testkit::unique_prefix("bench"));
                                let store = akidb_engine::store::open_store(&url, &s3).unwrap();
                                rt.block_on(flush_time(store, &docs, batch, 8))
                            })
                            .sum()
                    })
                },
            );
        }
        group.finish();
    }
}

/// The seed's matrix, over object_store's in-memory store with 20 ms added to every put
/// (`ThrottledStore`) unless said: documents made durable one per object vs all in one object
/// at 10/50/100/500 documents; 200 documents at 5/10/20/50 per object (8 uploads in flight);
/// 100/500/1,000 documents at 4 per object, 10 in flight; the fault-injecting store (no fault
/// armed) over the local file store against the local file store alone; and single PUT
/// (64 KiB), GET, DELETE and LIST calls at 0, 20 and 50 ms of added latency.
fn matrix(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let docs = documents(1_000, 13);
    let flush = |group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
                 id: BenchmarkId,
                 n: usize,
                 batch: usize,
                 in_flight: usize,
                 store: &dyn Fn() -> Arc<dyn ObjectStore>| {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| rt.block_on(flush_time(store(), &docs[..n], batch, in_flight)))
                    .sum()
            })
        });
    };
    let mut group = c.benchmark_group("matrix_20ms");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for n in [10, 50, 100, 500] {
        flush(
            &mut group,
            BenchmarkId::new("sequential", n),
            n,
            1,
            1,
            &throttled,
        );
        flush(
            &mut group,
            BenchmarkId::new("batched", n),
            n,
            n,
            1,
            &throttled,
        );
    }
    for per_object in [5, 10, 20, 50] {
        flush(
            &mut group,
            BenchmarkId::new("batch_size_200docs", per_object),
            200,
            per_object,
            8,
            &throttled,
        );
    }
    for n in [100, 500, 1_000] {
        flush(
            &mut group,
            BenchmarkId::new("parallel_4docs_per_object_10_in_flight", n),
            n,
            4,
            10,
            &throttled,
        );
    }
    group.finish();

    let mut group = c.benchmark_group("matrix_store_200docs_20_per_object");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    let dir = tempfile::tempdir().unwrap();
    let local = || -> Arc<dyn ObjectStore> {
        let d = dir.path().join(uuid_like().to_string());
        std::fs::create_dir_all(&d).unwrap();
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(d).unwrap())
    };
    let faulty = || -> Arc<dyn ObjectStore> {
        Arc::new(akidb_engine::store::faulty::FaultyStore::new(local()))
    };
    flush(
        &mut group,
        BenchmarkId::new("local_file", 200),
        200,
        20,
        8,
        &local,
    );
    flush(
        &mut group,
        BenchmarkId::new("faulty_over_local_file", 200),
        200,
        20,
        8,
        &faulty,
    );
    group.finish();

    use object_store::ObjectStoreExt;
    let mut group = c.benchmark_group("matrix_single_op");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(2));
    let body = bytes::Bytes::from(vec![7u8; 64 * 1024]);
    for ms in [0u64, 20, 50] {
        let wait = Duration::from_millis(ms);
        let store = ThrottledStore::new(
            InMemory::new(),
            ThrottleConfig {
                wait_put_per_call: wait,
                wait_get_per_call: wait,
                wait_delete_per_call: wait,
                wait_list_per_call: wait,
                ..Default::default()
            },
        );
        let path = object_store::path::Path::from("bench/object");
        rt.block_on(store.put(&path, body.clone().into())).unwrap();
        group.bench_function(BenchmarkId::new("put_64KiB", format!("{ms}ms")), |b| {
            b.iter(|| rt.block_on(store.put(&path, body.clone().into())).unwrap())
        });
        group.bench_function(BenchmarkId::new("get_64KiB", format!("{ms}ms")), |b| {
            b.iter(|| rt.block_on(async { store.get(&path).await.unwrap().bytes().await.unwrap() }))
        });
        group.bench_function(BenchmarkId::new("delete", format!("{ms}ms")), |b| {
            b.iter(|| rt.block_on(store.delete(&path)).unwrap())
        });
        group.bench_function(BenchmarkId::new("list", format!("{ms}ms")), |b| {
            b.iter(|| {
                rt.block_on(async {
                    use futures::TryStreamExt;
                    store.list(None).try_collect::<Vec<_>>().await.unwrap()
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, pipeline, matrix, s3_loopback);
criterion_main!(benches);

/// The engine's S3 settings for a loopback server.
fn s3_options(ep: &akidb_testkit::S3Endpoint) -> akidb_engine::S3Options {
    akidb_engine::S3Options::static_credentials(
        &ep.endpoint,
        &ep.access_key_id,
        &ep.secret_access_key,
    )
}

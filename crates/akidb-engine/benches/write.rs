//! Write-path benchmarks.
//!
//! - `upsert/*`: acknowledged upserts through the engine: batches of 1,000 384-d vectors, each
//!   acknowledged only after its WAL fsync, with the background indexer running as in production.
//! - `indexed/*`: the sustained rate at which data becomes *indexed*: ingest 5,000 vectors, then
//!   wait until the HNSW graph holds all of them.
//! - `wal/*`: WAL append + group-commit fsync with 1, 8 and 64 concurrent writers (1.5 KiB records).
//! - `segment/*`: Parquet segment encode and decode of 10,000 random 384-d documents.
//!
//! Run: `cargo bench -p akidb-engine --bench write`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use akidb_core::Metric;
use akidb_engine::segment::{self, Row};
use akidb_engine::wal::{FilePool, Wal, WalStats};
use akidb_engine::{CreateCollection, Document, Engine, EngineConfig, NewDocument};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const DIM: usize = 384;

struct Rng(u64);
impl Rng {
    fn f32(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn vector(&mut self) -> Vec<f32> {
        (0..DIM).map(|_| self.f32()).collect()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn open_engine(rt: &tokio::runtime::Runtime, dir: &std::path::Path) -> Engine {
    rt.block_on(async {
        let engine = Engine::open(EngineConfig::new(dir)).await.unwrap();
        engine
            .create_collection(CreateCollection {
                name: "bench".into(),
                dimension: DIM,
                metric: Metric::Cosine,
                m: None,
                ef_construction: None,
                ef_search: None,
                quantization: None,
            })
            .await
            .unwrap();
        engine
    })
}

fn batch(rng: &mut Rng, next_id: &AtomicU64, n: usize) -> Vec<NewDocument> {
    (0..n)
        .map(|_| NewDocument {
            id: Some(format!("d{}", next_id.fetch_add(1, Ordering::Relaxed))),
            vector: rng.vector(),
            metadata: None,
        })
        .collect()
}

fn upsert(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let engine = open_engine(&rt, dir.path());
    let mut rng = Rng(42);
    let next_id = AtomicU64::new(0);
    let mut group = c.benchmark_group("upsert");
    group
        .throughput(Throughput::Elements(1000))
        .sample_size(30)
        .measurement_time(Duration::from_secs(10));
    // Fresh ids every batch (generated outside the timed part): new documents, not replacements.
    group.bench_function("batch1000_dim384_fsync", |b| {
        b.iter_batched(
            || batch(&mut rng, &next_id, 1000),
            |docs| rt.block_on(engine.upsert("bench", docs)).unwrap(),
            BatchSize::PerIteration,
        )
    });
    {
        let clients = 4usize;
        group.throughput(Throughput::Elements(1000 * clients as u64));
        group.bench_function(BenchmarkId::new("concurrent_clients", clients), |b| {
            b.iter_batched(
                || {
                    (0..clients)
                        .map(|_| batch(&mut rng, &next_id, 1000))
                        .collect::<Vec<_>>()
                },
                |batches| {
                    rt.block_on(async {
                        let tasks: Vec<_> = batches
                            .into_iter()
                            .map(|docs| {
                                let engine = engine.clone();
                                tokio::spawn(
                                    async move { engine.upsert("bench", docs).await.unwrap() },
                                )
                            })
                            .collect();
                        for t in tasks {
                            t.await.unwrap();
                        }
                    })
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
    let info = rt.block_on(engine.collection_info("bench")).unwrap();
    println!(
        "after the upsert benchmark: {} documents, {} not yet indexed (indexing trails; they are searched exactly)",
        info.count, info.index_pending
    );
}

fn indexed(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let engine = open_engine(&rt, dir.path());
    let mut rng = Rng(7);
    let next_id = AtomicU64::new(0);
    let n = 5000;
    let mut group = c.benchmark_group("indexed");
    group
        .throughput(Throughput::Elements(n as u64))
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("ingest_until_indexed_5000_dim384", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let docs: Vec<_> = (0..5).map(|_| batch(&mut rng, &next_id, 1000)).collect();
                let started = Instant::now();
                rt.block_on(async {
                    for d in docs {
                        engine.upsert("bench", d).await.unwrap();
                    }
                    while engine.collection_info("bench").await.unwrap().index_pending > 0 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                });
                total += started.elapsed();
            }
            total
        })
    });
    group.finish();
}

fn wal_group_commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("wal");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    let record = vec![7u8; 1536];
    for writers in [1usize, 8, 64] {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(
            dir.path(),
            0,
            Arc::new(WalStats::default()),
            FilePool::new(16),
        )
        .unwrap();
        let wal = Arc::new(wal);
        let per_writer = 2000 / writers.max(1);
        group.throughput(Throughput::Elements((per_writer * writers) as u64));
        group.bench_function(BenchmarkId::new("append_fsync_1536B", writers), |b| {
            b.iter(|| {
                std::thread::scope(|s| {
                    for _ in 0..writers {
                        let wal = wal.clone();
                        let record = &record;
                        s.spawn(move || {
                            for _ in 0..per_writer {
                                let seq = wal.append(record, |_| {}).unwrap();
                                wal.sync(seq).unwrap();
                            }
                        });
                    }
                });
            })
        });
    }
    group.finish();
}

fn segments(c: &mut Criterion) {
    let mut rng = Rng(99);
    let rows: Vec<Row> = (0..10_000)
        .map(|i| {
            let mut m = akidb_engine::Metadata::new();
            m.insert("i".into(), i.into());
            Row::Put(Document {
                id: format!("doc-{i}"),
                vector: rng.vector(),
                metadata: Some(m),
            })
        })
        .collect();
    let encoded = segment::encode(DIM, &rows).unwrap();
    println!(
        "segment of 10,000 x 384-d documents: {} bytes (raw vectors {} bytes)",
        encoded.len(),
        10_000 * DIM * 4
    );
    let mut group = c.benchmark_group("segment");
    group
        .throughput(Throughput::Elements(rows.len() as u64))
        .sample_size(10);
    group.bench_function("encode_10k_dim384", |b| {
        b.iter(|| segment::encode(DIM, &rows).unwrap())
    });
    group.bench_function("decode_10k_dim384", |b| {
        b.iter(|| segment::decode(DIM, encoded.clone()).unwrap())
    });
    group.finish();
}

criterion_group!(benches, upsert, indexed, wal_group_commit, segments);
criterion_main!(benches);

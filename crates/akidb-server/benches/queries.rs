//! Filtered and batched search on the minilm data set (`../shared/data/debian-minilm-384`).
//!
//! 1. **Filtered search**, in process (the engine): 20,000 vectors, each with metadata
//!    `{"bucket": i % 100}`, fully indexed; filters of 50%, 10% and 1% selectivity
//!    (`bucket < 50`, `< 10`, `== 0` as `$lt`/`$eq`). For each, at the collection's default
//!    `ef`: recall@10 against the exact filtered answer (the engine's `exact: true`), QPS with one
//!    thread, beside the unfiltered search, the engine's exact filtered search, and brute force
//!    over the matching vectors alone (the distance to each match, computed here: the floor a
//!    filtered search could reach by knowing its matches in advance).
//! 2. **Batch search** over HTTP against the real `akidb` binary (`target/release/akidb`): 100
//!    queries as 100 requests one after another, as 100 requests 8 at a time, and as one
//!    `search/batch` request; queries per second, median of 7 rounds.
//!
//! Run: `cargo bench -p akidb-server --bench queries` (`AKIDB_QUERIES_DATA` for another folder,
//! `AKIDB_QUERIES_N` for fewer queries).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use akidb_core::Metric;
use akidb_engine::{CreateCollection, Engine, EngineConfig, IndexType, NewDocument, SearchQuery};
use serde_json::{Value, json};

const K: usize = 10;

/// A filter case: its label, the filter, and which rows match it.
type Case = (&'static str, Option<Value>, fn(usize) -> bool);

fn data_dir() -> PathBuf {
    std::env::var_os("AKIDB_QUERIES_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/debian-minilm-384")
        })
}

fn load() -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let dir = data_dir();
    let (_, base) = akidb_testkit::read_fvecs(&dir.join("base.fvecs")).expect("base.fvecs");
    let (_, mut queries) =
        akidb_testkit::read_fvecs(&dir.join("queries.fvecs")).expect("queries.fvecs");
    if let Some(n) = std::env::var("AKIDB_QUERIES_N")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        queries.truncate(n);
    }
    (base, queries)
}

fn unit(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

fn query(v: &[f32], filter: Option<&Value>, exact: bool) -> SearchQuery {
    SearchQuery {
        exact,
        filter: filter.cloned(),
        ..SearchQuery::new(v.to_vec(), K)
    }
}

fn main() {
    let (base, queries) = load();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "# queries bench: {} base vectors, {} queries, k = {K}, machine: {} cores, load {}",
        base.len(),
        queries.len(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    rt.block_on(filtered(&base, &queries));
    rt.block_on(batched(&base, &queries));
}

async fn filtered(base: &[Vec<f32>], queries: &[Vec<f32>]) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
    engine
        .create_collection(CreateCollection::new("q", base[0].len(), Metric::Cosine))
        .await
        .unwrap();
    for (c, chunk) in base.chunks(1000).enumerate() {
        let docs = chunk
            .iter()
            .enumerate()
            .map(|(j, v)| {
                let i = c * 1000 + j;
                NewDocument {
                    id: Some(i.to_string()),
                    vector: v.clone(),
                    metadata: Some(json!({"bucket": i % 100})),
                }
            })
            .collect();
        engine.upsert("q", docs).await.unwrap();
    }
    while engine.collection_info("q").await.unwrap().index_pending > 0 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let unit_base: Vec<Vec<f32>> = base.iter().map(|v| unit(v)).collect();
    for indexed in [false, true] {
        if indexed {
            engine
                .create_payload_index("q", "bucket", IndexType::Integer)
                .await
                .unwrap();
        }
        filtered_table(&engine, base, &unit_base, queries, indexed).await;
    }
    engine.shutdown().await;
}

async fn filtered_table(
    engine: &Engine,
    base: &[Vec<f32>],
    unit_base: &[Vec<f32>],
    queries: &[Vec<f32>],
    indexed: bool,
) {
    let with = if indexed {
        "with an integer payload index on bucket"
    } else {
        "no payload index"
    };
    println!("\n## Filtered search (engine, one thread, default ef, {with})\n");
    println!(
        "| filter | matches | recall@10 | QPS | exact filtered QPS | brute force over the matches QPS |"
    );
    println!("|---|---|---|---|---|---|");
    let cases: [Case; 4] = [
        ("none", None, |_| true),
        ("50%", Some(json!({"bucket": {"$lt": 50}})), |i| {
            i % 100 < 50
        }),
        ("10%", Some(json!({"bucket": {"$lt": 10}})), |i| {
            i % 100 < 10
        }),
        ("1%", Some(json!({"bucket": {"$eq": 0}})), |i| i % 100 == 0),
    ];
    for (label, filter, keep) in &cases {
        let matches: Vec<usize> = (0..base.len()).filter(|&i| keep(i)).collect();
        // Exact answers (and their speed).
        let started = Instant::now();
        let mut truth = Vec::with_capacity(queries.len());
        for q in queries {
            let hits = engine
                .search("q", query(q, filter.as_ref(), true))
                .await
                .unwrap();
            truth.push(hits.into_iter().map(|h| h.id).collect::<Vec<_>>());
        }
        let exact_qps = queries.len() as f64 / started.elapsed().as_secs_f64();
        // Warm-up, then the timed approximate pass.
        for q in queries.iter().take(50) {
            engine
                .search("q", query(q, filter.as_ref(), false))
                .await
                .unwrap();
        }
        let started = Instant::now();
        let mut found = 0usize;
        for (q, want) in queries.iter().zip(&truth) {
            let hits = engine
                .search("q", query(q, filter.as_ref(), false))
                .await
                .unwrap();
            found += hits.iter().filter(|h| want.contains(&h.id)).count();
        }
        let qps = queries.len() as f64 / started.elapsed().as_secs_f64();
        let recall = found as f64 / truth.iter().map(Vec::len).sum::<usize>() as f64;
        // The floor: distances to the matches only, top k kept.
        let started = Instant::now();
        let mut sink = 0.0f32;
        for q in queries {
            let q = unit(q);
            let mut best: Vec<(f32, usize)> = Vec::with_capacity(K + 1);
            for &i in &matches {
                let d = 1.0 - q.iter().zip(&unit_base[i]).map(|(a, b)| a * b).sum::<f32>();
                if best.len() < K || d < best[K - 1].0 {
                    let at = best.partition_point(|&(x, _)| x <= d);
                    best.insert(at, (d, i));
                    best.truncate(K);
                }
            }
            sink += best[0].0;
        }
        let brute_qps = queries.len() as f64 / started.elapsed().as_secs_f64();
        std::hint::black_box(sink);
        println!(
            "| {label} | {} | {recall:.4} | {qps:.0} | {exact_qps:.0} | {brute_qps:.0} |",
            matches.len()
        );
    }
}

async fn batched(base: &[Vec<f32>], queries: &[Vec<f32>]) {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/release/akidb");
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) =
        akidb_testkit::spawn_akidb(&bin, dir.path(), &[], "info", false).expect("start akidb");
    let url = format!("http://{addr}");
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        let req = http.post(format!("{url}{path}")).json(&body);
        async move {
            let r = req.send().await.unwrap();
            assert!(r.status().is_success(), "{}", r.status());
            r.json::<Value>().await.unwrap()
        }
    };
    post(
        "/api/v1/collections",
        json!({"name": "b", "dimension": base[0].len(), "metric": "cosine"}),
    )
    .await;
    for (c, chunk) in base.chunks(1000).enumerate() {
        let documents: Vec<Value> = chunk
            .iter()
            .enumerate()
            .map(|(j, v)| json!({"id": (c * 1000 + j).to_string(), "vector": v}))
            .collect();
        post(
            "/api/v1/collections/b/documents",
            json!({ "documents": documents }),
        )
        .await;
    }
    loop {
        let info = http
            .get(format!("{url}/api/v1/collections/b"))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        if info["index_pending"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let searches: Vec<Value> = queries
        .iter()
        .cycle()
        .take(100)
        .map(|q| json!({"vector": q, "k": K}))
        .collect();
    let mut singles = Vec::new();
    let mut parallel = Vec::new();
    let mut batch = Vec::new();
    for round in 0..8 {
        let started = Instant::now();
        for s in &searches {
            post("/api/v1/collections/b/search", s.clone()).await;
        }
        let t1 = started.elapsed();
        let started = Instant::now();
        use futures::StreamExt;
        futures::stream::iter(searches.iter().cloned())
            .map(|s| post("/api/v1/collections/b/search", s))
            .buffer_unordered(8)
            .collect::<Vec<_>>()
            .await;
        let t2 = started.elapsed();
        let started = Instant::now();
        let r = post(
            "/api/v1/collections/b/search/batch",
            json!({ "searches": searches }),
        )
        .await;
        let t3 = started.elapsed();
        assert_eq!(r["batches"].as_array().unwrap().len(), 100);
        if round > 0 {
            singles.push(100.0 / t1.as_secs_f64());
            parallel.push(100.0 / t2.as_secs_f64());
            batch.push(100.0 / t3.as_secs_f64());
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let (s, p, b) = (
        median(&mut singles),
        median(&mut parallel),
        median(&mut batch),
    );
    println!("\n## Batch search over HTTP (100 queries, median of 7 rounds)\n");
    println!("| how | queries/s | vs one at a time |");
    println!("|---|---|---|");
    println!("| 100 requests, one at a time | {s:.0} | 1.00 |");
    println!("| 100 requests, 8 at a time | {p:.0} | {:.2} |", p / s);
    println!("| one search/batch of 100 | {b:.0} | {:.2} |", b / s);
    let _ = child.kill();
    let _ = child.wait();
}

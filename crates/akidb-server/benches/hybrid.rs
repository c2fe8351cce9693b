//! Full-text and hybrid search on the minilm data set (`../shared/data/debian-minilm-384`),
//! in process (the engine), one thread: 20,000 Debian package descriptions with their MiniLM
//! vectors, a `text` index on the description; 1,000 queries, each another package's vector
//! and its description as the text.
//!
//! For each query: the vector top 10 (default `ef`), the text top 10 (BM25) and the hybrid top
//! 10 (reciprocal rank fusion at text weights 0.25, 0.5 and 0.75). Reported: how much of the
//! fused top 10 each side's top 10 holds (overlap), each ranking's recall@10 against the exact
//! vector neighbours (the data set's ground truth, i.e. agreement with semantic similarity),
//! and latency (p50, p99). Then what the text index costs: RAM, building it over a full
//! collection, and the first search after a restart (the index is rebuilt at every load) with
//! and without a text index.
//!
//! Run: `cargo bench -p akidb-server --bench hybrid` (`AKIDB_QUERIES_DATA` for another folder,
//! `AKIDB_QUERIES_N` for fewer queries).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use akidb_core::Metric;
use akidb_engine::{
    CreateCollection, Engine, EngineConfig, IndexType, NewDocument, SearchQuery, TextSearch,
};
use serde_json::{Value, json};

const K: usize = 10;

fn data_dir() -> PathBuf {
    std::env::var_os("AKIDB_QUERIES_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/debian-minilm-384")
        })
}

fn texts(path: &Path) -> Vec<String> {
    let f = std::fs::File::open(path).expect("texts file");
    std::io::BufReader::new(f)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(&l.unwrap()).unwrap();
            v["text"].as_str().unwrap().to_string()
        })
        .collect()
}

fn query(vector: Option<&[f32]>, text: Option<&str>, weight: f32) -> SearchQuery {
    SearchQuery {
        text: text.map(|t| TextSearch {
            query: t.to_string(),
            field: None,
            weight: Some(weight),
        }),
        ..SearchQuery::new(vector.map_or(Vec::new(), <[f32]>::to_vec), K)
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
}

async fn fill(engine: &Engine, name: &str, base: &[Vec<f32>], texts: &[String]) {
    for (c, chunk) in base.chunks(1000).enumerate() {
        let docs = chunk
            .iter()
            .enumerate()
            .map(|(j, v)| {
                let i = c * 1000 + j;
                NewDocument {
                    id: Some(i.to_string()),
                    vector: v.clone(),
                    metadata: Some(json!({"text": texts[i]})),
                }
            })
            .collect();
        engine.upsert(name, docs).await.unwrap();
    }
    while engine.collection_info(name).await.unwrap().index_pending > 0 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn main() {
    let dir = data_dir();
    let (_, base) = akidb_testkit::read_fvecs(&dir.join("base.fvecs")).expect("base.fvecs");
    let (_, mut queries) =
        akidb_testkit::read_fvecs(&dir.join("queries.fvecs")).expect("queries.fvecs");
    let (_, truth) = akidb_testkit::read_ivecs(&dir.join("groundtruth.ivecs")).expect("truth");
    let base_texts = texts(&dir.join("texts-base.jsonl"));
    let query_texts = texts(&dir.join("texts-queries.jsonl"));
    if let Some(n) = std::env::var("AKIDB_QUERIES_N")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        queries.truncate(n);
    }
    println!(
        "# hybrid bench: {} documents, {} queries, k = {K}, machine: {} cores, load {}",
        base.len(),
        queries.len(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let data = tempfile::tempdir().unwrap();
        let engine = Engine::open(EngineConfig::new(data.path())).await.unwrap();
        for name in ["plain", "texts"] {
            engine
                .create_collection(CreateCollection::new(name, base[0].len(), Metric::Cosine))
                .await
                .unwrap();
            fill(&engine, name, &base, &base_texts).await;
        }
        let before = engine.collection_info("texts").await.unwrap().bytes_in_ram;
        let t = Instant::now();
        engine
            .create_payload_index("texts", "text", IndexType::Text)
            .await
            .unwrap();
        engine
            .search("texts", query(None, Some("warm up"), 0.5))
            .await
            .unwrap();
        let build = t.elapsed();
        let after = engine.collection_info("texts").await.unwrap().bytes_in_ram;
        rankings(&engine, &queries, &query_texts, &truth).await;
        println!("\n## What the text index costs\n");
        println!(
            "- building it over the {} documents and its first commit: {:.2} s",
            base.len(),
            build.as_secs_f64()
        );
        println!(
            "- RAM: {:.1} MiB (the collection's bytes_in_ram, {:.1} → {:.1} MiB)",
            (after - before) as f64 / 1048576.0,
            before as f64 / 1048576.0,
            after as f64 / 1048576.0
        );
        engine.shutdown().await;
        drop(engine);
        // After a restart each collection is loaded by its first search (the text index is
        // rebuilt during the load).
        let engine = Engine::open(EngineConfig::new(data.path())).await.unwrap();
        for (name, q) in [
            ("plain", query(Some(&queries[0]), None, 0.5)),
            ("texts", query(Some(&queries[0]), None, 0.5)),
        ] {
            let t = Instant::now();
            engine.search(name, q).await.unwrap();
            println!(
                "- first vector search after a restart, collection {}: {:.2} s",
                if name == "plain" {
                    "without a text index"
                } else {
                    "with one"
                },
                t.elapsed().as_secs_f64()
            );
        }
        let t = Instant::now();
        engine
            .search("texts", query(None, Some(&query_texts[0]), 0.5))
            .await
            .unwrap();
        println!(
            "- then the first text search (tantivy's commit of the rebuilt index): {:.2} s",
            t.elapsed().as_secs_f64()
        );
        engine.shutdown().await;
    });
}

async fn rankings(engine: &Engine, queries: &[Vec<f32>], texts: &[String], truth: &[Vec<i32>]) {
    let ids =
        |hits: Vec<akidb_engine::Hit>| -> Vec<String> { hits.into_iter().map(|h| h.id).collect() };
    let mut by_vector = Vec::new();
    let mut by_text = Vec::new();
    let mut lat_vector = Vec::new();
    let mut lat_text = Vec::new();
    for (q, t) in queries.iter().zip(texts) {
        let s = Instant::now();
        by_vector.push(ids(engine
            .search("texts", query(Some(q), None, 0.5))
            .await
            .unwrap()));
        lat_vector.push(s.elapsed());
        let s = Instant::now();
        by_text.push(ids(engine
            .search("texts", query(None, Some(t), 0.5))
            .await
            .unwrap()));
        lat_text.push(s.elapsed());
    }
    let recall = |answers: &[Vec<String>]| -> f64 {
        answers
            .iter()
            .zip(truth)
            .map(|(a, t)| {
                let t: Vec<String> = t[..K].iter().map(|i| i.to_string()).collect();
                a.iter().filter(|id| t.contains(id)).count() as f64 / K as f64
            })
            .sum::<f64>()
            / answers.len() as f64
    };
    let overlap = |a: &[Vec<String>], b: &[Vec<String>]| -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| x.iter().filter(|id| y.contains(id)).count() as f64 / K as f64)
            .sum::<f64>()
            / a.len() as f64
    };
    println!("\n## Rankings (engine, one thread, default ef)\n");
    println!(
        "| ranking | overlap with the vector top 10 | overlap with the text top 10 | recall@10 vs exact vector neighbours | p50 ms | p99 ms |"
    );
    println!("|---|---|---|---|---|---|");
    let row = |label: &str, answers: &[Vec<String>], lat: &mut Vec<Duration>| {
        lat.sort();
        println!(
            "| {label} | {:.3} | {:.3} | {:.4} | {:.2} | {:.2} |",
            overlap(answers, &by_vector),
            overlap(answers, &by_text),
            recall(answers),
            percentile(lat, 0.5),
            percentile(lat, 0.99)
        );
    };
    row("vector", &by_vector, &mut lat_vector.clone());
    row("text (BM25)", &by_text, &mut lat_text.clone());
    for weight in [0.25f32, 0.5, 0.75] {
        let mut fused = Vec::new();
        let mut lat = Vec::new();
        for (q, t) in queries.iter().zip(texts) {
            let s = Instant::now();
            fused.push(ids(engine
                .search("texts", query(Some(q), Some(t), weight))
                .await
                .unwrap()));
            lat.push(s.elapsed());
        }
        row(&format!("hybrid, text_weight {weight}"), &fused, &mut lat);
    }
    // A user's query is shorter than a package description: its first five words.
    let short: Vec<String> = texts
        .iter()
        .map(|t| t.split_whitespace().take(5).collect::<Vec<_>>().join(" "))
        .collect();
    for weight in [None, Some(0.5f32)] {
        let mut answers = Vec::new();
        let mut lat = Vec::new();
        for (q, t) in queries.iter().zip(&short) {
            let v = weight.map(|_| q.as_slice());
            let s = Instant::now();
            answers.push(ids(engine
                .search("texts", query(v, Some(t), weight.unwrap_or(0.5)))
                .await
                .unwrap()));
            lat.push(s.elapsed());
        }
        let label = match weight {
            None => "text (BM25), first 5 words".to_string(),
            Some(w) => format!("hybrid, text_weight {w}, first 5 words"),
        };
        row(&label, &answers, &mut lat);
    }
}

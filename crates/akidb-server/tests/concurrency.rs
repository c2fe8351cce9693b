//! Concurrency over HTTP against the real binary, with the tiering task moving collections all
//! the time (hot and warm idle 1 s, policy every second) and flushes every 7 documents:
//! 10 writers × 100 documents into one collection, 50 tasks × 10 documents across nine more,
//! and 20 API workers reading meanwhile. Afterwards every acknowledged document is in the
//! object store exactly once and is found by search, after a restart too.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use akidb_engine::manifest::Manifest;
use akidb_engine::segment::{self, Row};
use common::{Api, Server};
use serde_json::{Value, json};

const DIM: usize = 8;

fn vector(seed: u64) -> Vec<f32> {
    akidb_testkit::seeded_vector(seed, DIM)
}

async fn put(api: &Api, name: &str, i: u64) {
    api.post(
        &format!("/api/v1/collections/{name}/documents"),
        json!({"documents": [{"id": format!("d{i}"), "vector": vector(i)}]}),
    )
    .await;
}

/// Every `Put` row, by id, in the newest manifest's segments on the `file://` store.
fn stored_rows(objects: &std::path::Path, id: &str) -> HashMap<String, usize> {
    let dir = objects.join("collections").join(id).join("manifest");
    let newest = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .max()
        .unwrap();
    let manifest = Manifest::parse(newest.display(), &std::fs::read(&newest).unwrap()).unwrap();
    let mut rows = HashMap::new();
    for seg in &manifest.segments {
        let data = std::fs::read(objects.join(&seg.path)).unwrap();
        for row in segment::decode(DIM, data.into()).unwrap() {
            if let Row::Put(d) = row {
                *rows.entry(d.id).or_insert(0) += 1;
            }
        }
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_readers_flushes_and_tier_moves_over_http_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--flush-max-docs",
        "7",
        "--flush-idle-secs",
        "1",
        "--tier-interval-secs",
        "1",
        "--tier-hot-idle-secs",
        "1",
        "--tier-warm-idle-secs",
        "1",
    ];
    let server = Server::start(dir.path(), &args);
    let api = Arc::new(Api::new(&server));
    let names: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
    for n in &names {
        api.post(
            "/api/v1/collections",
            json!({"name": n, "dimension": DIM, "metric": "l2"}),
        )
        .await;
    }
    let mut expected: HashMap<String, Vec<u64>> = HashMap::new();
    let mut tasks = vec![];
    for w in 0..10u64 {
        let api = api.clone();
        let ids: Vec<u64> = (0..100).map(|i| w * 1000 + i).collect();
        expected.entry("c0".into()).or_default().extend(&ids);
        tasks.push(tokio::spawn(async move {
            for i in ids {
                put(&api, "c0", i).await;
            }
        }));
    }
    for t in 0..50u64 {
        let api = api.clone();
        let name = names[1 + (t as usize % 9)].clone();
        let ids: Vec<u64> = (0..10).map(|i| 100_000 + t * 100 + i).collect();
        expected.entry(name.clone()).or_default().extend(&ids);
        tasks.push(tokio::spawn(async move {
            for i in ids {
                put(&api, &name, i).await;
                // Spread the writes over a few seconds, so collections go idle and move.
                tokio::time::sleep(std::time::Duration::from_millis(40)).await;
            }
        }));
    }
    for r in 0..20u64 {
        let api = api.clone();
        let names = names.clone();
        tasks.push(tokio::spawn(async move {
            // About 3 s: the first 30 reads keep c0..c4 busy while c5..c9, written in the
            // first half second, go idle and are demoted; the last 10 read c5..c9 back (loading
            // or promoting them) while the tiering task keeps running.
            for q in 0..40u64 {
                let name = if q < 30 {
                    &names[((r + q) % 5) as usize]
                } else {
                    &names[5 + ((r + q) % 5) as usize]
                };
                let v = api
                    .post(
                        &format!("/api/v1/collections/{name}/search"),
                        json!({"vector": vector(r * 100 + q), "k": 5}),
                    )
                    .await;
                assert!(v["results"].is_array(), "{v}");
                let (status, _) = api.get(&format!("/api/v1/collections/{name}/tier")).await;
                assert_eq!(status, 200);
                tokio::time::sleep(std::time::Duration::from_millis(80)).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // The tiering task really moved collections during the run.
    let (_, metrics) = api.get("/metrics").await;
    let moves: f64 = metrics
        .as_str()
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("akidb_tier_moves_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    eprintln!("tier moves during the run: {moves}");
    assert!(moves > 0.0, "no tier moves:\n{metrics}");
    let (_, list) = api.get("/api/v1/collections").await;
    let ids: HashMap<String, String> = list["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().into(),
                c["id"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(server.terminate().success()); // flushes what is left

    // Exactly once in the object store.
    let objects = dir.path().join("objects");
    for (name, docs) in &expected {
        let rows = stored_rows(&objects, &ids[name]);
        assert_eq!(rows.len(), docs.len(), "{name}");
        for d in docs {
            assert_eq!(rows.get(&format!("d{d}")), Some(&1), "{name}: d{d}");
        }
    }
    // And found by search after a restart (every collection comes back warm or cold).
    let server = Server::start(dir.path(), &args);
    let api = Api::new(&server);
    for (name, docs) in &expected {
        let (_, info) = api.get(&format!("/api/v1/collections/{name}")).await;
        assert_eq!(info["count"], docs.len(), "{name}: {info}");
        for d in docs.iter().step_by(10) {
            let v: Value = api
                .post(
                    &format!("/api/v1/collections/{name}/search"),
                    json!({"vector": vector(*d), "k": 1, "exact": true}),
                )
                .await;
            assert_eq!(v["results"][0]["id"], format!("d{d}"), "{name}");
        }
    }
}

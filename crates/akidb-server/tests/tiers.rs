//! Tiers over HTTP against the real binary on real S3-compatible servers (moto, and SeaweedFS
//! when `scripts/test` runs it), with the 20,000 real vectors of `debian-minilm-384`:
//! demoted to cold (local files gone, RSS down), queried cold (same top-10 as hot), promoted,
//! then a new server with an empty data dir and the same bucket answers the same again; and a
//! collection with a partitioned base answers cold from a fraction of its bytes.

mod common;

use akidb_testkit::{s3_servers, unique_prefix};
use common::{Api, Server, data_dir, read_fvecs, rss_bytes};
use serde_json::{Value, json};

const N: usize = 20_000;

/// Top-10 ids and scores of every query (HNSW at the collection's default ef).
async fn top10(api: &Api, queries: &[Vec<f32>]) -> Vec<Value> {
    let mut out = vec![];
    for q in queries {
        let v = api
            .post(
                "/api/v1/collections/minilm/search",
                json!({"vector": q, "k": 10}),
            )
            .await;
        out.push(v["results"].clone());
    }
    out
}

fn local_objects(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                local_objects(&p)
            } else {
                let name = p.to_string_lossy();
                usize::from(name.ends_with(".parquet") || name.ends_with(".hnsw"))
            }
        })
        .sum()
}

/// Creates collection `minilm` and upserts `base` as `doc-<i>` with metadata `{"i": i}`.
async fn create_and_fill(api: &Api, base: &[Vec<f32>]) {
    api.post(
        "/api/v1/collections",
        json!({"name": "minilm", "dimension": 384, "metric": "cosine"}),
    )
    .await;
    for (c, chunk) in base.chunks(1000).enumerate() {
        let docs: Vec<Value> = chunk
            .iter()
            .enumerate()
            .map(|(i, v)| json!({"id": format!("doc-{}", c * 1000 + i), "vector": v, "metadata": {"i": c * 1000 + i}}))
            .collect();
        api.post(
            "/api/v1/collections/minilm/documents",
            json!({"documents": docs}),
        )
        .await;
    }
}

async fn tier(api: &Api, action: &str, target: Option<&str>) -> Value {
    let mut body = json!({"action": action});
    if let Some(t) = target {
        body["target"] = json!(t);
    }
    api.post("/api/v1/collections/minilm/tier", body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minilm_round_trip_through_cold_on_real_s3() {
    let data = data_dir();
    let base = read_fvecs(&data.join("base.fvecs"), N);
    let queries = read_fvecs(&data.join("queries.fvecs"), 100);
    let (_moto, servers) = s3_servers("akidb");
    for s3 in servers {
        let kind = s3.kind;
        let prefix = unique_prefix("minilm");
        let mut args = s3.serve_args(&prefix);
        args.extend(["--tiering".into(), "false".into()]); // moves only on command here
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(dir.path(), &args);
        let api = Api::new(&server);
        create_and_fill(&api, &base).await;
        api.wait_indexed("minilm").await;
        let hot = top10(&api, &queries).await;
        let (_, status) = api.get("/api/v1/collections/minilm/tier").await;
        assert_eq!(status["tier"], "hot", "{kind}: {status}");
        let rss_hot = rss_bytes(server.pid());

        let cold = tier(&api, "demote", Some("cold")).await;
        assert_eq!(cold["tier"], "cold", "{kind}: {cold}");
        assert_eq!(cold["bytes_in_ram"], 0);
        assert!(cold["bytes_in_object_store"].as_u64().unwrap() > (N * 384 * 4) as u64);
        assert_eq!(
            local_objects(dir.path()),
            0,
            "{kind}: cold keeps no local copies"
        );
        let rss_cold = rss_bytes(server.pid());
        eprintln!(
            "{kind}: RSS hot {:.1} MiB, cold {:.1} MiB",
            rss_hot as f64 / 1048576.0,
            rss_cold as f64 / 1048576.0
        );
        // The raw vectors alone are 30.7 MB.
        assert!(
            rss_cold + 25 * 1024 * 1024 < rss_hot,
            "{kind}: RSS did not go down: hot {rss_hot}, cold {rss_cold}"
        );
        let (_, tiers) = api.get("/api/v1/tiers").await;
        assert_eq!(tiers["cold"]["collections"], 1, "{tiers}");
        assert_eq!(tiers["hot"]["collections"], 0, "{tiers}");

        assert_eq!(top10(&api, &queries).await, hot, "{kind}: cold answers");
        let promoted = tier(&api, "promote", None).await;
        assert_eq!(promoted["tier"], "hot", "{kind}");
        assert_eq!(top10(&api, &queries).await, hot, "{kind}: promoted answers");
        let pinned = tier(&api, "pin", None).await;
        assert_eq!(
            (&pinned["tier"], &pinned["pinned"]),
            (&json!("hot"), &json!(true))
        );
        assert!(server.terminate().success());

        // A new machine: empty data dir, same bucket.
        let dir2 = tempfile::tempdir().unwrap();
        let server = Server::start(dir2.path(), &args);
        let api = Api::new(&server);
        let (_, status) = api.get("/api/v1/collections/minilm/tier").await;
        assert_eq!(status["tier"], "cold", "{kind}: {status}");
        assert_eq!(
            top10(&api, &queries).await,
            hot,
            "{kind}: answers after restart"
        );
        let (_, info) = api.get("/api/v1/collections/minilm").await;
        assert_eq!(info["count"], N, "{kind}");
        assert!(server.terminate().success());
    }
}

/// A collection with a partitioned base answers cold from a fraction of its bytes, says so in
/// the search report, and exact answers stay the same hot and cold (10,000 minilm vectors,
/// moto and SeaweedFS).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_collection_answers_cold_from_a_fraction_on_real_s3() {
    const ROWS: usize = 10_000;
    let data = data_dir();
    let base = read_fvecs(&data.join("base.fvecs"), ROWS);
    let queries = read_fvecs(&data.join("queries.fvecs"), 20);
    let (_moto, servers) = s3_servers("akidb");
    for s3 in servers {
        let kind = s3.kind;
        let mut args = s3.serve_args(&unique_prefix("partitioned"));
        // Moves only on command, and reads never promote: every query below is answered cold.
        args.extend(
            [
                "--tiering",
                "false",
                "--tier-promote-accesses",
                "1000000",
                "--partition-min-rows",
                "5000",
            ]
            .map(String::from),
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(dir.path(), &args);
        let api = Api::new(&server);
        create_and_fill(&api, &base).await;
        let search = |q: &Vec<f32>, extra: Value| {
            let mut body = json!({"vector": q, "k": 10, "report": true});
            body.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            api.post("/api/v1/collections/minilm/search", body)
        };
        let mut exact_hot = vec![];
        for q in &queries {
            let r = search(q, json!({"exact": true})).await;
            assert_eq!(r["report"]["tier"], "hot", "{kind}: {r}");
            exact_hot.push(r["results"].clone());
        }
        let cold = tier(&api, "demote", Some("cold")).await;
        assert_eq!(cold["tier"], "cold", "{kind}: {cold}");
        let stored = cold["bytes_in_object_store"].as_u64().unwrap();

        let (mut found, mut read) = (0, 0);
        for (q, truth) in queries.iter().zip(&exact_hot) {
            let r = search(q, json!({})).await;
            let report = &r["report"];
            assert_eq!(report["tier"], "cold", "{kind}: {r}");
            assert!(report["partitions"].as_u64().unwrap() >= 8, "{kind}: {r}");
            read += report["bytes_object_store"].as_u64().unwrap();
            let truth: Vec<&Value> = truth.as_array().unwrap().iter().map(|h| &h["id"]).collect();
            found += r["results"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|h| truth.contains(&&h["id"]))
                .count();
        }
        let recall = found as f64 / (10 * queries.len()) as f64;
        let fraction = read as f64 / (queries.len() as u64 * stored) as f64;
        eprintln!(
            "{kind}: cold recall@10 {recall:.3}, {:.1}% of the bytes per query",
            100.0 * fraction
        );
        assert!(
            fraction < 0.25,
            "{kind}: a cold query read {fraction:.3} of the bytes"
        );
        assert!(recall >= 0.7, "{kind}: cold recall@10 {recall}");
        for (q, truth) in queries.iter().zip(&exact_hot) {
            let r = search(q, json!({"exact": true})).await;
            assert_eq!(&r["results"], truth, "{kind}: exact answers cold");
        }
        let (status, err) = api
            .call(
                reqwest::Method::POST,
                "/api/v1/collections/minilm/search",
                Some(json!({"vector": &queries[0], "nprobe": 0})),
            )
            .await;
        assert_eq!(
            (status, &err["error"]["field"]),
            (400, &json!("nprobe")),
            "{err}"
        );
        let (_, metrics) = api.get("/metrics").await;
        let metrics = metrics.as_str().unwrap();
        for name in ["akidb_block_cache_misses_total", "akidb_block_cache_bytes"] {
            let value: f64 = metrics
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .unwrap_or_else(|| panic!("{name} missing"))
                .parse()
                .unwrap();
            assert!(value > 0.0, "{kind}: {name} {value}");
        }
        assert!(server.terminate().success());
    }
}

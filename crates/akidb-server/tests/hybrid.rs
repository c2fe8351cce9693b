//! Full-text and hybrid search over HTTP against the real binary, on real texts (Debian package
//! descriptions with their MiniLM vectors): BM25 answers that hold the query's words, filters,
//! the fusion's two ends, refusals naming their field, and the same answers hot, warm (with a
//! partitioned base), cold and after a restart.

mod common;

use std::io::BufRead;

use common::{Api, Server, data_dir, read_fvecs};
use reqwest::Method;
use serde_json::{Value, json};

const DOCS: usize = 3_000;

fn texts(file: &str, limit: usize) -> Vec<Value> {
    let f = std::fs::File::open(data_dir().join(file)).unwrap();
    std::io::BufReader::new(f)
        .lines()
        .take(limit)
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect()
}

async fn fill(api: &Api) {
    api.post(
        "/api/v1/collections",
        json!({"name": "deb", "dimension": 384, "metric": "cosine"}),
    )
    .await;
    let (status, e) = api
        .call(
            Method::POST,
            "/api/v1/collections/deb/indexes",
            Some(json!({"field": "text", "type": "text"})),
        )
        .await;
    assert_eq!(status, 201, "{e}");
    let vectors = read_fvecs(&data_dir().join("base.fvecs"), DOCS);
    let texts = texts("texts-base.jsonl", DOCS);
    for start in (0..DOCS).step_by(1_000) {
        let documents: Vec<Value> = (start..start + 1_000)
            .map(|i| {
                json!({"id": format!("p{i}"), "vector": vectors[i], "metadata": {
                    "package": texts[i]["package"], "text": texts[i]["text"], "section": i % 5}})
            })
            .collect();
        api.post(
            "/api/v1/collections/deb/documents",
            json!({ "documents": documents }),
        )
        .await;
    }
}

async fn search(api: &Api, body: Value) -> Vec<(String, f64, Value)> {
    let r = api.post("/api/v1/collections/deb/search", body).await;
    r["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["id"].as_str().unwrap().to_string(),
                h["score"].as_f64().unwrap(),
                h["metadata"].clone(),
            )
        })
        .collect()
}

fn ids(hits: &[(String, f64, Value)]) -> Vec<&str> {
    hits.iter().map(|h| h.0.as_str()).collect()
}

/// The searches compared across tiers: text alone, text with a filter, and hybrid (exact on
/// the vector side, so the answer does not depend on the graph or the partitions).
fn probes(queries: &[Vec<f32>], query_texts: &[Value]) -> Vec<Value> {
    let mut out = vec![
        json!({"text": "python bindings", "k": 10}),
        json!({"text": "Fonts for the X window system", "k": 20, "filter": {"section": {"$in": [1, 3]}}}),
    ];
    for i in 0..5 {
        out.push(
            json!({"vector": queries[i], "text": query_texts[i]["text"], "k": 10, "exact": true}),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_and_hybrid_search_over_http_in_every_tier() {
    let dir = tempfile::tempdir().unwrap();
    // Moves only on command, reads never promote, and a base is built at 1,000 rows: the warm
    // and cold answers below come from a collection with a partitioned base.
    let args = [
        "--tiering",
        "false",
        "--tier-promote-accesses",
        "1000000",
        "--partition-min-rows",
        "1000",
    ];
    let server = Server::start(dir.path(), &args);
    let api = Api::new(&server);
    fill(&api).await;
    api.wait_indexed("deb").await;

    // BM25: every hit holds a query word, best first.
    let hits = search(
        &api,
        json!({"text": "python bindings", "k": 10, "include_metadata": true}),
    )
    .await;
    assert_eq!(hits.len(), 10);
    assert!(hits.windows(2).all(|w| w[0].1 >= w[1].1), "{hits:?}");
    for (id, _, m) in &hits {
        let text = m["text"].as_str().unwrap().to_lowercase();
        assert!(
            text.contains("python") || text.contains("binding"),
            "{id}: {text}"
        );
    }
    // With a filter, only matching documents, still k of them.
    let hits = search(
        &api,
        json!({"text": "library", "k": 15, "filter": {"section": 4}, "include_metadata": true}),
    )
    .await;
    assert_eq!(hits.len(), 15);
    assert!(hits.iter().all(|h| h.2["section"] == 4), "{hits:?}");
    // A word no document holds: nothing.
    assert!(
        search(&api, json!({"text": "qwertyuiopasdf", "k": 10}))
            .await
            .is_empty()
    );

    // The fusion's two ends: weight 0 is the vector ranking, weight 1 the text ranking.
    let queries = read_fvecs(&data_dir().join("queries.fvecs"), 5);
    let query_texts = texts("texts-queries.jsonl", 5);
    let q = &queries[0];
    let t = query_texts[0]["text"].as_str().unwrap();
    let by_vector = search(&api, json!({"vector": q, "k": 10, "exact": true})).await;
    let by_text = search(&api, json!({"text": t, "k": 10})).await;
    let fused = |w: f64| {
        let api = &api;
        async move {
            search(
                api,
                json!({"vector": q, "text": t, "text_weight": w, "k": 10, "exact": true}),
            )
            .await
        }
    };
    assert_eq!(ids(&fused(0.0).await), ids(&by_vector));
    assert_eq!(ids(&fused(1.0).await), ids(&by_text));
    let half = fused(0.5).await;
    assert_eq!(half.len(), 10);
    assert!(half.windows(2).all(|w| w[0].1 >= w[1].1));

    // Refusals name the field.
    for (body, field) in [
        (json!({"text": "x", "text_field": "package"}), "text_field"),
        (json!({"text": "x", "text_weight": 1.5}), "text_weight"),
        (json!({"vector": q, "text_weight": 0.5}), "text_weight"),
        (json!({"vector": q, "text_field": "text"}), "text_field"),
        (json!({"k": 3}), "vector"),
        (json!({"text": "x".repeat(5000)}), "text"),
    ] {
        let (status, e) = api
            .call(
                Method::POST,
                "/api/v1/collections/deb/search",
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            (status, &e["error"]["field"]),
            (400, &json!(field)),
            "{body}: {e}"
        );
    }
    api.post(
        "/api/v1/collections",
        json!({"name": "plain", "dimension": 2, "metric": "l2"}),
    )
    .await;
    let (status, e) = api
        .call(
            Method::POST,
            "/api/v1/collections/plain/search",
            Some(json!({"text": "x"})),
        )
        .await;
    assert_eq!((status, &e["error"]["field"]), (400, &json!("text")), "{e}");

    // The same answers (ids and scores) hot, warm, cold and after a restart.
    let probes = probes(&queries, &query_texts);
    let mut hot = Vec::new();
    for p in &probes {
        hot.push(search(&api, p.clone()).await);
    }
    let same = |tier: &str, got: &[Vec<(String, f64, Value)>]| {
        for (i, (a, b)) in hot.iter().zip(got).enumerate() {
            assert_eq!(ids(a), ids(b), "{tier}, probe {i}");
            for (x, y) in a.iter().zip(b) {
                assert!((x.1 - y.1).abs() < 1e-4, "{tier}, probe {i}: {x:?} {y:?}");
            }
        }
    };
    for target in ["warm", "cold"] {
        api.post(
            "/api/v1/collections/deb/tier",
            json!({"action": "demote", "target": target}),
        )
        .await;
        let (_, tier) = api.get("/api/v1/collections/deb/tier").await;
        assert_eq!(tier["tier"], target, "{tier}");
        let mut got = Vec::new();
        for p in &probes {
            got.push(search(&api, p.clone()).await);
        }
        same(target, &got);
    }
    let (_, info) = api.get("/api/v1/collections/deb").await;
    assert_eq!(
        info["payload_indexes"],
        json!([{"field": "text", "type": "text"}])
    );
    drop(server);
    let server = Server::start(dir.path(), &args);
    let api = Api::new(&server);
    let mut got = Vec::new();
    for p in &probes {
        got.push(search(&api, p.clone()).await);
    }
    same("restarted", &got);
}

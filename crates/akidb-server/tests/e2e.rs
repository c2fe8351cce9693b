//! End to end over real HTTP against the real binary: create, upsert 10,000 real vectors,
//! search (HNSW, exact, filtered), get, delete, restart (graceful and SIGKILL), and check that
//! every answer is identical afterwards.

mod common;

use std::collections::HashSet;

use common::{Api, Server, data_dir, read_fvecs};
use serde_json::{Value, json};

const N: usize = 10_000;

impl Api {
    /// The answers we compare across restarts.
    async fn snapshot(&self, queries: &[Vec<f32>]) -> Vec<Value> {
        let mut out = vec![];
        for (i, q) in queries.iter().enumerate() {
            for body in [
                json!({"vector": q, "k": 10}),
                json!({"vector": q, "k": 25, "exact": true}),
                json!({"vector": q, "k": 10, "filter": {"group": i % 10}, "include_metadata": true}),
                json!({"vector": q, "k": 5, "filter": {"group": {"$in": [1, 2]}}, "exact": true, "include_vector": true}),
            ] {
                let mut v = self.post("/api/v1/collections/debian/search", body).await;
                v.as_object_mut().unwrap().remove("latency_ms");
                out.push(v);
            }
        }
        for id in ["doc-0", "doc-1", "doc-4999", "doc-9999", "doc-77"] {
            out.push(
                self.get(&format!("/api/v1/collections/debian/documents/{id}"))
                    .await
                    .1,
            );
        }
        out.push(self.get("/api/v1/collections").await.1["collections"][0]["count"].clone());
        out
    }
}

fn ids(v: &Value) -> Vec<String> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_lifecycle_survives_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir();
    let base = read_fvecs(&data.join("base.fvecs"), N);
    let queries = read_fvecs(&data.join("queries.fvecs"), 20);
    let packages: Vec<String> = std::fs::read_to_string(data.join("texts-base.jsonl"))
        .unwrap()
        .lines()
        .take(N)
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["package"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();

    let server = Server::start(dir.path(), &[]);
    let api = Api::new(&server);
    let (status, health) = api.get("/health").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("alive")));
    assert_eq!(api.get("/ready").await.0, 200);

    let created = api
        .post(
            "/api/v1/collections",
            json!({"name": "debian", "dimension": 384, "metric": "cosine"}),
        )
        .await;
    assert_eq!(created["count"], 0);
    assert_eq!(created["metric"], "cosine");

    for chunk in (0..N).collect::<Vec<_>>().chunks(1000) {
        let documents: Vec<Value> = chunk
            .iter()
            .map(|&i| json!({"id": format!("doc-{i}"), "vector": base[i], "metadata": {"package": packages[i], "group": i % 10}}))
            .collect();
        let r = api
            .post(
                "/api/v1/collections/debian/documents",
                json!({"documents": documents}),
            )
            .await;
        assert_eq!(r["upserted"], 1000);
    }
    let (_, list) = api.get("/api/v1/collections").await;
    assert_eq!(list["collections"][0]["count"], N);
    assert_eq!(list["collections"][0]["dimension"], 384);

    // A document reads back as written (cosine vectors are stored unit length; these already are).
    let (status, doc) = api.get("/api/v1/collections/debian/documents/doc-42").await;
    assert_eq!(status, 200);
    assert_eq!(doc["metadata"]["package"], packages[42]);
    let v: Vec<f32> = serde_json::from_value(doc["vector"].clone()).unwrap();
    assert!(v.iter().zip(&base[42]).all(|(a, b)| (a - b).abs() < 1e-6));

    // Searching for a stored vector finds it first, with similarity 1.
    let r = api
        .post(
            "/api/v1/collections/debian/search",
            json!({"vector": base[123], "k": 3}),
        )
        .await;
    assert_eq!(r["results"][0]["id"], "doc-123");
    assert!((r["results"][0]["score"].as_f64().unwrap() - 1.0).abs() < 1e-4);
    assert!(r["latency_ms"].as_f64().unwrap() >= 0.0);

    // Filters: every hit matches and k hits come back.
    let r = api
        .post("/api/v1/collections/debian/search", json!({"vector": queries[0], "k": 50, "filter": {"group": 7}, "include_metadata": true}))
        .await;
    let hits = r["results"].as_array().unwrap();
    assert_eq!(hits.len(), 50);
    assert!(hits.iter().all(|h| h["metadata"]["group"] == 7));

    // Upserting an existing id replaces it everywhere, including in search results.
    let moved = &base[9000];
    api.post(
        "/api/v1/collections/debian/documents",
        json!({"documents": [{"id": "doc-5", "vector": moved, "metadata": {"moved": true}}]}),
    )
    .await;
    let r = api
        .post(
            "/api/v1/collections/debian/search",
            json!({"vector": moved, "k": 2, "exact": true}),
        )
        .await;
    let top: HashSet<String> = ids(&r).into_iter().collect();
    assert_eq!(
        top,
        HashSet::from(["doc-5".to_string(), "doc-9000".to_string()])
    );
    let r = api
        .post(
            "/api/v1/collections/debian/search",
            json!({"vector": base[5], "k": 1, "exact": true}),
        )
        .await;
    assert_ne!(r["results"][0]["id"], "doc-5");

    api.wait_indexed("debian").await;
    let before = api.snapshot(&queries).await;

    // Graceful restart: the server flushes, exits 0, and comes back with the same answers.
    let status = server.terminate();
    assert!(status.success(), "graceful shutdown exited with {status}");
    let server = Server::start(dir.path(), &[]);
    let api = Api::new(&server);
    api.wait_indexed("debian").await;
    assert_eq!(
        api.snapshot(&queries).await,
        before,
        "answers changed across a graceful restart"
    );

    // Deletes: single and batch; deleted documents are gone from get and from search.
    let (status, _) = api
        .call(
            reqwest::Method::DELETE,
            "/api/v1/collections/debian/documents/doc-123",
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = api
        .call(
            reqwest::Method::DELETE,
            "/api/v1/collections/debian/documents/doc-123",
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("document_not_found"))
    );
    let gone: Vec<String> = (200..300).map(|i| format!("doc-{i}")).collect();
    let r = api
        .post(
            "/api/v1/collections/debian/documents/delete",
            json!({"ids": gone}),
        )
        .await;
    assert_eq!(r["deleted"], 100);
    let r = api
        .post(
            "/api/v1/collections/debian/search",
            json!({"vector": base[123], "k": 10}),
        )
        .await;
    assert!(!ids(&r).contains(&"doc-123".to_string()));
    let r = api
        .post(
            "/api/v1/collections/debian/search",
            json!({"vector": base[250], "k": 100, "exact": true}),
        )
        .await;
    assert!(ids(&r).iter().all(|id| !gone.contains(id)));
    assert_eq!(
        api.get("/api/v1/collections/debian/documents/doc-250")
            .await
            .0,
        404
    );
    let (_, info) = api.get("/api/v1/collections/debian").await;
    assert_eq!(info["count"], N - 101);

    // Exact answers after the deletes; then SIGKILL (no flush: the deletes live only in the WAL).
    let exact_queries: Vec<Value> = queries
        .iter()
        .map(|q| json!({"vector": q, "k": 20, "exact": true, "include_metadata": true}))
        .collect();
    let mut exact_before = vec![];
    for q in &exact_queries {
        exact_before.push(
            api.post("/api/v1/collections/debian/search", q.clone())
                .await["results"]
                .clone(),
        );
    }
    server.kill();
    let server = Server::start(dir.path(), &[]);
    let api = Api::new(&server);
    let (_, info) = api.get("/api/v1/collections/debian").await;
    assert_eq!(info["count"], N - 101);
    assert_eq!(
        api.get("/api/v1/collections/debian/documents/doc-250")
            .await
            .0,
        404
    );
    for (q, expected) in exact_queries.iter().zip(&exact_before) {
        assert_eq!(
            &api.post("/api/v1/collections/debian/search", q.clone())
                .await["results"],
            expected
        );
    }
    // HNSW answers after the restart agree with exact search.
    api.wait_indexed("debian").await;
    let (mut found, mut total) = (0, 0);
    for q in &queries {
        let approx: HashSet<String> = ids(&api
            .post(
                "/api/v1/collections/debian/search",
                json!({"vector": q, "k": 10}),
            )
            .await)
        .into_iter()
        .collect();
        let exact = ids(&api
            .post(
                "/api/v1/collections/debian/search",
                json!({"vector": q, "k": 10, "exact": true}),
            )
            .await);
        found += exact.iter().filter(|id| approx.contains(*id)).count();
        total += exact.len();
    }
    assert!(
        found as f64 / total as f64 >= 0.9,
        "recall@10 after restart {found}/{total}"
    );

    // Deleting the collection removes it and its data.
    let (status, _) = api
        .call(reqwest::Method::DELETE, "/api/v1/collections/debian", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(api.get("/api/v1/collections/debian").await.0, 404);
    assert!(
        std::fs::read_dir(dir.path().join("collections"))
            .unwrap()
            .next()
            .is_none()
    );

    // Metrics saw all of this.
    let metrics = api
        .http
        .get(format!("{}/metrics", api.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("akidb_http_requests_total{method=\"POST\",route=\"/api/v1/collections/{name}/search\",status=\"200\"}"), "{metrics}");
    assert!(metrics.contains("akidb_wal_fsyncs_total"));
    assert!(metrics.contains("akidb_http_request_duration_seconds_bucket"));
}

/// Regression (issue 8, case 9): a document whose id is `delete` could not be read or deleted
/// by id (the batch-delete route `documents/delete` answered 405).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_named_delete_is_a_document_like_any_other() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = Api::new(&server);
    api.post(
        "/api/v1/collections",
        json!({"name": "ids", "dimension": 2, "metric": "l2"}),
    )
    .await;
    api.post(
        "/api/v1/collections/ids/documents",
        json!({"documents": [
            {"id": "delete", "vector": [1.0, 2.0], "metadata": {"tricky": true}},
            {"id": "other", "vector": [3.0, 4.0]}]}),
    )
    .await;
    let (status, doc) = api.get("/api/v1/collections/ids/documents/delete").await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["vector"], json!([1.0, 2.0]));
    assert_eq!(doc["metadata"]["tricky"], true);
    // The batch route still works beside it.
    let r = api
        .post(
            "/api/v1/collections/ids/documents/delete",
            json!({"ids": ["other"]}),
        )
        .await;
    assert_eq!(r["deleted"], 1);
    let (status, body) = api
        .call(
            reqwest::Method::DELETE,
            "/api/v1/collections/ids/documents/delete",
            None,
        )
        .await;
    assert_eq!((status, body["deleted"].as_u64()), (200, Some(1)), "{body}");
    let (status, body) = api.get("/api/v1/collections/ids/documents/delete").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("document_not_found"))
    );
}

/// `quantization: sq8` over HTTP, on real vectors: created, reported, searched (exact answers
/// identical to an f32 twin, approximate ones nearly), and changed back with `PATCH`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sq8_collection_answers_like_f32_and_changes_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir();
    let base = read_fvecs(&data.join("base.fvecs"), 3_000);
    let queries = read_fvecs(&data.join("queries.fvecs"), 20);
    let server = Server::start(dir.path(), &[]);
    let api = Api::new(&server);
    let created = api
        .post(
            "/api/v1/collections",
            json!({"name": "q", "dimension": 384, "metric": "cosine", "quantization": "sq8"}),
        )
        .await;
    assert_eq!(created["quantization"], "sq8");
    api.post(
        "/api/v1/collections",
        json!({"name": "f", "dimension": 384, "metric": "cosine"}),
    )
    .await;
    for name in ["q", "f"] {
        for chunk in base.chunks(1_000).enumerate() {
            let docs: Vec<Value> = chunk
                .1
                .iter()
                .enumerate()
                .map(|(i, v)| json!({"id": format!("{}", chunk.0 * 1_000 + i), "vector": v}))
                .collect();
            api.post(
                &format!("/api/v1/collections/{name}/documents"),
                json!({ "documents": docs }),
            )
            .await;
        }
        api.wait_indexed(name).await;
    }
    let ram = |v: &Value| v["bytes_in_ram"].as_u64().unwrap();
    let plain = ram(&api.get("/api/v1/collections/f").await.1);
    let mut info = api.get("/api/v1/collections/q").await.1;
    for _ in 0..600 {
        if ram(&info) * 10 < plain * 6 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        info = api.get("/api/v1/collections/q").await.1;
    }
    assert!(
        ram(&info) * 10 < plain * 6,
        "sq8 {} vs f32 {plain}",
        ram(&info)
    );
    assert_eq!(info["quantization"], "sq8");
    let mut found = 0;
    for q in &queries {
        let search = |name: &'static str, exact: bool| {
            let body = json!({"vector": q, "k": 10, "exact": exact});
            let api = &api;
            async move {
                api.post(&format!("/api/v1/collections/{name}/search"), body)
                    .await
            }
        };
        let want = search("f", true).await;
        assert_eq!(search("q", true).await["results"], want["results"]);
        let got = ids(&search("q", false).await);
        found += ids(&want).iter().filter(|id| got.contains(id)).count();
    }
    assert!(found >= 180, "sq8 found {found} of 200 exact neighbours");
    let (status, changed) = api
        .call(
            reqwest::Method::PATCH,
            "/api/v1/collections/q",
            Some(json!({"quantization": "none"})),
        )
        .await;
    assert_eq!((status, &changed["quantization"]), (200, &json!("none")));
    assert_eq!(
        api.get("/api/v1/collections/q").await.1["quantization"],
        "none"
    );
}

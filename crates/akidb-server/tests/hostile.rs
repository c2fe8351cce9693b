//! A corpus of malformed and hostile requests. Every one must get a 4xx with the documented
//! JSON error code, and none may change any state. Path-traversal cases go over a raw socket,
//! because HTTP client libraries normalise `..` away before sending.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::{Server, client};
use serde_json::{Value, json};

struct Case {
    method: &'static str,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
    /// The `field` the error must name, when it names one.
    field: Option<&'static str>,
}

fn case(method: &'static str, path: &str, body: Value, status: u16, code: &'static str) -> Case {
    Case {
        method,
        path: path.to_string(),
        content_type: Some("application/json"),
        body: serde_json::to_vec(&body).unwrap(),
        status,
        code,
        field: None,
    }
}

fn raw(method: &'static str, path: &str, body: &str, status: u16, code: &'static str) -> Case {
    Case {
        method,
        path: path.to_string(),
        content_type: Some("application/json"),
        body: body.as_bytes().to_vec(),
        status,
        code,
        field: None,
    }
}

impl Case {
    fn field(mut self, f: &'static str) -> Case {
        self.field = Some(f);
        self
    }
    fn content_type(mut self, ct: Option<&'static str>) -> Case {
        self.content_type = ct;
        self
    }
}

/// Sends one request over a raw socket, byte for byte, and returns (status, body).
fn send_raw(addr: &str, c: &Case) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        c.method,
        c.path,
        c.body.len()
    );
    if let Some(ct) = c.content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) before reading the whole body and close; that is fine.
    let _ = stream.write_all(&c.body);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response);
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(response.len(), |p| p + 4);
    let mut body = response[split..].to_vec();
    if text
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&data[..eol]).unwrap().trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
    out
}

async fn state_of(url: &str) -> Value {
    let http = client();
    let list: Value = http
        .get(format!("{url}/api/v1/collections"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keep: Value = http
        .get(format!("{url}/api/v1/collections/c/documents/keep"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut names: Vec<(String, u64)> = list["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["count"].as_u64().unwrap(),
            )
        })
        .collect();
    names.sort();
    json!({"collections": names, "keep": keep})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_4xx_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--max-body-bytes", "1048576"]);
    let http = client();
    for (name, dim, metric) in [("c", 4, "cosine"), ("l", 3, "l2")] {
        let r = http
            .post(format!("{}/api/v1/collections", server.url))
            .json(&json!({"name": name, "dimension": dim, "metric": metric}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let r = http
        .post(format!("{}/api/v1/collections/c/documents", server.url))
        .json(&json!({"documents": [{"id": "keep", "vector": [1, 2, 3, 4], "metadata": {"a": 1}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let before = state_of(&server.url).await;

    let coll = "/api/v1/collections";
    let docs = "/api/v1/collections/c/documents";
    let search = "/api/v1/collections/c/search";
    let tier = "/api/v1/collections/c/tier";
    let good = |extra: Value| {
        let mut d = json!({"id": "new", "vector": [1.0, 0.5, 0.25, 2.0]});
        d.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        d
    };
    let big_meta = "x".repeat(70 * 1024);
    let many: Vec<Value> = (0..10_001)
        .map(|i| json!({"id": format!("m{i}"), "vector": [1, 1, 1, 1]}))
        .collect();
    // Nested past serde_json's recursion limit, inside metadata where any JSON is welcome.
    let deep = format!(
        r#"{{"documents": [{{"vector": [1,1,1,1], "metadata": {{"a": {}{}}}}}]}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let too_big = format!(
        "{{\"documents\": [{{\"vector\": [{}]}}]}}",
        vec!["1.0"; 400_000].join(",")
    );

    let cases = vec![
        // Creating collections.
        raw("POST", coll, "{", 400, "malformed_json"),
        raw(
            "POST",
            coll,
            r#"{"name":"x","dimension":4,"metric":"l2"} trailing"#,
            400,
            "malformed_json",
        ),
        raw("POST", coll, "", 400, "malformed_json"),
        raw(
            "POST",
            coll,
            r#"{"name":"x","dimension":4,"metric":"l2"}"#,
            415,
            "unsupported_media_type",
        )
        .content_type(Some("text/plain")),
        raw(
            "POST",
            coll,
            r#"{"name":"x","dimension":4,"metric":"l2"}"#,
            415,
            "unsupported_media_type",
        )
        .content_type(None),
        case(
            "POST",
            coll,
            json!({"dimension": 4, "metric": "l2"}),
            422,
            "invalid_body",
        ),
        case(
            "POST",
            coll,
            json!({"name": "x", "dimension": 0, "metric": "l2"}),
            400,
            "invalid_argument",
        )
        .field("dimension"),
        case(
            "POST",
            coll,
            json!({"name": "x", "dimension": 4097, "metric": "l2"}),
            400,
            "invalid_argument",
        )
        .field("dimension"),
        case(
            "POST",
            coll,
            json!({"name": "x", "dimension": -1, "metric": "l2"}),
            422,
            "invalid_body",
        )
        .field("dimension"),
        case(
            "POST",
            coll,
            json!({"name": "x", "dimension": "four", "metric": "l2"}),
            422,
            "invalid_body",
        )
        .field("dimension"),
        case(
            "POST",
            coll,
            json!({"name": "x", "dimension": 4, "metric": "l2", "quantization": "pq"}),
            422,
            "invalid_body",
        )
        .field("quantization"),
        case(
            "PATCH",
            "/api/v1/collections/c",
            json!({"quantization": "int4"}),
            422,
            "invalid_body",
        )
        .field("quantization"),
        case(
            "PATCH",
            "/api/v1/collections/c",
            json!({"dimension": 8}),
            422,
            "invalid_body",
        ),
        case(
            "PATCH",
            "/api/v1/collections/nope",
            json!({"quantization": "sq8"}),
            404,
            "collection_not_found",
        ),
        case(
            "POST",
            coll,
            json!({"name": "x", "dimension": 4, "metric": "manhattan"}),
            422,
            "invalid_body",
        )
        .field("metric"),
        case(
            "POST",
            coll,
            json!({"name": "..", "dimension": 4, "metric": "l2"}),
            400,
            "invalid_argument",
        )
        .field("name"),
        case(
            "POST",
            coll,
            json!({"name": "a/b", "dimension": 4, "metric": "l2"}),
            400,
            "invalid_argument",
        )
        .field("name"),
        case(
            "POST",
            coll,
            json!({"name": "", "dimension": 4, "metric": "l2"}),
            400,
            "invalid_argument",
        )
        .field("name"),
        case(
            "POST",
            coll,
            json!({"name": "x".repeat(65), "dimension": 4, "metric": "l2"}),
            400,
            "invalid_argument",
        )
        .field("name"),
        case(
            "POST",
            coll,
            json!({"name": "-x", "dimension": 4, "metric": "l2"}),
            400,
            "invalid_argument",
        )
        .field("name"),
        case(
            "POST",
            coll,
            json!({"name": "ü", "dimension": 4, "metric": "l2"}),
            400,
            "invalid_argument",
        )
        .field("name"),
        case(
            "POST",
            coll,
            json!({"name": "%2e%2e", "dimension": 4, "metric": "l2"}),
            400,
            "invalid_argument",
        )
        .field("name"),
        case(
            "POST",
            coll,
            json!({"name": "x", "dimensions": 4, "metric": "l2"}),
            422,
            "invalid_body",
        ),
        case(
            "POST",
            coll,
            json!({"name": "c", "dimension": 4, "metric": "l2"}),
            409,
            "collection_exists",
        ),
        case(
            "POST",
            coll,
            json!({"name": "x", "dimension": 4, "metric": "l2", "index": {"m": 1}}),
            400,
            "invalid_argument",
        )
        .field("index.m"),
        case(
            "POST",
            coll,
            json!({"name": "x", "dimension": 4, "metric": "l2", "index": {"ef_search": 0}}),
            400,
            "invalid_argument",
        )
        .field("index.ef_search"),
        case("POST", coll, json!([]), 422, "invalid_body"),
        // Upserts.
        case(
            "POST",
            docs,
            json!({"documents": [{"vector": [1, 2, 3]}]}),
            400,
            "invalid_argument",
        )
        .field("documents[0].vector"),
        case(
            "POST",
            docs,
            json!({"documents": [{"vector": []}]}),
            400,
            "invalid_argument",
        )
        .field("documents[0].vector"),
        raw(
            "POST",
            docs,
            r#"{"documents": [{"vector": [NaN, 1, 1, 1]}]}"#,
            400,
            "malformed_json",
        ),
        raw(
            "POST",
            docs,
            r#"{"documents": [{"vector": [Infinity, 1, 1, 1]}]}"#,
            400,
            "malformed_json",
        ),
        raw(
            "POST",
            docs,
            r#"{"documents": [{"vector": [1e39, 1, 1, 1]}]}"#,
            400,
            "invalid_argument",
        )
        .field("documents[0].vector[0]"),
        case(
            "POST",
            docs,
            json!({"documents": [{"vector": [0, 0, 0, 0]}]}),
            400,
            "invalid_argument",
        )
        .field("documents[0].vector"),
        case(
            "POST",
            docs,
            json!({"documents": [good(json!({"id": "x".repeat(129)}))]}),
            400,
            "invalid_argument",
        )
        .field("documents[0].id"),
        case(
            "POST",
            docs,
            json!({"documents": [good(json!({"id": ""}))]}),
            400,
            "invalid_argument",
        )
        .field("documents[0].id"),
        case(
            "POST",
            docs,
            json!({"documents": [good(json!({"id": "a\u{0}b"}))]}),
            400,
            "invalid_argument",
        )
        .field("documents[0].id"),
        case(
            "POST",
            docs,
            json!({"documents": [good(json!({"metadata": [1, 2]}))]}),
            400,
            "invalid_argument",
        )
        .field("documents[0].metadata"),
        case(
            "POST",
            docs,
            json!({"documents": [good(json!({"metadata": {"big": big_meta}}))]}),
            400,
            "invalid_argument",
        )
        .field("documents[0].metadata"),
        case(
            "POST",
            docs,
            json!({"documents": []}),
            400,
            "invalid_argument",
        )
        .field("documents"),
        case(
            "POST",
            docs,
            json!({"documents": many}),
            400,
            "invalid_argument",
        )
        .field("documents"),
        case(
            "POST",
            docs,
            json!({"documents": [{"vector": [1, "2", 3, 4]}]}),
            422,
            "invalid_body",
        )
        .field("documents[0].vector[1]"),
        case(
            "POST",
            docs,
            json!({"documents": [{"vector": null}]}),
            422,
            "invalid_body",
        )
        .field("documents[0].vector"),
        case("POST", docs, json!({"docs": []}), 422, "invalid_body"),
        case(
            "POST",
            docs,
            json!({"documents": [good(json!({})), {"id": "second", "vector": [1, 2]}]}),
            400,
            "invalid_argument",
        )
        .field("documents[1].vector"),
        case(
            "POST",
            "/api/v1/collections/nope/documents",
            json!({"documents": [good(json!({}))]}),
            404,
            "collection_not_found",
        ),
        raw("POST", docs, &too_big, 413, "payload_too_large"),
        raw("POST", docs, &deep, 400, "malformed_json"),
        // Searches.
        case(
            "POST",
            search,
            json!({"vector": [1, 2, 3, 4], "k": 0}),
            400,
            "invalid_argument",
        )
        .field("k"),
        case(
            "POST",
            search,
            json!({"vector": [1, 2, 3, 4], "k": 10_001}),
            400,
            "invalid_argument",
        )
        .field("k"),
        case(
            "POST",
            search,
            json!({"vector": [1, 2, 3, 4], "k": -1}),
            422,
            "invalid_body",
        )
        .field("k"),
        case(
            "POST",
            search,
            json!({"vector": [1, 2, 3, 4], "ef": 0}),
            400,
            "invalid_argument",
        )
        .field("ef"),
        case(
            "POST",
            search,
            json!({"vector": [1, 2, 3]}),
            400,
            "invalid_argument",
        )
        .field("vector"),
        case(
            "POST",
            search,
            json!({"vector": [0, 0, 0, 0]}),
            400,
            "invalid_argument",
        )
        .field("vector"),
        case(
            "POST",
            search,
            json!({"vector": [1, 2, 3, 4], "filter": {"a": {"$gt": true}}}),
            400,
            "invalid_argument",
        )
        .field("filter.a.$gt"),
        case(
            "POST",
            search,
            json!({"vector": [1, 2, 3, 4], "filter": {"$or": [{"a": 1}, {"b": {"$regex": "x"}}]}}),
            400,
            "invalid_argument",
        )
        .field("filter.$or[1].b.$regex"),
        case(
            "POST",
            search,
            json!({"vector": [1, 2, 3, 4], "filter": [1]}),
            400,
            "invalid_argument",
        )
        .field("filter"),
        case(
            "POST",
            search,
            json!({"vector": [1, 2, 3, 4], "top_k": 3}),
            422,
            "invalid_body",
        ),
        case(
            "POST",
            "/api/v1/collections/nope/search",
            json!({"vector": [1, 2, 3, 4]}),
            404,
            "collection_not_found",
        ),
        // Documents by id, batch delete.
        raw(
            "GET",
            "/api/v1/collections/c/documents/missing",
            "",
            404,
            "document_not_found",
        ),
        raw(
            "GET",
            "/api/v1/collections/nope/documents/keep",
            "",
            404,
            "collection_not_found",
        ),
        raw(
            "GET",
            &format!("/api/v1/collections/c/documents/{}", "x".repeat(129)),
            "",
            400,
            "invalid_argument",
        )
        .field("id"),
        raw(
            "DELETE",
            "/api/v1/collections/c/documents/missing",
            "",
            404,
            "document_not_found",
        ),
        case(
            "POST",
            "/api/v1/collections/c/documents/delete",
            json!({"ids": "keep"}),
            422,
            "invalid_body",
        )
        .field("ids"),
        case(
            "POST",
            "/api/v1/collections/c/documents/delete",
            json!({"ids": [""]}),
            400,
            "invalid_argument",
        )
        .field("ids[0]"),
        raw(
            "DELETE",
            "/api/v1/collections/nope",
            "",
            404,
            "collection_not_found",
        ),
        // Paths: traversal, encoding, unknown routes and methods.
        raw("GET", "/api/v1/collections/..", "", 400, "invalid_argument").field("name"),
        raw(
            "DELETE",
            "/api/v1/collections/..",
            "",
            400,
            "invalid_argument",
        )
        .field("name"),
        raw(
            "GET",
            "/api/v1/collections/%2e%2e",
            "",
            400,
            "invalid_argument",
        )
        .field("name"),
        raw(
            "DELETE",
            "/api/v1/collections/%2e%2e",
            "",
            400,
            "invalid_argument",
        )
        .field("name"),
        raw(
            "GET",
            "/api/v1/collections/..%2f..%2fetc",
            "",
            400,
            "invalid_argument",
        )
        .field("name"),
        raw(
            "POST",
            "/api/v1/collections/%2e%2e/documents",
            r#"{"documents": [{"vector": [1,1,1,1]}]}"#,
            400,
            "invalid_argument",
        )
        .field("name"),
        raw("GET", "/api/v1/collections/a/b", "", 404, "not_found"),
        raw(
            "GET",
            "/api/v1/collections/%ff",
            "",
            400,
            "invalid_argument",
        )
        .field("name"),
        raw(
            "GET",
            "/api/v1/collections/c%00",
            "",
            400,
            "invalid_argument",
        )
        .field("name"),
        raw("GET", "/api/v2/anything", "", 404, "not_found"),
        raw("PUT", coll, "{}", 405, "method_not_allowed"),
        raw(
            "PATCH",
            "/api/v1/collections/c/search",
            "{}",
            405,
            "method_not_allowed",
        ),
        // Tier commands.
        case("POST", tier, json!({"action": "fly"}), 422, "invalid_body").field("action"),
        case("POST", tier, json!({}), 422, "invalid_body"),
        case(
            "POST",
            tier,
            json!({"action": "promote", "target": "lukewarm"}),
            422,
            "invalid_body",
        )
        .field("target"),
        case(
            "POST",
            tier,
            json!({"action": "pin", "extra": 1}),
            422,
            "invalid_body",
        ),
        case(
            "POST",
            tier,
            json!({"action": "promote", "target": "cold"}),
            400,
            "invalid_argument",
        )
        .field("target"),
        case(
            "POST",
            tier,
            json!({"action": "unpin", "target": "hot"}),
            400,
            "invalid_argument",
        )
        .field("target"),
        raw("POST", tier, "{", 400, "malformed_json"),
        case(
            "GET",
            "/api/v1/collections/nope/tier",
            json!(null),
            404,
            "collection_not_found",
        ),
        case(
            "POST",
            "/api/v1/collections/nope/tier",
            json!({"action": "promote"}),
            404,
            "collection_not_found",
        ),
    ];
    assert!(
        cases.len() >= 50,
        "the corpus must hold at least 50 cases, it has {}",
        cases.len()
    );

    for c in &cases {
        let (status, body) = send_raw(&server.addr, c);
        let what = format!(
            "{} {} {}",
            c.method,
            c.path.chars().take(80).collect::<String>(),
            String::from_utf8_lossy(&c.body[..c.body.len().min(80)])
        );
        assert_eq!(
            status,
            c.status,
            "{what}: {}",
            String::from_utf8_lossy(&body)
        );
        let body: Value = serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!(
                "{what}: body is not JSON ({e}): {}",
                String::from_utf8_lossy(&body)
            )
        });
        assert_eq!(body["error"]["code"], c.code, "{what}: {body}");
        assert!(
            !body["error"]["message"].as_str().unwrap_or("").is_empty(),
            "{what}: empty message"
        );
        if let Some(field) = c.field {
            assert_eq!(body["error"]["field"], field, "{what}: {body}");
        }
    }

    assert_eq!(
        state_of(&server.url).await,
        before,
        "a rejected request changed state"
    );
    // Still alive and serving after all of that.
    let r = http
        .get(format!("{}/health", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_documents_exactly_the_served_routes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let http = client();
    let doc: Value = http
        .get(format!("{}/openapi.json", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let routes: Vec<_> = akidb_api::ROUTES.iter().filter(|r| r.openapi).collect();
    let documented: usize = paths
        .values()
        .map(|e| {
            e.as_object()
                .unwrap()
                .keys()
                .filter(|k| *k != "parameters")
                .count()
        })
        .sum();
    assert_eq!(
        documented,
        routes.len(),
        "documented operations vs the route table"
    );
    for route in routes {
        let (path, m) = (route.path, route.method.to_lowercase());
        let entry = paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} is served but not documented"));
        {
            let m = &m;
            assert!(entry.get(m).is_some(), "{m} {path} not documented");
            // Served: the router answers with something other than not_found/method_not_allowed.
            let concrete = path
                .replace("{name}", "zz")
                .replace("{id}", "d")
                .replace("{key_id}", "k_none");
            let method = reqwest::Method::from_bytes(m.to_uppercase().as_bytes()).unwrap();
            let resp = http
                .request(method, format!("{}{concrete}", server.url))
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            let code = body["error"]["code"].as_str().unwrap_or("");
            assert!(
                code != "not_found" && code != "method_not_allowed",
                "{m} {path}: {status} {body}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_past_the_wal_budget_get_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing flushes during the test, so the WAL only grows.
    let server = Server::start(
        dir.path(),
        &["--wal-budget-bytes", "20000", "--flush-idle-secs", "3600"],
    );
    let http = client();
    let r = http
        .post(format!("{}/api/v1/collections", server.url))
        .json(&json!({"name": "b", "dimension": 8, "metric": "l2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let mut written = 0;
    let response = loop {
        let docs: Vec<Value> = (0..20)
            .map(|i| json!({"id": format!("d{}", written + i), "vector": [1, 2, 3, 4, 5, 6, 7, 8]}))
            .collect();
        let r = http
            .post(format!("{}/api/v1/collections/b/documents", server.url))
            .json(&json!({"documents": docs}))
            .send()
            .await
            .unwrap();
        if r.status() != 200 {
            break r;
        }
        written += 20;
        assert!(written < 10_000, "the budget never applied");
    };
    assert_eq!(response.status(), 503);
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .expect("Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable");
    // Reads still serve, and the refused batch changed nothing.
    let info: Value = http
        .get(format!("{}/api/v1/collections/b", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["count"], written);
}

/// Made-up HTTP methods are answered 405 and counted under one `unmatched` label: a flood of them
/// cannot grow `/metrics` (it grew to 49 MB with 20,000 of them when the method was a label).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_methods_do_not_grow_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let metrics = || async {
        let r = client().get(format!("{}/metrics", server.url)).send();
        r.await.unwrap().text().await.unwrap()
    };
    let send = |i: usize| {
        // A served path (405) and an unknown one (404).
        let path = if i.is_multiple_of(2) {
            "/api/v1/collections"
        } else {
            "/nope"
        };
        let method: &'static str = Box::leak(format!("MADEUP{i}").into_boxed_str());
        let (status, _) = send_raw(&server.addr, &raw(method, path, "", 0, ""));
        assert_eq!(status, if i.is_multiple_of(2) { 405 } else { 404 });
    };
    // One of each first, and a scrape, so that every label set the flood (and the scrapes)
    // touch exists already.
    (0..2).for_each(send);
    metrics().await;
    let before = metrics().await.len();
    (2..202).for_each(send);
    let text = metrics().await;
    assert!(!text.contains("MADEUP"), "a made-up method became a label");
    assert!(
        text.contains("method=\"unmatched\""),
        "the flood is not counted"
    );
    assert!(
        text.len() < before + 1024,
        "/metrics grew from {before} to {} bytes",
        text.len()
    );
}

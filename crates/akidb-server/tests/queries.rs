//! Scroll, count, batch search and delete by filter over HTTP against the real binary: a scroll
//! over a collection that changes between pages, a batch whose bad searches fail alone, and
//! every refusal naming its field.

mod common;

use std::collections::BTreeSet;

use common::{Api, Server};
use reqwest::Method;
use serde_json::{Value, json};

async fn setup(api: &Api, docs: usize) {
    api.post(
        "/api/v1/collections",
        json!({"name": "q", "dimension": 4, "metric": "l2"}),
    )
    .await;
    let documents: Vec<Value> = (0..docs)
        .map(|i| {
            json!({"id": format!("d{i:04}"), "vector": [i as f32, 1.0, 0.0, (i % 7) as f32],
                   "metadata": {"n": i % 10, "tags": [format!("t{}", i % 3)], "who": {"name": if i % 2 == 0 { "ada" } else { "bob" }}}})
        })
        .collect();
    api.post(
        "/api/v1/collections/q/documents",
        json!({ "documents": documents }),
    )
    .await;
}

async fn count(api: &Api, filter: Value) -> u64 {
    let r = api
        .post("/api/v1/collections/q/count", json!({ "filter": filter }))
        .await;
    r["count"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scroll_pages_stay_stable_while_the_collection_changes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = Api::new(&server);
    setup(&api, 300).await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut page_no = 0;
    loop {
        let mut body = json!({"limit": 40, "filter": {"n": {"$lt": 8}}});
        if let Some(c) = &cursor {
            body["cursor"] = json!(c);
        }
        let page = api
            .post("/api/v1/collections/q/documents/scroll", body)
            .await;
        for d in page["documents"].as_array().unwrap() {
            assert!(d["metadata"]["n"].as_u64().unwrap() < 8, "{d}");
            assert!(d.get("vector").is_none());
            seen.push(d["id"].as_str().unwrap().to_string());
        }
        // Between pages: delete documents behind and ahead of the cursor, add new ones.
        page_no += 1;
        api.post(
            "/api/v1/collections/q/documents/delete",
            json!({"ids": [format!("d{:04}", page_no * 3), format!("d{:04}", 299 - page_no)]}),
        )
        .await;
        api.post(
            "/api/v1/collections/q/documents",
            json!({"documents": [{"id": format!("e{page_no:04}"), "vector": [0.0, 0.0, 0.0, 1.0], "metadata": {"n": 1}}]}),
        )
        .await;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "id order");
    let unique: BTreeSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "each document once");
    // Every document that matched and lived through the whole scroll was returned.
    let deleted: BTreeSet<String> = (1..=page_no)
        .flat_map(|p| [format!("d{:04}", p * 3), format!("d{:04}", 299 - p)])
        .collect();
    for i in 0..300 {
        let id = format!("d{i:04}");
        if i % 10 < 8 && !deleted.contains(&id) {
            assert!(unique.contains(&id), "{id} missing");
        }
    }
    // Vectors on request; the last page has no cursor.
    let page = api
        .post(
            "/api/v1/collections/q/documents/scroll",
            json!({"limit": 2, "include_vector": true, "include_metadata": false, "cursor": "d0000"}),
        )
        .await;
    assert_eq!(page["documents"][0]["id"], "d0001");
    assert_eq!(page["documents"][0]["vector"], json!([1.0, 1.0, 0.0, 1.0]));
    assert_eq!(page["next_cursor"], "d0002");
    assert!(page["documents"][0].get("metadata").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_batch_search_and_delete_by_filter() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = Api::new(&server);
    setup(&api, 200).await;

    assert_eq!(count(&api, Value::Null).await, 200);
    assert_eq!(count(&api, json!({"n": {"$gte": 5}})).await, 100);
    // Payload indexes: created (201), again (200), listed.
    for (body, status) in [
        (json!({"field": "n", "type": "integer"}), 201),
        (json!({"field": "who.name", "type": "keyword"}), 201),
        (json!({"field": "n", "type": "integer"}), 200),
    ] {
        let (got, info) = api
            .call(Method::POST, "/api/v1/collections/q/indexes", Some(body))
            .await;
        assert_eq!(got, status, "{info}");
    }
    let (_, info) = api.get("/api/v1/collections/q").await;
    assert_eq!(
        info["payload_indexes"],
        json!([{"field": "n", "type": "integer"}, {"field": "who.name", "type": "keyword"}])
    );
    for (body, status, field) in [
        (json!({"field": "t", "type": "geo"}), 422, "type"),
        (json!({"field": "a..b", "type": "keyword"}), 400, "field"),
    ] {
        let (got, e) = api
            .call(Method::POST, "/api/v1/collections/q/indexes", Some(body))
            .await;
        assert_eq!((got, &e["error"]["field"]), (status, &json!(field)), "{e}");
    }
    assert_eq!(count(&api, json!({"n": {"$gte": 5}})).await, 100);
    assert_eq!(
        count(&api, json!({"who.name": "ada", "tags": "t0"})).await,
        34
    );
    assert_eq!(
        count(&api, json!({"$or": [{"n": 0}, {"n": {"$exists": false}}]})).await,
        20
    );
    assert_eq!(count(&api, json!({"missing": {"$ne": 1}})).await, 200);

    // A batch: answers in order, the bad ones fail alone and name their field.
    let r = api
        .post(
            "/api/v1/collections/q/search/batch",
            json!({"searches": [
                {"vector": [10.0, 1.0, 0.0, 3.0], "k": 2},
                {"vector": [1.0, 2.0], "k": 2},
                {"vector": [1.0, 2.0, 3.0, 4.0], "k": "many"},
                {"vector": [50.0, 1.0, 0.0, 1.0], "k": 3, "filter": {"n": {"$in": [1, 2]}}, "include_metadata": true},
                {"vector": [50.0, 1.0, 0.0, 1.0], "filter": {"n": {"$gt": true}}}
            ]}),
        )
        .await;
    let b = r["batches"].as_array().unwrap();
    assert_eq!(b.len(), 5);
    assert_eq!(b[0]["results"][0]["id"], "d0010");
    assert_eq!(b[1]["error"]["code"], "invalid_argument");
    assert_eq!(b[1]["error"]["field"], "searches[1].vector", "{}", b[1]);
    assert_eq!(b[2]["error"]["code"], "invalid_body");
    assert_eq!(b[2]["error"]["field"], "searches[2].k", "{}", b[2]);
    let ids: Vec<&str> = b[3]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["d0051", "d0052", "d0042"]);
    assert_eq!(
        b[4]["error"]["field"], "searches[4].filter.n.$gt",
        "{}",
        b[4]
    );

    // Refusals name the field.
    for (path, body, field) in [
        (
            "count",
            json!({"filter": {"$or": [{"n": 1}, {"n": {"$regex": "x"}}]}}),
            "filter.$or[1].n.$regex",
        ),
        ("documents/scroll", json!({"limit": 0}), "limit"),
        (
            "documents/scroll",
            json!({"limit": 2000, "include_vector": true}),
            "limit",
        ),
        (
            "documents/delete",
            json!({"ids": ["a"], "filter": {"n": 1}}),
            "ids",
        ),
        ("documents/delete", json!({}), "ids"),
        ("search/batch", json!({"searches": []}), "searches"),
    ] {
        let (status, e) = api
            .call(
                Method::POST,
                &format!("/api/v1/collections/q/{path}"),
                Some(body),
            )
            .await;
        assert_eq!(status, 400, "{path}: {e}");
        assert_eq!(e["error"]["field"], field, "{path}: {e}");
    }

    // Delete by filter: exactly the matching documents.
    let r = api
        .post(
            "/api/v1/collections/q/documents/delete",
            json!({"filter": {"n": {"$nin": [0, 1]}, "who.name": "bob"}}),
        )
        .await;
    assert_eq!(r["deleted"], 80);
    assert_eq!(count(&api, Value::Null).await, 120);
    assert_eq!(count(&api, json!({"who.name": "bob"})).await, 20);
}

/// `scroll`, like `delete`, is a document id like any other: GET and DELETE on
/// `documents/scroll` reach it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_named_scroll_is_a_document_like_any_other() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = Api::new(&server);
    setup(&api, 1).await;
    api.post(
        "/api/v1/collections/q/documents",
        json!({"documents": [{"id": "scroll", "vector": [1.0, 2.0, 3.0, 4.0]}]}),
    )
    .await;
    let (status, doc) = api.get("/api/v1/collections/q/documents/scroll").await;
    assert_eq!((status, &doc["id"]), (200, &json!("scroll")), "{doc}");
    let (status, body) = api
        .call(
            Method::DELETE,
            "/api/v1/collections/q/documents/scroll",
            None,
        )
        .await;
    assert_eq!((status, body["deleted"].as_u64()), (200, Some(1)), "{body}");
    assert_eq!(count(&api, Value::Null).await, 1);
}

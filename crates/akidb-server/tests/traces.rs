//! Traces over OTLP, end to end: the real `akidb` binary exports to a collector stand-in (an
//! HTTP server on loopback that decodes OTLP/HTTP protobuf with the protocol's own message
//! types), and a cold query against moto arrives as one trace whose spans chain from the client's
//! `traceparent` through the request, the engine's search and its partial read down to the
//! object-store GETs, with the collection, tier, bytes and retries on them.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use akidb_testkit::{Moto, seeded_vector, unique_prefix};
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use common::{Api, Server};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;
use serde_json::json;

/// One span as the collector received it.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
    name: String,
    /// OTLP's SpanKind: 2 server, 3 client.
    kind: i32,
    attributes: HashMap<String, String>,
}

type Spans = Arc<Mutex<Vec<Received>>>;

/// `POST /v1/traces`: decodes the export request, keeps its spans, answers as a collector does.
async fn receive(State(spans): State<Spans>, body: Bytes) -> Vec<u8> {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf body");
    let mut kept = spans.lock().unwrap();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|a| a.key == "service.name")
            .map(|a| text(a.value.as_ref().and_then(|v| v.value.as_ref())))
            .unwrap_or_default();
        for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
            kept.push(Received {
                service: service.clone(),
                trace_id: span.trace_id,
                span_id: span.span_id,
                parent_span_id: span.parent_span_id,
                name: span.name,
                kind: span.kind,
                attributes: span
                    .attributes
                    .iter()
                    .map(|a| {
                        (
                            a.key.clone(),
                            text(a.value.as_ref().and_then(|v| v.value.as_ref())),
                        )
                    })
                    .collect(),
            });
        }
    }
    ExportTraceServiceResponse::default().encode_to_vec()
}

fn text(value: Option<&AnyValue>) -> String {
    match value {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::DoubleValue(d)) => d.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        other => format!("{other:?}"),
    }
}

/// Starts the collector stand-in on a free loopback port; returns its URL and what it got.
async fn collector() -> (String, Spans) {
    let spans = Spans::default();
    let app = axum::Router::new()
        .route("/v1/traces", post(receive))
        .with_state(spans.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, spans)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One line per span (name, trace, span, parent, attributes), for failure messages.
fn summary(spans: &[Received]) -> String {
    spans
        .iter()
        .map(|s| {
            let mut attributes: Vec<_> = s
                .attributes
                .iter()
                .filter(|(k, _)| !k.starts_with("code.") && !k.starts_with("thread."))
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            attributes.sort();
            format!(
                "{} trace={} span={} parent={} {}\n",
                s.name,
                &hex(&s.trace_id)[..8],
                hex(&s.span_id),
                hex(&s.parent_span_id),
                attributes.join(" ")
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_query_arrives_as_one_trace_down_to_the_object_store() {
    let (collector_url, spans) = collector().await;
    let moto = Moto::start("akidb");
    let mut args = moto.s3.serve_args(&unique_prefix("traces"));
    args.extend(
        [
            "--otlp-endpoint",
            &collector_url,
            "--tiering",
            "false",
            "--tier-promote-accesses",
            "1000000",
            "--partition-min-rows",
            "500",
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &args);
    let api = Api::new(&server);

    api.post(
        "/api/v1/collections",
        json!({"name": "traced", "dimension": 32, "metric": "l2"}),
    )
    .await;
    let docs: Vec<_> = (0..2_000u64)
        .map(|i| json!({"id": format!("d{i}"), "vector": seeded_vector(i, 32)}))
        .collect();
    api.post(
        "/api/v1/collections/traced/documents",
        json!({"documents": docs}),
    )
    .await;
    let cold = api
        .post(
            "/api/v1/collections/traced/tier",
            json!({"action": "demote", "target": "cold"}),
        )
        .await;
    assert_eq!(cold["tier"], "cold", "{cold}");

    // The client's own span: the server's spans must join its trace under it.
    let (trace_id, client_span) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let response = api
        .http
        .post(format!("{}/api/v1/collections/traced/search", server.url))
        .header("traceparent", format!("00-{trace_id}-{client_span}-01"))
        .json(&json!({"vector": seeded_vector(7, 32), "k": 5, "report": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: serde_json::Value = response.json().await.unwrap();
    let report = &answer["report"];
    assert_eq!(report["tier"], "cold", "{answer}");
    assert!(report["partitions"].as_u64().unwrap() >= 1, "{answer}");
    let gets = report["object_store_gets"].as_u64().unwrap();
    assert!(gets >= 1, "a cold query fetches from the store: {answer}");

    // The batch exporter sends every 5 s: wait (bounded) until the whole chain is there.
    let deadline = Instant::now() + Duration::from_secs(60);
    let trace = loop {
        let trace: Vec<Received> = spans
            .lock()
            .unwrap()
            .iter()
            .filter(|s| hex(&s.trace_id) == trace_id)
            .cloned()
            .collect();
        let stores = trace
            .iter()
            .filter(|s| s.name == "object_store.get_range")
            .count();
        if trace.iter().any(|s| s.kind == 2) && stores as u64 >= gets {
            break trace;
        }
        assert!(
            Instant::now() < deadline,
            "the trace did not arrive within 60 s; received:\n{}",
            summary(&spans.lock().unwrap())
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let by_id: HashMap<Vec<u8>, &Received> = trace.iter().map(|s| (s.span_id.clone(), s)).collect();
    let parent_of = |s: &Received| by_id.get(&s.parent_span_id).copied();
    let one = |name: &str| -> &Received {
        let found: Vec<_> = trace.iter().filter(|s| s.name == name).collect();
        assert_eq!(found.len(), 1, "one {name} span in:\n{}", summary(&trace));
        found[0]
    };

    // request: a server span, the client's span its parent, named by route template.
    let request = one("POST /api/v1/collections/{name}/search");
    assert_eq!(request.service, "akidb");
    assert_eq!(request.kind, 2, "server kind: {request:?}");
    assert_eq!(hex(&request.parent_span_id), client_span);
    assert_eq!(
        request.attributes["http.route"],
        "/api/v1/collections/{name}/search"
    );
    assert_eq!(request.attributes["http.response.status_code"], "200");

    // the engine's search: a child of the request, with the collection and what it read.
    let search = one("search");
    assert_eq!(parent_of(search).map(|p| &p.name), Some(&request.name));
    assert_eq!(search.attributes["collection"], "traced");
    assert_eq!(search.attributes["tier"], "cold");
    assert_eq!(
        search.attributes["bytes_object_store"],
        report["bytes_object_store"].to_string()
    );
    assert_eq!(search.attributes["object_store_gets"], gets.to_string());

    // the partial read of the base: a child of the search.
    let partial = one("partial_read");
    assert_eq!(parent_of(partial).map(|p| &p.name), Some(&search.name));
    assert_eq!(partial.attributes["collection"], "traced");

    // the object-store GETs: client spans under the partial read, with path, bytes and
    // retries; together they are what the report says was fetched.
    let stores: Vec<&Received> = trace
        .iter()
        .filter(|s| s.name == "object_store.get_range")
        .collect();
    assert_eq!(stores.len() as u64, gets, "{stores:#?}");
    let mut fetched = 0u64;
    for s in &stores {
        assert_eq!(s.kind, 3, "client kind: {s:?}");
        let mut chain = vec![s.name.clone()];
        let mut at = *s;
        while let Some(p) = parent_of(at) {
            chain.push(p.name.clone());
            at = p;
        }
        assert!(
            chain.ends_with(&[
                "partial_read".to_string(),
                "search".to_string(),
                request.name.clone()
            ]),
            "the chain of a GET: {chain:?} in:\n{}",
            summary(&trace)
        );
        assert!(!s.attributes["path"].is_empty(), "{s:?}");
        assert_eq!(s.attributes["retries"], "0", "{s:?}");
        fetched += s.attributes["bytes"].parse::<u64>().unwrap();
    }
    assert_eq!(
        fetched.to_string(),
        report["bytes_object_store"].to_string(),
        "the GETs' bytes are the bytes the report counts"
    );

    // The demotion before it: its own trace, the move under its request, the uploads of the
    // checkpoint under the move.
    let all = spans.lock().unwrap().clone();
    if std::env::var_os("AKIDB_TEST_LOG").is_some() {
        eprintln!("received:\n{}", summary(&all));
    }
    let moved = all
        .iter()
        .find(|s| {
            s.name == "tier.move" && s.attributes.get("to").map(String::as_str) == Some("cold")
        })
        .unwrap_or_else(|| panic!("no tier.move span in:\n{}", summary(&all)));
    assert_eq!(moved.attributes["collection"], "traced");
    let moved_by = all
        .iter()
        .find(|s| s.span_id == moved.parent_span_id)
        .expect("the move's parent span");
    assert_eq!(
        moved_by.attributes["http.route"],
        "/api/v1/collections/{name}/tier"
    );
    assert!(
        all.iter().any(|s| s.trace_id == moved.trace_id
            && s.name == "object_store.put"
            && s.attributes["bytes"].parse::<u64>().unwrap() > 0),
        "the move's checkpoint uploads in its trace:\n{}",
        summary(&all)
    );
    server.terminate();
}

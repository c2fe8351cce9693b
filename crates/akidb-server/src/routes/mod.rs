//! HTTP routes. Handlers parse and check the request shape, call the engine, and map its
//! errors to `{"error": {"code", "message", "field"?}}` with an exhaustive match.
//!
//! This file holds the router, the app state, health, readiness, metrics and admin handlers;
//! [`collections`] the collection, document, search and tier handlers; [`error`] the error type
//! and the JSON body extractor.

use std::sync::Arc;

use akidb_api as api;
use akidb_api::ErrorCode;
use akidb_engine::Engine;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::metrics::Metrics;

mod collections;
mod error;

use self::collections::*;
pub use self::error::{ApiError, ApiJson};

#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub metrics: Arc<Metrics>,
}

pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    let mut router = Router::new();
    if state.engine.test_faults().is_some() {
        // TESTING ONLY, and only when the server was started with --test-faults: turns
        // object-store outages on and off at run time (the fault soak uses it). Not in the
        // OpenAPI document.
        router = router.route("/api/v1/admin/test-faults", post(set_test_faults));
    }
    router
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route(
            "/api/v1/collections",
            get(list_collections).post(create_collection),
        )
        .route(
            "/api/v1/collections/{name}",
            get(get_collection)
                .patch(update_collection)
                .delete(delete_collection),
        )
        .route("/api/v1/collections/{name}/documents", post(upsert))
        // `delete` is also a valid document id: GET and DELETE on this path reach the document
        // of that id, so no id is shadowed by the batch route.
        .route(
            "/api/v1/collections/{name}/documents/delete",
            post(delete_documents)
                .get(get_document_named_delete)
                .delete(delete_document_named_delete),
        )
        .route(
            "/api/v1/collections/{name}/documents/{id}",
            get(get_document).delete(delete_document),
        )
        .route("/api/v1/collections/{name}/search", post(search))
        .route(
            "/api/v1/collections/{name}/tier",
            get(get_tier).post(post_tier),
        )
        .route("/api/v1/tiers", get(get_tiers))
        .route("/api/v1/admin/dlq", get(list_dlq))
        .route("/api/v1/admin/dlq/retry", post(retry_dlq))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track,
        ))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

async fn health() -> Json<Value> {
    Json(json!({"status": "alive"}))
}

/// 200 `ready`; 200 `degraded` while the object store's circuit breaker is open (everything
/// in RAM and on local disk serves, writes land in the WAL); 503 while shutting down.
async fn ready(State(state): State<AppState>) -> Response {
    if !state.engine.is_ready() {
        return ApiError::new(ErrorCode::Unavailable, "the server is shutting down")
            .into_response();
    }
    let uploader = state.engine.uploader();
    if uploader.breaker_open() {
        return Json(json!({
            "status": "degraded",
            "object_store": "unreachable: circuit breaker open; writes are kept in the WAL until it recovers",
            "dead_letters": state.engine.dead_letters().len(),
        }))
        .into_response();
    }
    Json(json!({"status": "ready", "dead_letters": state.engine.dead_letters().len()}))
        .into_response()
}

async fn list_dlq(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"dead_letters": state.engine.dead_letters()}))
}

/// `POST /api/v1/admin/test-faults` (TESTING ONLY): what the fault injector does from now on.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFaultsRequest {
    /// Every call fails with a connection error while true.
    partitioned: Option<bool>,
    /// Added before every call.
    latency_ms: Option<u64>,
    /// Share of calls failing with 503 SlowDown, 0 to 1.
    fail_rate: Option<f64>,
    seed: Option<u64>,
}

async fn set_test_faults(
    State(state): State<AppState>,
    body: Result<ApiJson<TestFaultsRequest>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    let ApiJson(req) = body?;
    let Some(faults) = state.engine.test_faults() else {
        return Err(ApiError::new(ErrorCode::NotFound, "no such route"));
    };
    if let Some(rate) = req.fail_rate
        && !(0.0..=1.0).contains(&rate)
    {
        return Err(
            ApiError::new(ErrorCode::InvalidArgument, "fail_rate must be in 0..=1")
                .field("fail_rate"),
        );
    }
    if let Some(p) = req.partitioned {
        faults.set_partitioned(p);
    }
    if let Some(ms) = req.latency_ms {
        faults.set_latency(std::time::Duration::from_millis(ms));
    }
    if let Some(rate) = req.fail_rate {
        faults.fail_randomly(
            rate,
            akidb_engine::Fault::SLOW_DOWN,
            &[],
            req.seed.unwrap_or(1),
        );
    }
    tracing::warn!(?req, "TESTING ONLY: object-store faults changed");
    Ok(Json(json!({"applied": true})))
}

/// Re-drives every dead-lettered flush now; answers with what succeeded and what still fails.
async fn retry_dlq(State(state): State<AppState>) -> Json<Value> {
    let (ok, failed) = state.engine.retry_dead_letters().await;
    Json(json!({"retried": ok, "still_failing": failed}))
}

async fn metrics(State(state): State<AppState>) -> Response {
    let text = state.metrics.render(&state.engine);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn openapi() -> Json<Value> {
    Json(api::openapi())
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route; see GET /openapi.json")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this route does not take that method; see GET /openapi.json",
    )
}

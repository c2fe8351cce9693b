//! HTTP routes. Handlers parse and check the request shape, call the engine, and map its
//! errors to `{"error": {"code", "message", "field"?}}` with an exhaustive match.
//!
//! This file holds the router, the app state, health, readiness and metrics handlers;
//! [`collections`] the collection, document and tier handlers; [`search`] one search and a
//! batch; [`listing`] scroll and count; [`admin`] keys, dead
//! letters and test faults; [`error`] the error type and the JSON body extractor. Who may call
//! each route is in [`akidb_api::ROUTES`], enforced by [`crate::auth::authorize`].

use std::sync::Arc;

use akidb_api as api;
use akidb_api::ErrorCode;
use akidb_engine::Engine;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::auth::Auth;
use crate::metrics::Metrics;
use crate::quota::Quotas;

mod admin;
pub(crate) mod arrow_body;
mod body;
mod bounds;
mod collections;
mod error;
mod export;
mod listing;
mod search;

use self::admin::*;
pub use self::body::ApiJson;
pub use self::bounds::RequestLimits;
use self::collections::*;
pub use self::error::ApiError;
use self::listing::{count, scroll};
use self::search::{search, search_batch};

#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub metrics: Arc<Metrics>,
    pub auth: Arc<Auth>,
    pub quotas: Arc<Quotas>,
    pub limits: Arc<RequestLimits>,
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
        // `delete` and `scroll` are also valid document ids: GET and DELETE on these paths
        // reach the document of that id, so no id is shadowed by the batch routes.
        .route(
            "/api/v1/collections/{name}/documents/delete",
            post(delete_documents)
                .get(|State(s): State<AppState>, p| get_document_named(s, p, "delete"))
                .delete(|State(s): State<AppState>, p| delete_document_named(s, p, "delete")),
        )
        .route(
            "/api/v1/collections/{name}/documents/scroll",
            post(scroll)
                .get(|State(s): State<AppState>, p| get_document_named(s, p, "scroll"))
                .delete(|State(s): State<AppState>, p| delete_document_named(s, p, "scroll")),
        )
        .route("/api/v1/collections/{name}/count", post(count))
        .route(
            "/api/v1/collections/{name}/indexes",
            post(create_payload_index),
        )
        .route(
            "/api/v1/collections/{name}/documents/{id}",
            get(get_document).delete(delete_document),
        )
        .route("/api/v1/collections/{name}/export", get(export::export))
        .route(
            "/api/v1/collections/{name}/search",
            post(search).layer(DefaultBodyLimit::max(bounds::MAX_SEARCH_BODY)),
        )
        .route(
            "/api/v1/collections/{name}/search/batch",
            post(search_batch),
        )
        .route(
            "/api/v1/collections/{name}/tier",
            get(get_tier).post(post_tier),
        )
        .route("/api/v1/tiers", get(get_tiers))
        .route("/api/v1/admin/dlq", get(list_dlq))
        .route("/api/v1/admin/dlq/retry", post(retry_dlq))
        .route("/api/v1/admin/keys", get(list_keys).post(create_key))
        .route("/api/v1/admin/keys/{key_id}", delete(delete_key))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::authorize,
        ))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track,
        ))
        .layer(axum::middleware::from_fn(
            crate::telemetry::request_span::trace,
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

async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = crate::metrics::Format::negotiate(accept);
    let text = state.metrics.render(format);
    ([(header::CONTENT_TYPE, format.content_type())], text).into_response()
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

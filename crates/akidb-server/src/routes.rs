//! HTTP routes. Handlers parse and check the request shape, call the engine, and map its
//! errors to `{"error": {"code", "message", "field"?}}` with an exhaustive match.

use std::sync::Arc;
use std::time::Instant;

use akidb_api as api;
use akidb_api::ErrorCode;
use akidb_engine::Tier;
use akidb_engine::TierAction;
use akidb_engine::TierInfo;
use akidb_engine::WalError;
use akidb_engine::{
    CollectionInfo, CollectionStatus, CreateCollection, Engine, EngineError, NewDocument,
    SearchQuery,
};
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::metrics::Metrics;

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
            get(get_collection).delete(delete_collection),
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

/// An API error, rendered as the documented JSON body.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    field: Option<String>,
    /// Seconds, for a `Retry-After` header.
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }
    fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = api::ErrorResponse {
            error: api::ErrorBody {
                code: self.code,
                message: self.message,
                field: self.field,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
        }
        response
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let message = e.to_string();
        match e {
            EngineError::Invalid(v) => {
                ApiError::new(ErrorCode::InvalidArgument, message).field(v.field)
            }
            EngineError::CollectionNotFound(_) => {
                ApiError::new(ErrorCode::CollectionNotFound, message)
            }
            EngineError::CollectionExists(_) => ApiError::new(ErrorCode::CollectionExists, message),
            EngineError::DocumentNotFound { .. } => {
                ApiError::new(ErrorCode::DocumentNotFound, message)
            }
            EngineError::CollectionUnavailable { .. } | EngineError::Wal(WalError::Poisoned) => {
                ApiError::new(ErrorCode::CollectionUnavailable, message)
            }
            EngineError::Backpressure {
                retry_after_secs, ..
            } => {
                let mut e = ApiError::new(ErrorCode::Unavailable, message);
                e.retry_after = Some(retry_after_secs);
                e
            }
            EngineError::InsufficientStorage(_) => {
                let mut e = ApiError::new(ErrorCode::InsufficientStorage, message);
                e.retry_after = Some(5);
                e
            }
            EngineError::ShuttingDown
            | EngineError::Unavailable(_)
            | EngineError::ObjectStore(_) => ApiError::new(ErrorCode::Unavailable, message),
            EngineError::Conflict(_)
            | EngineError::StoreMismatch(_)
            | EngineError::Corrupted(_)
            | EngineError::InvalidConfig(_)
            | EngineError::Wal(WalError::Io { .. } | WalError::Corrupted { .. })
            | EngineError::Segment(_)
            | EngineError::Io(_) => {
                tracing::error!(error = %message, "internal error");
                ApiError::new(ErrorCode::Internal, message)
            }
        }
    }
}

/// A JSON body: `application/json` required (415), size bounded by `DefaultBodyLimit` (413),
/// syntax errors are 400 `malformed_json`, shape errors 422 `invalid_body` naming the JSON path.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "the request body must be JSON, sent with content-type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    "the request body is larger than the server's max_body_bytes; send smaller batches",
                )
            } else {
                ApiError::new(ErrorCode::MalformedJson, format!("could not read the request body: {rejection}"))
            }
        })?;
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut de);
        if value.is_ok()
            && let Err(e) = de.end()
        {
            return Err(ApiError::new(
                ErrorCode::MalformedJson,
                format!("the body is not valid JSON: {e}"),
            ));
        }
        match value {
            Ok(v) => Ok(ApiJson(v)),
            Err(err) => {
                let path = err.path().to_string();
                let inner = err.into_inner();
                if inner.is_syntax() || inner.is_eof() {
                    Err(ApiError::new(
                        ErrorCode::MalformedJson,
                        format!("the body is not valid JSON: {inner}"),
                    ))
                } else {
                    let field = if path == "." { String::new() } else { path };
                    let message = if field.is_empty() {
                        format!("the body does not match the expected shape: {inner}")
                    } else {
                        format!("{field}: {inner}")
                    };
                    let e = ApiError::new(ErrorCode::InvalidBody, message);
                    Err(if field.is_empty() { e } else { e.field(field) })
                }
            }
        }
    }
}

fn collection_name(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(name) = path.map_err(|e| {
        ApiError::new(ErrorCode::InvalidArgument, format!("collection name: {e}")).field("name")
    })?;
    akidb_core::types::validate_collection_name(&name)
        .map_err(|e| ApiError::new(ErrorCode::InvalidArgument, e.to_string()).field("name"))?;
    Ok(name)
}

fn metric_to_api(m: akidb_core::Metric) -> api::Metric {
    match m {
        akidb_core::Metric::Cosine => api::Metric::Cosine,
        akidb_core::Metric::L2 => api::Metric::L2,
        akidb_core::Metric::Dot => api::Metric::Dot,
    }
}

fn metric_from_api(m: api::Metric) -> akidb_core::Metric {
    match m {
        api::Metric::Cosine => akidb_core::Metric::Cosine,
        api::Metric::L2 => akidb_core::Metric::L2,
        api::Metric::Dot => akidb_core::Metric::Dot,
    }
}

fn info_to_api(info: &CollectionInfo) -> api::CollectionInfo {
    let def = &info.def;
    api::CollectionInfo {
        name: def.name.clone(),
        id: def.id.clone(),
        dimension: def.dimension,
        metric: metric_to_api(def.metric),
        count: info.count as u64,
        index: api::IndexInfo {
            m: def.index.m,
            ef_construction: def.index.ef_construction,
            ef_search: def.index.ef_search,
        },
        status: "ready".into(),
        reason: None,
        index_pending: info.index_pending as u64,
        segments: info.segments as u64,
        unflushed: info.unflushed as u64,
        bytes_in_ram: info.bytes_in_ram as u64,
        tier: Some(tier_to_api(info.tier.tier)),
    }
}

fn tier_to_api(t: Tier) -> api::Tier {
    match t {
        Tier::Hot => api::Tier::Hot,
        Tier::Warm => api::Tier::Warm,
        Tier::Cold => api::Tier::Cold,
    }
}

fn tier_from_api(t: api::Tier) -> Tier {
    match t {
        api::Tier::Hot => Tier::Hot,
        api::Tier::Warm => Tier::Warm,
        api::Tier::Cold => Tier::Cold,
    }
}

fn tier_status(t: TierInfo) -> api::TierStatus {
    let last_access = chrono::DateTime::from_timestamp_millis(t.last_access_ms as i64)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    api::TierStatus {
        tier: tier_to_api(t.tier),
        pinned: t.pinned,
        bytes_in_ram: t.bytes_in_ram,
        bytes_on_disk: t.bytes_on_disk,
        bytes_in_object_store: t.bytes_in_object_store,
        last_access,
        recent_accesses: t.recent_accesses as u64,
    }
}

async fn get_tier(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<api::TierStatus>, ApiError> {
    let name = collection_name(path)?;
    Ok(Json(tier_status(state.engine.tier_info(&name)?)))
}

/// Promote, demote, pin or unpin; answers with the tier status after the move.
async fn post_tier(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<ApiJson<api::TierRequest>, ApiError>,
) -> Result<Json<api::TierStatus>, ApiError> {
    let name = collection_name(path)?;
    let ApiJson(req) = body?;
    let action = match req.action {
        api::TierAction::Promote => TierAction::Promote,
        api::TierAction::Demote => TierAction::Demote,
        api::TierAction::Pin => TierAction::Pin,
        api::TierAction::Unpin => TierAction::Unpin,
    };
    let info = state
        .engine
        .tier_action(&name, action, req.target.map(tier_from_api))
        .await?;
    Ok(Json(tier_status(info)))
}

async fn get_tiers(State(state): State<AppState>) -> Json<api::TiersResponse> {
    let mut totals = state
        .engine
        .tier_totals()
        .into_iter()
        .map(|(_, t)| api::TierTotals {
            collections: t.collections as u64,
            bytes_in_ram: t.bytes_in_ram,
            bytes_on_disk: t.bytes_on_disk,
            bytes_in_object_store: t.bytes_in_object_store,
        });
    let mut next = || totals.next().expect("three tiers");
    Json(api::TiersResponse {
        hot: next(),
        warm: next(),
        cold: next(),
    })
}

fn status_to_api(status: &CollectionStatus) -> api::CollectionInfo {
    match status {
        CollectionStatus::Ready(info) => info_to_api(info),
        CollectionStatus::Failed { def, reason } => api::CollectionInfo {
            name: def.name.clone(),
            id: def.id.clone(),
            dimension: def.dimension,
            metric: metric_to_api(def.metric),
            count: 0,
            index: api::IndexInfo {
                m: def.index.m,
                ef_construction: def.index.ef_construction,
                ef_search: def.index.ef_search,
            },
            status: "unavailable".into(),
            reason: Some(reason.clone()),
            index_pending: 0,
            segments: 0,
            unflushed: 0,
            bytes_in_ram: 0,
            tier: None,
        },
    }
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

async fn list_collections(State(state): State<AppState>) -> Json<api::ListCollectionsResponse> {
    let collections = state
        .engine
        .list_collections()
        .iter()
        .map(status_to_api)
        .collect();
    Json(api::ListCollectionsResponse { collections })
}

async fn create_collection(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<api::CreateCollectionRequest>,
) -> Result<(StatusCode, Json<api::CollectionInfo>), ApiError> {
    let index = req.index.unwrap_or_default();
    let info = state
        .engine
        .create_collection(CreateCollection {
            name: req.name,
            dimension: req.dimension,
            metric: metric_from_api(req.metric),
            m: index.m,
            ef_construction: index.ef_construction,
            ef_search: index.ef_search,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(info_to_api(&info))))
}

async fn get_collection(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<api::CollectionInfo>, ApiError> {
    let name = collection_name(path)?;
    Ok(Json(info_to_api(
        &state.engine.collection_info(&name).await?,
    )))
}

async fn delete_collection(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let name = collection_name(path)?;
    state.engine.delete_collection(&name).await?;
    Ok(Json(json!({"deleted": name})))
}

async fn upsert(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<ApiJson<api::UpsertRequest>, ApiError>,
) -> Result<Json<api::UpsertResponse>, ApiError> {
    let name = collection_name(path)?;
    let ApiJson(req) = body?;
    let docs: Vec<NewDocument> = req
        .documents
        .into_iter()
        .map(|d| NewDocument {
            id: d.id,
            vector: d.vector,
            metadata: d.metadata,
        })
        .collect();
    let ids = state.engine.upsert(&name, docs).await?;
    Ok(Json(api::UpsertResponse {
        upserted: ids.len() as u64,
        ids,
    }))
}

async fn delete_documents(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<ApiJson<api::DeleteDocumentsRequest>, ApiError>,
) -> Result<Json<api::DeleteDocumentsResponse>, ApiError> {
    let name = collection_name(path)?;
    let ApiJson(req) = body?;
    let deleted = state.engine.delete_documents(&name, req.ids).await?;
    Ok(Json(api::DeleteDocumentsResponse {
        deleted: deleted as u64,
    }))
}

async fn get_document(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<api::Document>, ApiError> {
    let (name, id) = doc_path(path)?;
    read_document(&state, name, id).await
}

/// `GET .../documents/delete`: the document whose id is `delete`.
async fn get_document_named_delete(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<api::Document>, ApiError> {
    read_document(&state, collection_name(path)?, "delete".into()).await
}

async fn read_document(
    state: &AppState,
    name: String,
    id: String,
) -> Result<Json<api::Document>, ApiError> {
    let doc = state.engine.get_document(&name, &id).await?;
    Ok(Json(api::Document {
        id: doc.id,
        vector: doc.vector,
        metadata: akidb_engine::metadata_value(doc.metadata),
    }))
}

async fn delete_document(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<api::DeleteDocumentsResponse>, ApiError> {
    let (name, id) = doc_path(path)?;
    remove_document(&state, name, id).await
}

/// `DELETE .../documents/delete`: the document whose id is `delete`.
async fn delete_document_named_delete(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<api::DeleteDocumentsResponse>, ApiError> {
    remove_document(&state, collection_name(path)?, "delete".into()).await
}

async fn remove_document(
    state: &AppState,
    name: String,
    id: String,
) -> Result<Json<api::DeleteDocumentsResponse>, ApiError> {
    let deleted = state
        .engine
        .delete_documents(&name, vec![id.clone()])
        .await?;
    if deleted == 0 {
        return Err(EngineError::DocumentNotFound {
            collection: name,
            id,
        }
        .into());
    }
    Ok(Json(api::DeleteDocumentsResponse {
        deleted: deleted as u64,
    }))
}

fn doc_path(
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<(String, String), ApiError> {
    let Path((name, id)) = path
        .map_err(|e| ApiError::new(ErrorCode::InvalidArgument, format!("path: {e}")).field("id"))?;
    akidb_core::types::validate_collection_name(&name)
        .map_err(|e| ApiError::new(ErrorCode::InvalidArgument, e.to_string()).field("name"))?;
    akidb_core::types::validate_doc_id("id", &id)
        .map_err(|e| ApiError::new(ErrorCode::InvalidArgument, e.to_string()).field("id"))?;
    Ok((name, id))
}

async fn search(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<ApiJson<api::SearchRequest>, ApiError>,
) -> Result<Json<api::SearchResponse>, ApiError> {
    let started = Instant::now();
    let name = collection_name(path)?;
    let ApiJson(req) = body?;
    let hits = state
        .engine
        .search(
            &name,
            SearchQuery {
                vector: req.vector,
                k: req.k,
                ef: req.ef,
                exact: req.exact,
                filter: req.filter,
                include_vector: req.include_vector,
                include_metadata: req.include_metadata,
            },
        )
        .await?;
    let results = hits
        .into_iter()
        .map(|h| api::SearchHit {
            id: h.id,
            score: h.score,
            vector: h.vector,
            metadata: if req.include_metadata {
                Some(akidb_engine::metadata_value(h.metadata))
            } else {
                None
            },
        })
        .collect();
    Ok(Json(api::SearchResponse {
        results,
        latency_ms: started.elapsed().as_secs_f64() * 1000.0,
    }))
}

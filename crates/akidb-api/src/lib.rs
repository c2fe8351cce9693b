//! AkiDB's HTTP wire format: request and response bodies, stable error codes, and the OpenAPI
//! document. Clients (the load tool, tests, users' code) can depend on this crate alone.

// The OpenAPI schemas are one `json!` literal, deeper than the default limit allows.
#![recursion_limit = "256"]

mod openapi;
mod queries;
mod routes;

#[cfg(feature = "client")]
pub mod client;

pub use openapi::openapi;
pub use queries::*;
pub use routes::{Access, ROUTES, Role, Route, route};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST /api/v1/collections`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCollectionRequest {
    pub name: String,
    pub dimension: usize,
    pub metric: Metric,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<IndexParams>,
    /// How the hot tier holds the vectors; default `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<Quantization>,
}

/// `PATCH /api/v1/collections/{name}`: the settings that can change after creation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateCollectionRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<Quantization>,
}

/// How the hot tier holds a collection's vectors: `none` (f32 in RAM) or `sq8` (8-bit codes
/// in RAM, f32 on local disk for re-ranking: about a quarter of the RAM).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quantization {
    #[default]
    None,
    Sq8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    Cosine,
    L2,
    Dot,
}

/// HNSW parameters; absent ones take the server's defaults.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub m: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ef_construction: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ef_search: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexInfo {
    pub m: usize,
    pub ef_construction: usize,
    pub ef_search: usize,
}

/// A collection as listed and described.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionInfo {
    pub name: String,
    pub id: String,
    pub dimension: usize,
    pub metric: Metric,
    /// Live documents.
    pub count: u64,
    pub index: IndexInfo,
    #[serde(default)]
    pub quantization: Quantization,
    /// `ready`, or `unavailable` (then `reason` says why).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Vectors written but not yet in the HNSW graph (they are searched exactly meanwhile).
    #[serde(default)]
    pub index_pending: u64,
    /// Parquet segments in the newest manifest.
    #[serde(default)]
    pub segments: u64,
    /// Documents and deletes applied but not yet in a segment (they are in the WAL).
    #[serde(default)]
    pub unflushed: u64,
    #[serde(default)]
    pub bytes_in_ram: u64,
    /// Payload indexes on metadata fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payload_indexes: Vec<PayloadIndex>,
    /// `hot`, `warm` or `cold` (absent for an unavailable collection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
}

/// Where a collection's data lives: RAM (hot), local disk (warm) or the object store only (cold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Hot,
    Warm,
    Cold,
}

/// `GET /api/v1/collections/{name}/tier`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierStatus {
    pub tier: Tier,
    /// A pinned collection is never moved down by the policy.
    pub pinned: bool,
    pub bytes_in_ram: u64,
    /// Local copies of its objects plus its WAL.
    pub bytes_on_disk: u64,
    pub bytes_in_object_store: u64,
    /// RFC 3339 time of the last read or write.
    pub last_access: String,
    /// Reads and writes within the access-rate window (`tier_promote_window_secs`).
    pub recent_accesses: u64,
    /// A promotion to hot is loading the collection; requests are answered meanwhile.
    #[serde(default)]
    pub promoting: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TierAction {
    Promote,
    Demote,
    Pin,
    Unpin,
}

/// `POST /api/v1/collections/{name}/tier`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierRequest {
    pub action: TierAction,
    /// promote: default `hot`; demote: default one tier down; pin: move there first (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Tier>,
}

/// One tier's totals in `GET /api/v1/tiers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierTotals {
    pub collections: u64,
    pub bytes_in_ram: u64,
    pub bytes_on_disk: u64,
    pub bytes_in_object_store: u64,
}

/// `GET /api/v1/tiers`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TiersResponse {
    pub hot: TierTotals,
    pub warm: TierTotals,
    pub cold: TierTotals,
}

/// `GET /api/v1/collections`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListCollectionsResponse {
    pub collections: Vec<CollectionInfo>,
}

/// One document of an upsert.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentIn {
    /// At most 128 bytes; a UUIDv7 is generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub vector: Vec<f32>,
    /// A JSON object of at most 64 KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

/// `POST /api/v1/collections/{name}/documents`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpsertRequest {
    pub documents: Vec<DocumentIn>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpsertResponse {
    pub upserted: u64,
    /// The ids written, in request order (generated ones included).
    pub ids: Vec<String>,
}

/// `POST /api/v1/collections/{name}/documents/delete`: by ids, or every document matching a
/// filter (exactly one of the two).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteDocumentsRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeleteDocumentsResponse {
    /// How many documents were deleted (of the ids, those that existed).
    pub deleted: u64,
}

/// `GET /api/v1/collections/{name}/documents/{id}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub id: String,
    pub vector: Vec<f32>,
    pub metadata: Value,
}

pub const DEFAULT_K: usize = 10;

fn default_k() -> usize {
    DEFAULT_K
}

/// `POST /api/v1/collections/{name}/search`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// The query vector; may be left out (or empty) when `text` is given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vector: Vec<f32>,
    /// 1..=10000, default 10. Never capped: ask for k, get k (or every match if fewer exist).
    #[serde(default = "default_k")]
    pub k: usize,
    /// HNSW search breadth for this query; default the collection's `ef_search`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ef: Option<usize>,
    /// Partitions read by a warm or cold query of a collection with a partitioned base
    /// (1..=65536); default 3% of them, at least 8. More finds more true neighbours and reads
    /// more bytes. Hot collections ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nprobe: Option<usize>,
    /// A filter over metadata (see the README's "Filters").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Value>,
    /// Full-text query over a `text` payload index (at most 4,096 bytes): alone it ranks by
    /// BM25 (the scores are BM25's); with `vector`, the two rankings are fused by reciprocal
    /// rank fusion (the scores are the fused ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The `text` index's field; default: the collection's only text index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_field: Option<String>,
    /// The text ranking's share of a hybrid search's fusion, 0..=1 (default 0.5; 0 ranks by
    /// the vector alone, 1 by the text alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_weight: Option<f32>,
    /// Exact results: every live document is compared (the same answers in every tier).
    #[serde(default)]
    pub exact: bool,
    #[serde(default)]
    pub include_vector: bool,
    #[serde(default)]
    pub include_metadata: bool,
    /// Add a `report` to the response: which tier answered and what it read.
    #[serde(default)]
    pub report: bool,
    /// Give up (504 `deadline_exceeded`) after this many milliseconds, 1..=300000; default the
    /// server's `limits.search_timeout` (10 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// `POST /api/v1/admin/keys`: a new API key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    pub role: Role,
    /// Collection name patterns the key may touch (`*` matches any run of characters, e.g.
    /// `tenant-a-*`); absent: every collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collections: Option<Vec<String>>,
    /// This key's own quotas, each replacing the server's default for it.
    #[serde(default, skip_serializing_if = "KeyLimits::is_empty")]
    pub limits: KeyLimits,
    /// A note for people (who the key is for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Per-key quotas; an absent one takes the server's `[quota]` default, 0 means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyLimits {
    /// Requests per second (a burst of one second's worth is allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<u32>,
    /// Requests in flight at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u32>,
    /// Collections the key's scope may hold (creates beyond it get 403 `quota_exceeded`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_collections: Option<u64>,
    /// Live vectors across the collections in the key's scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_vectors: Option<u64>,
    /// Vector and metadata bytes across the collections in the key's scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
}

impl KeyLimits {
    pub fn is_empty(&self) -> bool {
        *self == KeyLimits::default()
    }
}

/// A key as listed: never the key itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub id: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collections: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "KeyLimits::is_empty")]
    pub limits: KeyLimits,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `api` (created through the admin API, revocable there), `config` (the configuration
    /// file) or `bootstrap` (`--admin-api-key`).
    pub source: String,
    /// RFC 3339; absent for keys from the configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

/// `POST /api/v1/admin/keys` answers with the key, shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedKey {
    pub id: String,
    /// Send as `Authorization: Bearer KEY`; the server keeps only its SHA-256.
    pub key: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collections: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "KeyLimits::is_empty")]
    pub limits: KeyLimits,
}

/// `GET /api/v1/admin/keys`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListKeys {
    pub keys: Vec<KeyInfo>,
}

/// Which tier answered a search and what it read (`"report": true`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchReport {
    /// `hot` (RAM), `warm` (local disk only) or `cold` (the object store was read).
    pub tier: String,
    pub bytes_local: u64,
    pub bytes_object_store: u64,
    pub object_store_gets: u64,
    /// Partitions of the partitioned base scanned (0: none, or no base).
    pub partitions: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    pub id: String,
    /// cosine: similarity (higher is better); dot: inner product (higher is better);
    /// l2: Euclidean distance (lower is better).
    pub score: f32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchResponse {
    /// Best first.
    pub results: Vec<SearchHit>,
    /// Server-side time spent on the search, in milliseconds.
    pub latency_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<SearchReport>,
}

/// Every error: `{"error": {"code": "...", "message": "...", "field": "..."?}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    /// The request field at fault, when there is one (`documents[3].vector`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Stable, machine-readable error codes. Clients match on these, never on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the body is not valid JSON.
    MalformedJson,
    /// 422: valid JSON of the wrong shape (missing field, wrong type, unknown field).
    InvalidBody,
    /// 400: a value is out of range or otherwise invalid; `field` names it.
    InvalidArgument,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 413: the body is larger than the server's `max_body_bytes`.
    PayloadTooLarge,
    /// 404: no such collection.
    CollectionNotFound,
    /// 404: no such document.
    DocumentNotFound,
    /// 404: no such route.
    NotFound,
    /// 405: the route exists but not with this method.
    MethodNotAllowed,
    /// 409: a collection with that name exists.
    CollectionExists,
    /// 503: the collection failed to open or lost its WAL; `message` says why.
    CollectionUnavailable,
    /// 503: the server is starting, shutting down or degraded; retry later.
    Unavailable,
    /// 507: the data directory's disk is full (or below `min_free_disk_bytes`); the write was
    /// refused and changed nothing; retry once space is freed.
    InsufficientStorage,
    /// 500: a bug or an unexpected storage failure; the server's log has the detail.
    Internal,
    /// 401: no API key, or one the server does not know (`Authorization: Bearer KEY` or
    /// `api-key: KEY`).
    Unauthenticated,
    /// 403: the key's role or collection scope does not cover this route or collection.
    PermissionDenied,
    /// 403: the request would exceed a quota (collections, vectors or bytes); it changed nothing.
    QuotaExceeded,
    /// 429: too many requests (per second or in flight) for this key or the server; retry after
    /// the `Retry-After` header's seconds.
    RateLimited,
    /// 408: the client sent the request body too slowly.
    RequestTimeout,
    /// 404: no API key has that id.
    KeyNotFound,
    /// 504: the search ran past its deadline (`timeout_ms`, or the server's default).
    DeadlineExceeded,
}

impl ErrorCode {
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::MalformedJson | ErrorCode::InvalidArgument => 400,
            ErrorCode::CollectionNotFound
            | ErrorCode::DocumentNotFound
            | ErrorCode::NotFound
            | ErrorCode::KeyNotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::CollectionExists => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::InvalidBody => 422,
            ErrorCode::Internal => 500,
            ErrorCode::CollectionUnavailable | ErrorCode::Unavailable => 503,
            ErrorCode::InsufficientStorage => 507,
            ErrorCode::Unauthenticated => 401,
            ErrorCode::PermissionDenied | ErrorCode::QuotaExceeded => 403,
            ErrorCode::RequestTimeout => 408,
            ErrorCode::RateLimited => 429,
            ErrorCode::DeadlineExceeded => 504,
        }
    }

    pub const ALL: [ErrorCode; 21] = [
        ErrorCode::MalformedJson,
        ErrorCode::InvalidBody,
        ErrorCode::InvalidArgument,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::PayloadTooLarge,
        ErrorCode::CollectionNotFound,
        ErrorCode::DocumentNotFound,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::CollectionExists,
        ErrorCode::CollectionUnavailable,
        ErrorCode::Unavailable,
        ErrorCode::InsufficientStorage,
        ErrorCode::Internal,
        ErrorCode::Unauthenticated,
        ErrorCode::PermissionDenied,
        ErrorCode::QuotaExceeded,
        ErrorCode::RateLimited,
        ErrorCode::RequestTimeout,
        ErrorCode::KeyNotFound,
        ErrorCode::DeadlineExceeded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::InvalidBody => "invalid_body",
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::CollectionNotFound => "collection_not_found",
            ErrorCode::DocumentNotFound => "document_not_found",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::CollectionExists => "collection_exists",
            ErrorCode::CollectionUnavailable => "collection_unavailable",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::InsufficientStorage => "insufficient_storage",
            ErrorCode::Internal => "internal",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::PermissionDenied => "permission_denied",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::KeyNotFound => "key_not_found",
            ErrorCode::DeadlineExceeded => "deadline_exceeded",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_serialize_as_their_names() {
        for code in ErrorCode::ALL {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                Value::from(code.as_str())
            );
            assert!((400..600).contains(&code.status()));
        }
    }
}

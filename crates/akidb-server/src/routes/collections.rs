//! Collection, document, search and tier handlers, and the conversions between the engine's
//! types and the API's.

use akidb_api as api;
use akidb_api::ErrorCode;
use akidb_core::Quantization;
use akidb_engine::{
    CollectionInfo, CollectionStatus, CreateCollection, EngineError, IndexType, NewDocument, Tier,
    TierAction, TierInfo,
};
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;
use super::body::{ApiJson, UpsertBody};
use super::error::ApiError;
use crate::auth::Principal;

pub(super) fn collection_name(
    path: Result<Path<String>, PathRejection>,
) -> Result<String, ApiError> {
    let Path(name) = path.map_err(|e| {
        ApiError::new(ErrorCode::InvalidArgument, format!("collection name: {e}")).field("name")
    })?;
    akidb_core::types::validate_collection_name(&name)
        .map_err(|e| ApiError::new(ErrorCode::InvalidArgument, e.to_string()).field("name"))?;
    Ok(name)
}

pub(super) fn metric_to_api(m: akidb_core::Metric) -> api::Metric {
    match m {
        akidb_core::Metric::Cosine => api::Metric::Cosine,
        akidb_core::Metric::L2 => api::Metric::L2,
        akidb_core::Metric::Dot => api::Metric::Dot,
    }
}

pub(super) fn metric_from_api(m: api::Metric) -> akidb_core::Metric {
    match m {
        api::Metric::Cosine => akidb_core::Metric::Cosine,
        api::Metric::L2 => akidb_core::Metric::L2,
        api::Metric::Dot => akidb_core::Metric::Dot,
    }
}

pub(super) fn info_to_api(info: &CollectionInfo) -> api::CollectionInfo {
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
        quantization: quantization_to_api(def.quantization),
        payload_indexes: payload_indexes_to_api(&def.payload_indexes),
        status: "ready".into(),
        reason: None,
        index_pending: info.index_pending as u64,
        segments: info.segments as u64,
        unflushed: info.unflushed as u64,
        bytes_in_ram: info.bytes_in_ram as u64,
        tier: Some(tier_to_api(info.tier.tier)),
    }
}

pub(super) fn tier_to_api(t: Tier) -> api::Tier {
    match t {
        Tier::Hot => api::Tier::Hot,
        Tier::Warm => api::Tier::Warm,
        Tier::Cold => api::Tier::Cold,
    }
}

pub(super) fn tier_from_api(t: api::Tier) -> Tier {
    match t {
        api::Tier::Hot => Tier::Hot,
        api::Tier::Warm => Tier::Warm,
        api::Tier::Cold => Tier::Cold,
    }
}

pub(super) fn tier_status(t: TierInfo) -> api::TierStatus {
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
        promoting: t.promoting,
    }
}

pub(super) async fn get_tier(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<api::TierStatus>, ApiError> {
    let name = collection_name(path)?;
    let info = state.engine.tier_info(&name);
    Ok(Json(tier_status(
        info.map_err(|e| ApiError::during(e, "tier status", &name))?,
    )))
}

/// Promote, demote, pin or unpin; answers with the tier status after the move.
pub(super) async fn post_tier(
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
        .await
        .map_err(|e| ApiError::during(e, "tier change", &name))?;
    Ok(Json(tier_status(info)))
}

pub(super) async fn get_tiers(State(state): State<AppState>) -> Json<api::TiersResponse> {
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

pub(super) fn status_to_api(status: &CollectionStatus) -> api::CollectionInfo {
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
            quantization: quantization_to_api(def.quantization),
            payload_indexes: payload_indexes_to_api(&def.payload_indexes),
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

/// Every collection the key's scope covers.
pub(super) async fn list_collections(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Json<api::ListCollectionsResponse> {
    let collections = state
        .engine
        .list_collections()
        .iter()
        .map(status_to_api)
        .filter(|c| who.covers(&c.name))
        .collect();
    Json(api::ListCollectionsResponse { collections })
}

pub(super) async fn create_collection(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiJson(req): ApiJson<api::CreateCollectionRequest>,
) -> Result<(StatusCode, Json<api::CollectionInfo>), ApiError> {
    who.check_collection(&req.name)?;
    state.quotas.check_create(&state.engine, &who)?;
    let index = req.index.unwrap_or_default();
    let name = req.name.clone();
    let info = state
        .engine
        .create_collection(CreateCollection {
            name: req.name,
            dimension: req.dimension,
            metric: metric_from_api(req.metric),
            m: index.m,
            ef_construction: index.ef_construction,
            ef_search: index.ef_search,
            quantization: req.quantization.map(quantization_from_api),
        })
        .await
        .map_err(|e| ApiError::during(e, "create", &name))?;
    Ok((StatusCode::CREATED, Json(info_to_api(&info))))
}

pub(super) async fn get_collection(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<api::CollectionInfo>, ApiError> {
    let name = collection_name(path)?;
    Ok(Json(info_to_api(
        &state
            .engine
            .collection_info(&name)
            .await
            .map_err(|e| ApiError::during(e, "describe", &name))?,
    )))
}

pub(super) async fn update_collection(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    ApiJson(req): ApiJson<api::UpdateCollectionRequest>,
) -> Result<Json<api::CollectionInfo>, ApiError> {
    let name = collection_name(path)?;
    let info = match req.quantization {
        Some(q) => {
            state
                .engine
                .set_quantization(&name, quantization_from_api(q))
                .await
        }
        None => state.engine.collection_info(&name).await,
    }
    .map_err(|e| ApiError::during(e, "update", &name))?;
    Ok(Json(info_to_api(&info)))
}

pub(super) async fn create_payload_index(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<ApiJson<api::PayloadIndex>, ApiError>,
) -> Result<(StatusCode, Json<api::CollectionInfo>), ApiError> {
    let name = collection_name(path)?;
    let ApiJson(req) = body?;
    let kind = match req.kind {
        api::PayloadIndexType::Keyword => IndexType::Keyword,
        api::PayloadIndexType::Integer => IndexType::Integer,
        api::PayloadIndexType::Float => IndexType::Float,
        api::PayloadIndexType::Bool => IndexType::Bool,
        api::PayloadIndexType::Text => IndexType::Text,
    };
    let created = state
        .engine
        .create_payload_index(&name, &req.field, kind)
        .await
        .map_err(|e| ApiError::during(e, "create index", &name))?;
    let info = state
        .engine
        .collection_info(&name)
        .await
        .map_err(|e| ApiError::during(e, "create index", &name))?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(info_to_api(&info))))
}

fn payload_indexes_to_api(defs: &[akidb_engine::PayloadIndexDef]) -> Vec<api::PayloadIndex> {
    defs.iter()
        .map(|d| api::PayloadIndex {
            field: d.field.clone(),
            kind: match d.kind {
                IndexType::Keyword => api::PayloadIndexType::Keyword,
                IndexType::Integer => api::PayloadIndexType::Integer,
                IndexType::Float => api::PayloadIndexType::Float,
                IndexType::Bool => api::PayloadIndexType::Bool,
                IndexType::Text => api::PayloadIndexType::Text,
            },
        })
        .collect()
}

fn quantization_from_api(q: api::Quantization) -> Quantization {
    match q {
        api::Quantization::None => Quantization::None,
        api::Quantization::Sq8 => Quantization::Sq8,
    }
}

fn quantization_to_api(q: Quantization) -> api::Quantization {
    match q {
        Quantization::None => api::Quantization::None,
        Quantization::Sq8 => api::Quantization::Sq8,
    }
}

pub(super) async fn delete_collection(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let name = collection_name(path)?;
    state
        .engine
        .delete_collection(&name)
        .await
        .map_err(|e| ApiError::during(e, "delete", &name))?;
    Ok(Json(json!({"deleted": name})))
}

pub(super) async fn upsert(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    path: Result<Path<String>, PathRejection>,
    body: Result<UpsertBody, ApiError>,
) -> Result<Json<api::UpsertResponse>, ApiError> {
    let name = collection_name(path)?;
    let UpsertBody(docs) = body?;
    let bytes = || {
        let doc = |d: &NewDocument| {
            let id = d.id.as_ref().map_or(36, String::len);
            let metadata = d.metadata.as_ref().map_or(0, |m| m.to_string().len());
            d.vector.len() * 4 + id + metadata
        };
        docs.iter().map(doc).sum::<usize>() as u64
    };
    let n = docs.len() as u64;
    state
        .quotas
        .check_upsert(&state.engine, &who, &name, n, bytes)?;
    let ids = state
        .engine
        .upsert(&name, docs)
        .await
        .map_err(|e| ApiError::during(e, "upsert", &name))?;
    Ok(Json(api::UpsertResponse {
        upserted: ids.len() as u64,
        ids,
    }))
}

pub(super) async fn delete_documents(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<ApiJson<api::DeleteDocumentsRequest>, ApiError>,
) -> Result<Json<api::DeleteDocumentsResponse>, ApiError> {
    let name = collection_name(path)?;
    let ApiJson(req) = body?;
    let deleted = match (req.ids, req.filter) {
        (Some(ids), None) => state.engine.delete_documents(&name, ids).await,
        (None, Some(filter)) => state.engine.delete_by_filter(&name, filter).await,
        _ => {
            return Err(ApiError::new(
                ErrorCode::InvalidArgument,
                "give either ids or a filter: {\"ids\": [...]} or {\"filter\": {...}}",
            )
            .field("ids"));
        }
    }
    .map_err(|e| ApiError::during(e, "delete documents", &name))?;
    Ok(Json(api::DeleteDocumentsResponse {
        deleted: deleted as u64,
    }))
}

pub(super) async fn get_document(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<api::Document>, ApiError> {
    let (name, id) = doc_path(path)?;
    read_document(&state, name, id).await
}

/// `GET .../documents/delete` and `.../documents/scroll`: the document whose id is that word.
pub(super) async fn get_document_named(
    state: AppState,
    path: Result<Path<String>, PathRejection>,
    id: &'static str,
) -> Result<Json<api::Document>, ApiError> {
    read_document(&state, collection_name(path)?, id.into()).await
}

pub(super) async fn read_document(
    state: &AppState,
    name: String,
    id: String,
) -> Result<Json<api::Document>, ApiError> {
    let doc = state
        .engine
        .get_document(&name, &id)
        .await
        .map_err(|e| ApiError::during(e, "get document", &name))?;
    Ok(Json(api::Document {
        id: doc.id,
        vector: doc.vector,
        metadata: akidb_engine::metadata_value(doc.metadata),
    }))
}

pub(super) async fn delete_document(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<api::DeleteDocumentsResponse>, ApiError> {
    let (name, id) = doc_path(path)?;
    remove_document(&state, name, id).await
}

/// `DELETE .../documents/delete`: the document whose id is `delete`.
pub(super) async fn delete_document_named(
    state: AppState,
    path: Result<Path<String>, PathRejection>,
    id: &'static str,
) -> Result<Json<api::DeleteDocumentsResponse>, ApiError> {
    remove_document(&state, collection_name(path)?, id.into()).await
}

pub(super) async fn remove_document(
    state: &AppState,
    name: String,
    id: String,
) -> Result<Json<api::DeleteDocumentsResponse>, ApiError> {
    let deleted = state
        .engine
        .delete_documents(&name, vec![id.clone()])
        .await
        .map_err(|e| ApiError::during(e, "delete document", &name))?;
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

pub(super) fn doc_path(
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

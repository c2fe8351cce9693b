//! Scroll and count handlers: documents by filter rather than by vector.

use akidb_api as api;
use akidb_engine::ScrollQuery;
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};

use super::AppState;
use super::body::ApiJson;
use super::collections::collection_name;
use super::error::ApiError;

pub(super) async fn scroll(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<ApiJson<api::ScrollRequest>, ApiError>,
) -> Result<axum::response::Response, ApiError> {
    let name = collection_name(path)?;
    let ApiJson(req) = body?;
    let page = state
        .engine
        .scroll(
            &name,
            ScrollQuery {
                filter: req.filter,
                limit: req.limit,
                cursor: req.cursor,
                include_vector: req.include_vector,
                include_metadata: req.include_metadata,
            },
        )
        .await
        .map_err(|e| ApiError::during(e, "scroll", &name))?;
    let response = api::ScrollResponse {
        documents: page
            .documents
            .into_iter()
            .map(|d| api::ListedDocument {
                id: d.id,
                vector: d.vector,
                metadata: req
                    .include_metadata
                    .then(|| akidb_engine::metadata_value(d.metadata)),
            })
            .collect(),
        next_cursor: page.next_cursor,
    };
    super::search::answer(response, req.include_vector).await
}

pub(super) async fn count(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<ApiJson<api::CountRequest>, ApiError>,
) -> Result<Json<api::CountResponse>, ApiError> {
    let name = collection_name(path)?;
    let ApiJson(req) = body?;
    let count = state
        .engine
        .count(&name, req.filter)
        .await
        .map_err(|e| ApiError::during(e, "count", &name))?;
    Ok(Json(api::CountResponse {
        count: count as u64,
    }))
}

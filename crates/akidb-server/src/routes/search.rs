//! Search handlers: one search, and a batch of searches in one request (each checked and run on
//! its own, answered in order; a bad one fails alone). Both share [`run_search`]: deadline,
//! cancellation when the client leaves, the engine's search and the answer's shape.

use std::time::Instant;

use akidb_api as api;
use akidb_api::ErrorCode;
use akidb_engine::{Deadline, EngineError, SearchQuery, TextSearch};
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use futures_util::StreamExt;
use serde::Serialize;

use super::AppState;
use super::body::{ApiJson, parse_part};
use super::collections::collection_name;
use super::error::ApiError;

/// Counts a search whose handler was dropped before the engine answered (its client went
/// away), and cancels the engine's work then.
struct ClientGone<'a> {
    metrics: &'a crate::metrics::Metrics,
    _cancel: akidb_engine::CancelOnDrop,
    answered: bool,
}

impl Drop for ClientGone<'_> {
    fn drop(&mut self) {
        if !self.answered {
            self.metrics.search_stopped("client_gone");
        }
    }
}

/// Longest `timeout_ms` a search may ask for: 5 minutes.
const MAX_TIMEOUT_MS: u64 = 300_000;

/// Most searches in one batch.
pub(super) const MAX_BATCH_SEARCHES: usize = 1_000;

/// Searches of one batch run at once (the engine runs each on a blocking thread).
const BATCH_PARALLEL: usize = 8;

pub(super) async fn search(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<ApiJson<api::SearchRequest>, ApiError>,
) -> Result<axum::response::Response, ApiError> {
    let started = Instant::now();
    let name = collection_name(path)?;
    let ApiJson(req) = body?;
    let large = req.include_vector;
    let response = run_search(&state, &name, req, started).await?;
    answer(response, large).await
}

pub(super) async fn search_batch(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<ApiJson<api::BatchSearchRequest>, ApiError>,
) -> Result<axum::response::Response, ApiError> {
    let name = collection_name(path)?;
    let ApiJson(req) = body?;
    if req.searches.is_empty() || req.searches.len() > MAX_BATCH_SEARCHES {
        return Err(ApiError::new(
            ErrorCode::InvalidArgument,
            format!(
                "a batch holds 1 to {MAX_BATCH_SEARCHES} searches, got {}",
                req.searches.len()
            ),
        )
        .field("searches"));
    }
    let large = req
        .searches
        .iter()
        .any(|s| s.get("include_vector").and_then(|v| v.as_bool()) == Some(true));
    let (state, name) = (&state, &name);
    let batches = futures_util::stream::iter(req.searches.into_iter().enumerate())
        .map(|(i, search)| async move {
            let started = Instant::now();
            let at = format!("searches[{i}]");
            let outcome = match parse_part::<api::SearchRequest>(search, &at) {
                Ok(req) => run_search(state, name, req, started).await,
                Err(e) => Err(e),
            };
            match outcome {
                Ok(response) => api::BatchSearchResult::Ok(response),
                Err(e) => api::BatchSearchResult::Err(e.into_body(&at)),
            }
        })
        .buffered(BATCH_PARALLEL)
        .collect()
        .await;
    answer(api::BatchSearchResponse { batches }, large).await
}

/// The JSON answer; one that may hold many vectors (tens of MB) is written on a blocking thread
/// so that it cannot hold up the async workers every other request needs.
pub(super) async fn answer<T: Serialize + Send + 'static>(
    response: T,
    large: bool,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    if !large {
        return Ok(Json(response).into_response());
    }
    let body = tokio::task::spawn_blocking(move || serde_json::to_vec(&response))
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "writing the search answer failed"))?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

/// One search of collection `name`, within its deadline, stopped if the client goes away.
async fn run_search(
    state: &AppState,
    name: &str,
    req: api::SearchRequest,
    started: Instant,
) -> Result<api::SearchResponse, ApiError> {
    let within = match req.timeout_ms {
        None => state.limits.search_timeout,
        Some(ms @ 1..=MAX_TIMEOUT_MS) => std::time::Duration::from_millis(ms),
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidArgument,
                format!("timeout_ms must be between 1 and {MAX_TIMEOUT_MS}"),
            )
            .field("timeout_ms"));
        }
    };
    let text = text_search(&req)?;
    // Dropped with this future: a search whose client went away stops early.
    let (deadline, cancel_on_drop) = Deadline::after(within);
    let mut gone = ClientGone {
        metrics: &state.metrics,
        _cancel: cancel_on_drop,
        answered: false,
    };
    let outcome = state
        .engine
        .search_with_report(
            name,
            SearchQuery {
                vector: req.vector,
                k: req.k,
                ef: req.ef,
                nprobe: req.nprobe,
                exact: req.exact,
                filter: req.filter,
                include_vector: req.include_vector,
                include_metadata: req.include_metadata,
                deadline: Some(deadline),
                text,
            },
        )
        .await;
    gone.answered = true;
    let (hits, report) = outcome
        .inspect_err(|e| {
            if matches!(e, EngineError::DeadlineExceeded(_)) {
                state.metrics.search_stopped("deadline");
            }
        })
        .map_err(|e| ApiError::during(e, "search", name))?;
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
    Ok(api::SearchResponse {
        results,
        latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        report: req.report.then(|| api::SearchReport {
            tier: report.tier.map_or("unknown", |t| t.as_str()).to_string(),
            bytes_local: report.bytes_local,
            bytes_object_store: report.bytes_object_store,
            object_store_gets: report.object_store_gets,
            partitions: report.partitions,
        }),
    })
}

/// The full-text part of a search; `text_field` and `text_weight` only go with a `text`.
fn text_search(req: &api::SearchRequest) -> Result<Option<TextSearch>, ApiError> {
    let Some(query) = &req.text else {
        for (field, given) in [
            ("text_field", req.text_field.is_some()),
            ("text_weight", req.text_weight.is_some()),
        ] {
            if given {
                return Err(ApiError::new(
                    ErrorCode::InvalidArgument,
                    format!("{field} goes with a text to search for; this search has no text"),
                )
                .field(field));
            }
        }
        return Ok(None);
    };
    Ok(Some(TextSearch {
        query: query.clone(),
        field: req.text_field.clone(),
        weight: req.text_weight,
    }))
}

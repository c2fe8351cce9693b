//! Server administration: API keys, the dead-letter queue, and (testing only) fault injection.

use akidb_api as api;
use akidb_api::ErrorCode;
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;
use super::body::ApiJson;
use super::error::ApiError;
use crate::auth::keys::validate_patterns;

pub(super) async fn list_keys(State(state): State<AppState>) -> Json<api::ListKeys> {
    Json(api::ListKeys {
        keys: state.auth.keys.list(),
    })
}

/// Creates a key; the answer holds the key itself, which is never shown again.
pub(super) async fn create_key(
    State(state): State<AppState>,
    body: Result<ApiJson<api::CreateKeyRequest>, ApiError>,
) -> Result<(StatusCode, Json<api::CreatedKey>), ApiError> {
    let ApiJson(req) = body?;
    if let Some(patterns) = &req.collections {
        validate_patterns(patterns)
            .map_err(|m| ApiError::new(ErrorCode::InvalidArgument, m).field("collections"))?;
    }
    if req.description.as_ref().is_some_and(|d| d.len() > 1024) {
        return Err(ApiError::new(
            ErrorCode::InvalidArgument,
            "description is at most 1024 bytes",
        )
        .field("description"));
    }
    let (key, record) = state
        .auth
        .keys
        .create(req.role, req.collections, req.limits, req.description)
        .await
        .map_err(|e| {
            tracing::error!(error = format!("{e:#}"), "creating an API key failed");
            ApiError::new(
                ErrorCode::Internal,
                "creating the API key failed: the key file could not be written",
            )
        })?;
    tracing::info!(id = %record.id, role = record.role.as_str(), collections = ?record.collections, "API key created");
    Ok((
        StatusCode::CREATED,
        Json(api::CreatedKey {
            id: record.id,
            key,
            role: record.role,
            collections: record.collections,
            limits: record.limits,
        }),
    ))
}

/// Revokes a key created through this API; it stops working at once.
pub(super) async fn delete_key(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(id) = path.map_err(|e| {
        ApiError::new(ErrorCode::InvalidArgument, format!("key id: {e}")).field("key_id")
    })?;
    let outcome = state.auth.keys.revoke(&id).await.map_err(|e| {
        tracing::error!(error = format!("{e:#}"), "revoking an API key failed");
        ApiError::new(
            ErrorCode::Internal,
            "revoking the API key failed: the key file could not be written",
        )
    })?;
    match outcome {
        Ok(true) => {
            state.quotas.forget(&id);
            tracing::info!(%id, "API key revoked");
            Ok(Json(json!({"revoked": id})))
        }
        Ok(false) => Err(ApiError::new(
            ErrorCode::KeyNotFound,
            format!("no API key has the id {id}"),
        )
        .field("key_id")),
        Err(why) => Err(ApiError::new(ErrorCode::InvalidArgument, why).field("key_id")),
    }
}

pub(super) async fn list_dlq(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"dead_letters": state.engine.dead_letters()}))
}

/// Re-drives every dead-lettered flush now; answers with what succeeded and what still fails.
pub(super) async fn retry_dlq(State(state): State<AppState>) -> Json<Value> {
    let (ok, failed) = state.engine.retry_dead_letters().await;
    Json(json!({"retried": ok, "still_failing": failed}))
}

/// `POST /api/v1/admin/test-faults` (TESTING ONLY): what the fault injector does from now on.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TestFaultsRequest {
    /// Every call fails with a connection error while true.
    partitioned: Option<bool>,
    /// Added before every call.
    latency_ms: Option<u64>,
    /// Share of calls failing with 503 SlowDown, 0 to 1.
    fail_rate: Option<f64>,
    seed: Option<u64>,
}

pub(super) async fn set_test_faults(
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

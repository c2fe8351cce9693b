//! Who may call what: the authorization layer in front of every route.
//!
//! Each request's route is looked up in [`akidb_api::ROUTES`] (a route missing from the table
//! is refused, so none can be added open by accident), its key is read from
//! `Authorization: Bearer KEY` or `api-key: KEY`, and the key's role and collection scope are
//! checked against the route's [`Access`]. Then the key's rate and in-flight limits
//! ([`crate::quota`]) admit it or answer 429. The key's [`Principal`] goes into the request's
//! extensions for handlers that filter lists or check quotas.
//!
//! With no key configured at all, authentication is off (the server refuses to start that way
//! on a non-loopback address unless `--insecure-no-auth` is given) and every request runs as an
//! unrestricted admin, still subject to the global in-flight limit.

pub mod keys;

use std::collections::HashMap;

use akidb_api::{Access, ErrorCode, KeyLimits, Role};
use axum::extract::{FromRequestParts, MatchedPath, Path, Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::routes::{ApiError, AppState};

pub use self::keys::{KeyRecord, KeyStore};

/// Settings of the authorization layer.
pub struct Auth {
    pub keys: KeyStore,
    /// `/metrics` without a key.
    pub metrics_open: bool,
}

/// The caller of a request, as its key allows.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The key's id; `None` when authentication is off.
    pub key_id: Option<String>,
    pub role: Role,
    pub collections: Option<Vec<String>>,
    pub limits: KeyLimits,
}

impl Principal {
    fn unrestricted() -> Principal {
        Principal {
            key_id: None,
            role: Role::Admin,
            collections: None,
            limits: KeyLimits::default(),
        }
    }

    /// Whether the key may touch the collection `name`.
    pub fn covers(&self, name: &str) -> bool {
        keys::covers(self.collections.as_deref(), name)
    }

    /// 403 unless the key may touch `name`.
    pub fn check_collection(&self, name: &str) -> Result<(), ApiError> {
        if self.covers(name) {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::PermissionDenied,
                format!("this API key may not access collection {name}"),
            ))
        }
    }
}

/// The key a request carries, from `Authorization: Bearer` or `api-key`.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let (scheme, key) = v.trim().split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| key.trim())
            .filter(|k| !k.is_empty());
    }
    headers
        .get("api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

fn unauthenticated(message: &str) -> Response {
    let mut r = ApiError::new(ErrorCode::Unauthenticated, message).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    r
}

/// The middleware: route → access → key → role and scope → limits → handler.
pub async fn authorize(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(path) = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
    else {
        return next.run(req).await; // unmatched: the 404 fallback answers
    };
    let Some(route) = akidb_api::route(req.method().as_str(), &path) else {
        if akidb_api::ROUTES.iter().any(|r| r.path == path) {
            return next.run(req).await; // a known path with another method: 405
        }
        tracing::error!(%path, "route missing from akidb_api::ROUTES; refused");
        return ApiError::new(ErrorCode::Internal, "this route has no access rule").into_response();
    };
    let auth = &state.auth;
    let open = match route.access {
        Access::Open => true,
        Access::Metrics => auth.metrics_open,
        _ => false,
    };
    if open {
        return next.run(req).await;
    }
    let principal = if auth.keys.is_empty() {
        Principal::unrestricted()
    } else {
        let Some(key) = presented_key(req.headers()) else {
            return unauthenticated(
                "an API key is required: send Authorization: Bearer KEY (or api-key: KEY)",
            );
        };
        let Some(record) = auth.keys.verify(key) else {
            state.metrics.auth_failure("unknown_key");
            return unauthenticated("the API key is not valid (unknown or revoked)");
        };
        Principal {
            key_id: Some(record.id),
            role: record.role,
            collections: record.collections,
            limits: record.limits,
        }
    };
    let needed = match route.access {
        Access::Open | Access::Metrics | Access::Read | Access::ServerRead => Role::Read,
        Access::Write => Role::Write,
        Access::Admin | Access::ServerAdmin => Role::Admin,
    };
    if principal.role < needed {
        state.metrics.auth_failure("role");
        return ApiError::new(
            ErrorCode::PermissionDenied,
            format!(
                "{} {path} needs the {} role; this key has {}",
                route.method,
                needed.as_str(),
                principal.role.as_str()
            ),
        )
        .into_response();
    }
    let server_wide = matches!(route.access, Access::ServerAdmin | Access::ServerRead);
    if server_wide && principal.collections.is_some() {
        state.metrics.auth_failure("scope");
        return ApiError::new(
            ErrorCode::PermissionDenied,
            format!(
                "{} {path} covers the whole server; this key is limited to some collections",
                route.method
            ),
        )
        .into_response();
    }
    let (mut parts, body) = req.into_parts();
    if route.names_collection() {
        let params = Path::<HashMap<String, String>>::from_request_parts(&mut parts, &state).await;
        let name = params.ok().and_then(|Path(p)| p.get("name").cloned());
        // An undecodable name is refused by the handler's own check; only a name the key does
        // not cover is refused here.
        if let Some(name) = name
            && let Err(e) = principal.check_collection(&name)
        {
            state.metrics.auth_failure("scope");
            return e.into_response();
        }
    }
    let permit = match state.quotas.admit(&principal) {
        Ok(permit) => permit,
        Err(e) => return e.into_response(),
    };
    parts.extensions.insert(principal);
    let response = next.run(Request::from_parts(parts, body)).await;
    drop(permit);
    response
}

//! The route table: every route the server serves, with the access it requires. The server's
//! authorization layer reads it for each request (a route missing from it is refused), the
//! OpenAPI test compares it with the document, and the access-matrix test sends every route
//! with every kind of key, so a new route cannot be added without deciding who may call it.

use serde::{Deserialize, Serialize};

/// What a key needs to call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No key needed (liveness, readiness, the API document).
    Open,
    /// `/metrics`: open or any key, as the server's `auth.metrics` setting says.
    Metrics,
    /// Any role; on a `{name}` route, a scoped key must cover the collection.
    Read,
    /// `write` or `admin`; on a `{name}` route, a scoped key must cover the collection.
    Write,
    /// Any role, with no collection scope: figures over every collection.
    ServerRead,
    /// `admin`; on a `{name}` route (or a create naming one), a scoped key must cover it.
    Admin,
    /// `admin` with no collection scope: the server's own state (keys, dead letters).
    ServerAdmin,
}

/// A key's role: `read` searches and gets, `write` also changes documents, `admin` does
/// everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Read,
    Write,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Read, Role::Write, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }
}

/// One route: an HTTP method (upper case) and an axum path pattern.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    /// In the OpenAPI document. Not: the test-fault route (served only with `--test-faults`)
    /// and the routes that reach the documents named `delete` and `scroll` (documented as
    /// `{id}`).
    pub openapi: bool,
}

impl Route {
    /// Whether the route names a collection in its path.
    pub fn names_collection(&self) -> bool {
        self.path.contains("{name}")
    }
}

const fn r(method: &'static str, path: &'static str, access: Access) -> Route {
    Route {
        method,
        path,
        access,
        openapi: true,
    }
}

const fn alias(method: &'static str, path: &'static str, access: Access) -> Route {
    Route {
        method,
        path,
        access,
        openapi: false,
    }
}

use Access::*;

/// Every route. The README's "Routes and roles" table is this one.
pub const ROUTES: &[Route] = &[
    r("GET", "/health", Open),
    r("GET", "/ready", Open),
    r("GET", "/openapi.json", Open),
    r("GET", "/metrics", Metrics),
    r("GET", "/api/v1/collections", Read),
    r("POST", "/api/v1/collections", Admin),
    r("GET", "/api/v1/collections/{name}", Read),
    r("PATCH", "/api/v1/collections/{name}", Admin),
    r("DELETE", "/api/v1/collections/{name}", Admin),
    r("POST", "/api/v1/collections/{name}/documents", Write),
    r("POST", "/api/v1/collections/{name}/documents/delete", Write),
    // `delete` is also a document id: these two reach the document named `delete`.
    alias("GET", "/api/v1/collections/{name}/documents/delete", Read),
    alias(
        "DELETE",
        "/api/v1/collections/{name}/documents/delete",
        Write,
    ),
    r("POST", "/api/v1/collections/{name}/documents/scroll", Read),
    // `scroll` too.
    alias("GET", "/api/v1/collections/{name}/documents/scroll", Read),
    alias(
        "DELETE",
        "/api/v1/collections/{name}/documents/scroll",
        Write,
    ),
    r("GET", "/api/v1/collections/{name}/documents/{id}", Read),
    r("DELETE", "/api/v1/collections/{name}/documents/{id}", Write),
    r("POST", "/api/v1/collections/{name}/search", Read),
    r("POST", "/api/v1/collections/{name}/search/batch", Read),
    r("POST", "/api/v1/collections/{name}/count", Read),
    r("POST", "/api/v1/collections/{name}/indexes", Admin),
    r("GET", "/api/v1/collections/{name}/export", Read),
    r("GET", "/api/v1/collections/{name}/tier", Read),
    r("POST", "/api/v1/collections/{name}/tier", Admin),
    r("GET", "/api/v1/tiers", ServerRead),
    r("GET", "/api/v1/admin/dlq", ServerAdmin),
    r("POST", "/api/v1/admin/dlq/retry", ServerAdmin),
    r("GET", "/api/v1/admin/keys", ServerAdmin),
    r("POST", "/api/v1/admin/keys", ServerAdmin),
    r("DELETE", "/api/v1/admin/keys/{key_id}", ServerAdmin),
    alias("POST", "/api/v1/admin/test-faults", ServerAdmin),
];

/// The table entry for a request's method and matched path pattern.
pub fn route(method: &str, path: &str) -> Option<&'static Route> {
    ROUTES
        .iter()
        .find(|r| r.path == path && r.method.eq_ignore_ascii_case(method))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_method_and_path_appears_once() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path == b.path),
                    "{} {} twice",
                    a.method,
                    a.path
                );
            }
        }
    }
}

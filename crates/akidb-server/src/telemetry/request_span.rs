//! Middleware: every request runs in an `http.request` span (the root of its trace, or a child
//! of the client's span when it sends a W3C `traceparent`), named by its route template as
//! OpenTelemetry's HTTP conventions ask (`POST /api/v1/collections/{name}/search`), with the
//! status recorded when the answer is ready. Probes and scrapes (`/health`, `/ready`,
//! `/metrics`) are not traced: they would be most of the traces and tell nothing.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry_http::HeaderExtractor;
use tracing::Instrument;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

const UNTRACED: [&str; 3] = ["/health", "/ready", "/metrics"];

pub async fn trace(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    if UNTRACED.contains(&route.as_str()) {
        return next.run(req).await;
    }
    let method = crate::metrics::method_label(req.method());
    let span = tracing::info_span!(
        "http.request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = method,
        http.route = %route,
        http.response.status_code = Empty,
    );
    let parent = opentelemetry::global::get_text_map_propagator(|p| {
        p.extract(&HeaderExtractor(req.headers()))
    });
    // Fails only when no trace layer is installed: then there is nothing to join.
    let _ = span.set_parent(parent);
    let response = next.run(req).instrument(span.clone()).await;
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    response
}

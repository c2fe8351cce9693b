//! Metrics, all through one library (prometheus-client) and one registry: per-route request
//! counts, latency histograms, errors by code and requests in flight (this file), the
//! engine's figures (`engine`) and the process's (`process`), both read at scrape time.
//!
//! `GET /metrics` answers in the format the scraper asks for ([`Format::negotiate`]):
//! OpenMetrics 1.0 when its `Accept` names `application/openmetrics-text` (Prometheus does by
//! default), else the Prometheus text format 0.0.4. Both come from the same registry.

mod engine;
mod process;

use std::sync::Arc;
use std::time::Instant;

use akidb_api::ErrorCode;
use akidb_engine::Engine;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::routes::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

/// The stable code of an error answer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    pub code: &'static str,
}

/// One label, `reason`, whose values are fixed strings in the code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram>,
    auth_failures: Family<ReasonLabel, Counter>,
    quota_refusals: Family<ReasonLabel, Counter>,
    /// Connections closed or refused by the listener's bounds.
    connections_refused: Family<ReasonLabel, Counter>,
    connections_open: prometheus_client::metrics::gauge::Gauge,
    /// Searches stopped at their deadline or when their client went away.
    searches_stopped: Family<ReasonLabel, Counter>,
    errors: Family<CodeLabel, Counter>,
    in_flight: Gauge,
}

/// The exposition formats `GET /metrics` serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The Prometheus text format, version 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when the `Accept` header names it (Prometheus sends
    /// `application/openmetrics-text;version=1.0.0,...;q=0.5,text/plain;version=0.0.4;q=0.4,...`),
    /// else the Prometheus text format.
    pub fn negotiate(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

impl Metrics {
    /// The server's metrics; `engine` is read at each scrape.
    pub fn new(engine: Engine) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "akidb_http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        let latency = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            // 50 µs .. ~26 s
            Histogram::new(exponential_buckets(0.000_05, 2.0, 20))
        });
        registry.register(
            "akidb_http_request_duration_seconds",
            "HTTP request latency by route and status",
            latency.clone(),
        );
        let auth_failures = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "akidb_auth_failures",
            "Requests refused by authentication or authorization (unknown_key, role, scope)",
            auth_failures.clone(),
        );
        let quota_refusals = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "akidb_quota_refusals",
            "Requests refused by a quota (requests_per_second, key_in_flight, server_in_flight, collections, vectors, bytes, body_memory)",
            quota_refusals.clone(),
        );
        let connections_refused = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "akidb_connections_refused",
            "Connections refused or closed by the listener's bounds (max_connections, tls_handshake)",
            connections_refused.clone(),
        );
        let connections_open = prometheus_client::metrics::gauge::Gauge::default();
        registry.register(
            "akidb_connections_open",
            "Client connections open now",
            connections_open.clone(),
        );
        let searches_stopped = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "akidb_searches_stopped",
            "Searches stopped before the end (deadline, client_gone)",
            searches_stopped.clone(),
        );
        let errors = Family::<CodeLabel, Counter>::default();
        registry.register(
            "akidb_http_errors",
            "Error answers by their stable code (the body's error.code)",
            errors.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "akidb_http_requests_in_flight",
            "Requests being served now (bounded by the quota's max_in_flight; beyond it, 429)",
            in_flight.clone(),
        );
        registry.register(
            "akidb_build",
            "The server's version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register_collector(Box::new(engine::EngineCollector { engine }));
        registry.register_collector(Box::new(process::ProcessCollector));
        Metrics {
            registry,
            requests,
            latency,
            auth_failures,
            quota_refusals,
            connections_refused,
            connections_open,
            searches_stopped,
            errors,
            in_flight,
        }
    }

    pub fn auth_failure(&self, reason: &'static str) {
        self.auth_failures
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    pub fn quota_refusal(&self, reason: &'static str) {
        self.quota_refusals
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    pub fn connection_refused(&self, reason: &'static str) {
        self.connections_refused
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    pub fn connections_open(&self) -> &prometheus_client::metrics::gauge::Gauge {
        &self.connections_open
    }

    pub fn search_stopped(&self, reason: &'static str) {
        self.searches_stopped
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    pub fn observe(&self, labels: RequestLabels, seconds: f64) {
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&labels).observe(seconds);
    }

    /// The exposition of every metric in `format`.
    pub fn render(&self, format: Format) -> String {
        let mut out = String::new();
        match format {
            Format::Prometheus => {
                prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            }
            Format::OpenMetrics => {
                prometheus_client::encoding::text::encode(&mut out, &self.registry)
            }
        }
        .expect("writing to a String cannot fail");
        out
    }
}

/// A request's method as a label: the standard ones by name, any other as `unmatched`, so that
/// made-up methods (each answered 405) cannot add label values without bound.
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "unmatched",
    }
}

/// Middleware: counts and times every request under its route template (not its raw path, so
/// that collection names do not explode the label set).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let in_flight = InFlight::enter(&state.metrics.in_flight);
    let method = method_label(req.method()).to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(req).await;
    drop(in_flight);
    if let Some(code) = response.extensions().get::<ErrorCode>() {
        state
            .metrics
            .errors
            .get_or_create(&CodeLabel {
                code: code.as_str(),
            })
            .inc();
    }
    let labels = RequestLabels {
        method,
        route,
        status: response.status().as_u16(),
    };
    state
        .metrics
        .observe(labels, started.elapsed().as_secs_f64());
    response
}

/// A request counted in flight until dropped (also when its client goes away mid-way).
struct InFlight<'a>(&'a Gauge);

impl<'a> InFlight<'a> {
    fn enter(gauge: &'a Gauge) -> InFlight<'a> {
        gauge.inc();
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

pub type SharedMetrics = Arc<Metrics>;

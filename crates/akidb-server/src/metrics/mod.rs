//! Prometheus metrics: per-route request counts and latency histograms, and engine figures
//! (collections, documents, WAL appends, fsyncs and bytes) read at scrape time.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use akidb_engine::Engine;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::routes::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
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
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
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
        Metrics {
            registry,
            requests,
            latency,
            auth_failures,
            quota_refusals,
            connections_refused,
            connections_open,
            searches_stopped,
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

    /// The Prometheus text exposition: registered metrics plus engine figures.
    pub fn render(&self, engine: &Engine) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode_registry(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        let t = engine.catalog_totals();
        let (ready, failed, docs, pending, ram, unflushed) = (
            t.ready,
            t.unavailable,
            t.documents,
            t.index_pending,
            t.bytes_in_ram,
            t.unflushed,
        );
        let wal = engine.wal_stats();
        let mut put = |name: &str, kind: &str, help: &str, value: String| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        };
        put(
            "akidb_collections",
            "gauge",
            "Collections that serve",
            ready.to_string(),
        );
        put(
            "akidb_collections_unavailable",
            "gauge",
            "Collections that failed to open",
            failed.to_string(),
        );
        put(
            "akidb_documents",
            "gauge",
            "Live documents in all collections",
            docs.to_string(),
        );
        put(
            "akidb_index_pending_vectors",
            "gauge",
            "Vectors written but not yet in an HNSW graph",
            pending.to_string(),
        );
        put(
            "akidb_unflushed_operations",
            "gauge",
            "Documents and deletes only in the WAL so far",
            unflushed.to_string(),
        );
        put(
            "akidb_collection_ram_bytes",
            "gauge",
            "Bytes held in RAM by collections",
            ram.to_string(),
        );
        put(
            "akidb_collections_closed",
            "gauge",
            "Cold collections closed to their catalog entry (no RAM, no file descriptor)",
            t.closed.to_string(),
        );
        put(
            "akidb_quarantined_collection_dirs",
            "gauge",
            "Local collection directories the object store does not know, set aside at start",
            engine.quarantined().to_string(),
        );
        put(
            "akidb_wal_open_files",
            "gauge",
            "WAL files open now (bounded by max_open_files)",
            engine.file_pool().open_files().to_string(),
        );
        put(
            "akidb_wal_open_files_limit",
            "gauge",
            "max_open_files: WAL files open at once, at most",
            engine.file_pool().limit().to_string(),
        );
        put(
            "akidb_wal_file_evictions_total",
            "counter",
            "WAL files closed to stay under max_open_files",
            engine
                .file_pool()
                .evictions
                .load(Ordering::Relaxed)
                .to_string(),
        );
        put(
            "akidb_wal_disk_full_total",
            "counter",
            "WAL appends refused because the disk was full (cut back out of the log)",
            wal.disk_full.load(Ordering::Relaxed).to_string(),
        );
        put(
            "akidb_wal_appends_total",
            "counter",
            "WAL records appended",
            wal.appends.load(Ordering::Relaxed).to_string(),
        );
        put(
            "akidb_wal_fsyncs_total",
            "counter",
            "WAL fsyncs (group commit shares them)",
            wal.fsyncs.load(Ordering::Relaxed).to_string(),
        );
        put(
            "akidb_wal_bytes_total",
            "counter",
            "WAL bytes appended",
            wal.bytes.load(Ordering::Relaxed).to_string(),
        );
        let up = &engine.uploader().stats;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed).to_string();
        put(
            "akidb_uploads_total",
            "counter",
            "Objects uploaded to the object store",
            load(&up.uploads),
        );
        put(
            "akidb_upload_bytes_total",
            "counter",
            "Bytes uploaded to the object store",
            load(&up.bytes),
        );
        put(
            "akidb_upload_seconds_total",
            "counter",
            "Time spent in uploads (divide by akidb_uploads_total for the mean)",
            format!(
                "{:.6}",
                up.upload_micros.load(Ordering::Relaxed) as f64 / 1e6
            ),
        );
        put(
            "akidb_object_deletes_total",
            "counter",
            "Objects deleted from the object store",
            load(&up.deletes),
        );
        put(
            "akidb_object_reads_total",
            "counter",
            "Objects read (gets and heads) from the object store",
            load(&up.reads),
        );
        put(
            "akidb_object_gets_total",
            "counter",
            "GET requests to the object store, whole and ranged (each range one request)",
            load(&up.gets),
        );
        put(
            "akidb_object_get_bytes_total",
            "counter",
            "Bytes the object store's GETs returned",
            load(&up.get_bytes),
        );
        let blocks = engine.block_cache();
        put(
            "akidb_block_cache_hits_total",
            "counter",
            "Ranges of partitioned bases a cold query found in the block cache",
            load(&blocks.hits),
        );
        put(
            "akidb_block_cache_misses_total",
            "counter",
            "Ranges of partitioned bases a cold query fetched from the object store",
            load(&blocks.misses),
        );
        put(
            "akidb_block_cache_evictions_total",
            "counter",
            "Blocks dropped from the block cache to stay within its disk budget",
            load(&blocks.evictions),
        );
        put(
            "akidb_block_cache_bytes",
            "gauge",
            "Bytes of local disk the block cache holds",
            blocks.bytes().to_string(),
        );
        put(
            "akidb_object_lists_total",
            "counter",
            "Listings of the object store",
            load(&up.lists),
        );
        put(
            "akidb_upload_multipart_total",
            "counter",
            "Uploads sent as multipart uploads",
            load(&up.multipart_uploads),
        );
        put(
            "akidb_upload_retries_total",
            "counter",
            "Upload attempts beyond the first",
            load(&up.retries),
        );
        put(
            "akidb_upload_failures_transient_total",
            "counter",
            "Uploads that exhausted their retries on transient errors",
            load(&up.failures_transient),
        );
        put(
            "akidb_upload_failures_permanent_total",
            "counter",
            "Uploads that failed permanently (dead-lettered)",
            load(&up.failures_permanent),
        );
        put(
            "akidb_upload_breaker_rejections_total",
            "counter",
            "Uploads not attempted because the circuit breaker was open",
            load(&up.breaker_rejections),
        );
        put(
            "akidb_upload_breaker_open",
            "gauge",
            "1 while the object-store circuit breaker is open",
            u8::from(engine.uploader().breaker_open()).to_string(),
        );
        put(
            "akidb_upload_breaker_opened_total",
            "counter",
            "Times the circuit breaker opened",
            engine.uploader().breaker_opened_total().to_string(),
        );
        put(
            "akidb_dlq_entries",
            "gauge",
            "Dead-lettered flushes waiting for a re-drive",
            engine.dead_letters().len().to_string(),
        );
        let labeled =
            |out: &mut String, name: &str, kind: &str, help: &str, rows: Vec<(String, String)>| {
                out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
                for (labels, value) in rows {
                    out.push_str(&format!("{name}{{{labels}}} {value}\n"));
                }
            };
        let totals = engine.tier_totals();
        let per_tier = |f: &dyn Fn(&akidb_engine::TierTotals) -> u64| {
            totals
                .iter()
                .map(|(t, v)| (format!("tier=\"{t}\""), f(v).to_string()))
                .collect::<Vec<_>>()
        };
        labeled(
            &mut out,
            "akidb_tier_collections",
            "gauge",
            "Collections per tier",
            per_tier(&|t| t.collections as u64),
        );
        labeled(
            &mut out,
            "akidb_tier_ram_bytes",
            "gauge",
            "Bytes in RAM per tier",
            per_tier(&|t| t.bytes_in_ram),
        );
        labeled(
            &mut out,
            "akidb_tier_disk_bytes",
            "gauge",
            "Bytes on local disk (object copies and WAL) per tier",
            per_tier(&|t| t.bytes_on_disk),
        );
        labeled(
            &mut out,
            "akidb_tier_object_store_bytes",
            "gauge",
            "Bytes in the object store per tier",
            per_tier(&|t| t.bytes_in_object_store),
        );
        let moves = engine.tier_moves().moves;
        let move_rows = |f: &dyn Fn(u64, f64) -> String| {
            moves
                .iter()
                .map(|(from, to, n, secs)| (format!("from=\"{from}\",to=\"{to}\""), f(*n, *secs)))
                .collect::<Vec<_>>()
        };
        labeled(
            &mut out,
            "akidb_tier_moves_total",
            "counter",
            "Tier moves done",
            move_rows(&|n, _| n.to_string()),
        );
        labeled(
            &mut out,
            "akidb_tier_move_seconds_total",
            "counter",
            "Time spent in tier moves (divide by akidb_tier_moves_total for the mean)",
            move_rows(&|_, s| format!("{s:.6}")),
        );
        out.push_str("# EOF\n");
        out
    }
}

/// Middleware: counts and times every request under its route template (not its raw path, so
/// that collection names do not explode the label set).
/// A request's method as a label: the standard ones by name, any other as `unmatched`, so that
/// made-up methods (each answered 405) cannot add label values without bound.
fn method_label(method: &axum::http::Method) -> &'static str {
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

pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method()).to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(req).await;
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

pub type SharedMetrics = Arc<Metrics>;

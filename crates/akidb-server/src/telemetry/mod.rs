//! Logs and traces: one `tracing` subscriber, two outputs.
//!
//! - **Logs** go to stderr, filtered by `--log` (EnvFilter syntax): events only, so that the
//!   spans cost nothing unless traces are exported (measured: BENCHMARKS.md, "Traces").
//! - **Traces** go over OTLP/HTTP (protobuf) to `--otlp-endpoint` when it is set, and nowhere
//!   otherwise. AkiDB's own spans (`akidb*` targets, INFO and up) become OpenTelemetry spans
//!   through `tracing-opentelemetry`; the SDK's batch processor queues them (2,048 at most:
//!   beyond that they are dropped, never waited for) and exports from its own thread every 5 s
//!   and at shutdown. A span tree: `http.request` ([`request_span`]) → the engine's operation
//!   (`search`, `upsert`, `tier.move`, `load`, `partial_read`, ...) → `object_store.<op>` (the
//!   one door, [`akidb_engine::upload`]), each with the collection, tier, bytes and retries it
//!   knows. Background work (flushes, tier moves the policy makes) starts traces of its own.
//!
//! Each output has its own filter, so `--log warn` does not silence traces and traces do not
//! make the log louder. Without an endpoint no output wants a span: its callsite is disabled and
//! costs a branch.

pub mod request_span;

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_subscriber::filter::FilterExt;
use tracing_subscriber::filter::{LevelFilter, Targets, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{DEFAULT_LOG, OtlpConfig};

/// Longest one export to the collector may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The installed outputs; [`Telemetry::shutdown`] sends the spans still queued.
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

/// Installs the global subscriber: logs filtered by `log`, and traces to `otlp` if given.
pub fn init(log: &str, otlp: Option<&OtlpConfig>) -> anyhow::Result<Telemetry> {
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(
            EnvFilter::try_new(log)
                .unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG))
                .and(filter_fn(|meta| meta.is_event())),
        );
    let provider = otlp.map(tracer_provider).transpose()?;
    let traces = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("akidb"))
            .with_filter(Targets::new().with_target("akidb", LevelFilter::INFO))
    });
    tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init()?;
    if let Some(c) = otlp {
        // A `traceparent` header from a client joins its trace.
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        tracing::info!(endpoint = %c.endpoint, sample_ratio = c.sample_ratio, "exporting traces over OTLP");
    }
    Ok(Telemetry { traces: provider })
}

fn tracer_provider(c: &OtlpConfig) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(&c.endpoint)
        .with_timeout(EXPORT_TIMEOUT)
        .build()?;
    let resource = Resource::builder()
        .with_service_name("akidb")
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            c.sample_ratio,
        ))))
        .with_resource(resource)
        .build())
}

impl Telemetry {
    /// Exports the spans still queued (waits for the collector up to the export timeout).
    pub fn shutdown(self) {
        if let Some(provider) = self.traces
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "sending the last traces failed");
        }
    }
}

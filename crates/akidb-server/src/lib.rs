//! The AkiDB server: configuration, HTTP routes, metrics, and the serve loop.

pub mod config;
pub mod limits;
pub mod metrics;
pub mod routes;

use std::sync::Arc;

use akidb_engine::Engine;
use anyhow::Context;

use crate::config::Config;
use crate::routes::{AppState, router};

/// Opens the engine, binds, serves until SIGINT/SIGTERM, then flushes and returns.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    tracing::info!(
        max_open_files = config.engine.max_open_files,
        max_blocking_threads = config.max_blocking_threads,
        min_free_disk_bytes = config.engine.min_free_disk_bytes,
        "limits"
    );
    let engine = Engine::open(config.engine.clone()).await.with_context(|| {
        format!(
            "opening data directory {}",
            config.engine.data_dir.display()
        )
    })?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let state = AppState {
        engine: engine.clone(),
        metrics: Arc::new(metrics::Metrics::new()),
    };
    let app = router(state, config.max_body_bytes);
    tracing::info!(
        %addr,
        data_dir = %config.engine.data_dir.display(),
        object_store = %engine.object_store_url(),
        startup_ms = started.elapsed().as_millis() as u64,
        "listening"
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("shutting down: flushing collections");
    engine.shutdown().await;
    tracing::info!("shutdown complete");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

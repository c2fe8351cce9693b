//! The AkiDB server: configuration, HTTP routes, metrics, and the serve loop.

pub mod auth;
pub mod config;
pub mod export;
pub mod import;
pub mod limits;
pub mod metrics;
pub mod quota;
pub mod remote;
pub mod routes;
pub mod serve;
pub mod telemetry;

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
    let keys = auth::KeyStore::open(
        &config.engine.data_dir,
        config.auth.keys.clone(),
        config.auth.admin_api_key.as_ref().map(|s| s.0.as_str()),
    )
    .context("loading API keys")?;
    check_exposure(&config, keys.is_empty())?;
    let tls = config.tls.clone().map(serve::tls::Tls::new).transpose()?;
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
    let metrics = Arc::new(metrics::Metrics::new(engine.clone()));
    let auth_on = !keys.is_empty();
    let state = AppState {
        engine: engine.clone(),
        metrics: metrics.clone(),
        auth: Arc::new(auth::Auth {
            keys,
            metrics_open: config.auth.metrics_open,
        }),
        quotas: Arc::new(quota::Quotas::new(config.quota, metrics.clone())),
        limits: Arc::new(routes::RequestLimits::new(
            &config.limits,
            config.max_body_bytes,
        )),
    };
    let app = router(state, config.max_body_bytes);
    let max_connections = config
        .limits
        .max_connections
        .unwrap_or(DEFAULT_MAX_CONNECTIONS);
    if let Some(tls) = &tls {
        tls.clone().watch();
    }
    tracing::info!(
        %addr,
        tls = tls.is_some(),
        auth = auth_on,
        max_connections,
        data_dir = %config.engine.data_dir.display(),
        object_store = %engine.object_store_url(),
        startup_ms = started.elapsed().as_millis() as u64,
        "listening"
    );
    let bounds = serve::listener::Bounds {
        max_connections,
        header_timeout: config.limits.header_timeout,
    };
    serve::listener::serve(listener, app, bounds, tls, metrics, shutdown_signal()).await;
    tracing::info!("shutting down: flushing collections");
    engine.shutdown().await;
    tracing::info!("shutdown complete");
    Ok(())
}

/// Connections at once when `max_connections` is not set (and the open-file limit does not
/// lower it: see [`limits::apply`]).
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// Refuses to serve a non-loopback address with no API key, unless told to (then warns).
fn check_exposure(config: &Config, no_keys: bool) -> anyhow::Result<()> {
    if !no_keys {
        return Ok(());
    }
    let loopback = match config.listen.parse::<std::net::SocketAddr>() {
        Ok(addr) => addr.ip().is_loopback(),
        // A host name: loopback only if it is localhost.
        Err(_) => config
            .listen
            .rsplit_once(':')
            .is_some_and(|(host, _)| host.eq_ignore_ascii_case("localhost")),
    };
    if loopback {
        return Ok(());
    }
    anyhow::ensure!(
        config.auth.insecure_no_auth,
        "refusing to listen on {} without an API key: anyone who reaches it could read, change \
         and delete every collection. Give an admin key (--admin-api-key-file, \
         AKIDB_ADMIN_API_KEY or [auth] keys), listen on 127.0.0.1, or pass --insecure-no-auth",
        config.listen
    );
    tracing::warn!(
        listen = %config.listen,
        "serving WITHOUT authentication on a non-loopback address (--insecure-no-auth): anyone who reaches it can read, change and delete every collection"
    );
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

//! The accept loop: each connection is served by hyper (HTTP/1.1), over TLS when configured,
//! within the listener's bounds:
//!
//! - at most `max_connections` open at once; a connection beyond them is closed at once and
//!   counted (`akidb_connections_refused{reason="max_connections"}`);
//! - a TLS handshake and each request's headers must arrive within `header_timeout`, which is
//!   also how long a kept-alive connection may sit idle between requests (hyper's header read
//!   timer starts whenever the connection waits for a request head);
//! - request heads are read into a buffer of at most 64 KiB, so a slow or unfinished header
//!   holds little memory.
//!
//! On shutdown the loop stops accepting and waits (up to 30 s) for requests in flight; each
//! connection then closes after its current response.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::tls::Tls;
use crate::metrics::Metrics;

/// Refused connections are logged at most this often (each is counted).
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Largest buffer a connection reads a request head (and body chunks) into.
const MAX_BUF: usize = 64 * 1024;

pub struct Bounds {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

pub async fn serve(
    listener: TcpListener,
    app: Router,
    bounds: Bounds,
    tls: Option<Arc<Tls>>,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    let open = Arc::new(Semaphore::new(bounds.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(bounds.header_timeout)
        .max_buf_size(MAX_BUF);
    let http = Arc::new(http);
    tokio::pin!(shutdown);
    let mut last_warning = None;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(s) => s,
                Err(e) => {
                    // Out of file descriptors, most likely: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            metrics.connection_refused("max_connections");
            if last_warning.is_none_or(|t: std::time::Instant| t.elapsed() >= WARN_EVERY) {
                last_warning = Some(std::time::Instant::now());
                tracing::warn!(%peer, max_connections = bounds.max_connections,
                    "connections refused: max_connections are open (counted in akidb_connections_refused_total; logged at most every 10 s)");
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let http = http.clone();
        let tls = tls.clone();
        let metrics = metrics.clone();
        let header_timeout = bounds.header_timeout;
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            metrics.connections_open().inc();
            match tls {
                None => {
                    let conn = http.serve_connection(TokioIo::new(stream), service);
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
                Some(tls) => {
                    let handshake = tls.acceptor().accept(stream);
                    match tokio::time::timeout(header_timeout, handshake).await {
                        Ok(Ok(stream)) => {
                            let conn = http.serve_connection(TokioIo::new(stream), service);
                            if let Err(e) = watcher.watch(conn).await {
                                tracing::debug!(%peer, error = %e, "connection ended with an error");
                            }
                        }
                        Ok(Err(e)) => {
                            metrics.connection_refused("tls_handshake");
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        }
                        Err(_) => {
                            metrics.connection_refused("tls_handshake");
                            tracing::debug!(%peer, "TLS handshake timed out");
                        }
                    }
                }
            }
            metrics.connections_open().dec();
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(30), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open 30 s after shutdown began; closing them");
    }
}

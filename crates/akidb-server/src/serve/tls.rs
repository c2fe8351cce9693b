//! TLS for the listener: the certificate and key (PEM) are loaded through rustls at start, and
//! loaded again on SIGHUP or when either file changes (checked every `reload_interval`). A new
//! pair that fails to load is logged and the old one kept; connections already open keep the
//! session they made, and new ones get the new certificate.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context;
use parking_lot::RwLock;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsConfig;

/// The certificate in force, swapped on reload.
pub struct Tls {
    config: TlsConfig,
    current: RwLock<Arc<ServerConfig>>,
}

fn load(config: &TlsConfig) -> anyhow::Result<Arc<ServerConfig>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&config.cert)
        .with_context(|| format!("reading tls_cert {}", config.cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing tls_cert {}", config.cert.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "tls_cert {} holds no certificate",
        config.cert.display()
    );
    let key = PrivateKeyDer::from_pem_file(&config.key)
        .with_context(|| format!("reading tls_key {}", config.key.display()))?;
    let mut server = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("tls_cert and tls_key do not make a usable pair")?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(server))
}

/// Modification times and sizes of both files, to notice a change.
fn stamp(config: &TlsConfig) -> Option<[(SystemTime, u64); 2]> {
    let one = |p: &Path| {
        let m = std::fs::metadata(p).ok()?;
        Some((m.modified().ok()?, m.len()))
    };
    Some([one(&config.cert)?, one(&config.key)?])
}

impl Tls {
    pub fn new(config: TlsConfig) -> anyhow::Result<Arc<Tls>> {
        let current = load(&config)?;
        Ok(Arc::new(Tls {
            config,
            current: RwLock::new(current),
        }))
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.read().clone())
    }

    /// Loads the files again; keeps the old pair if the new one does not load.
    pub fn reload(&self, why: &str) {
        match load(&self.config) {
            Ok(config) => {
                *self.current.write() = config;
                tracing::info!(why, cert = %self.config.cert.display(), "TLS certificate reloaded");
            }
            Err(e) => tracing::error!(
                why,
                error = format!("{e:#}"),
                "TLS certificate reload failed; the previous one stays in use"
            ),
        }
    }

    /// Reloads on SIGHUP and when the files change, until the process ends.
    pub fn watch(self: Arc<Self>) {
        tokio::spawn(async move {
            let mut hup = match tokio::signal::unix::signal(
                tokio::signal::unix::SignalKind::hangup(),
            ) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "no SIGHUP handler; TLS reloads on file change only");
                    None
                }
            };
            let mut seen = stamp(&self.config);
            let mut tick = tokio::time::interval(self.config.reload_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let signalled = tokio::select! {
                    Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
                    _ = tick.tick() => false,
                };
                let now = stamp(&self.config);
                if signalled {
                    self.reload("SIGHUP");
                } else if now.is_some() && now != seen {
                    self.reload("files changed");
                }
                seen = now;
            }
        });
    }
}

//! TLS on the listener, against the real binary, with certificates made in the test: the
//! handshake, plain HTTP refused on the TLS port, and a new certificate taken on SIGHUP and on
//! a file change without dropping an open connection.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::Server;
use rcgen::{CertificateParams, KeyPair};

/// A self-signed certificate for localhost and 127.0.0.1; (cert PEM, key PEM).
fn certificate(name: &str) -> (String, String) {
    let mut params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn write(dir: &Path, (cert, key): &(String, String)) {
    // Written beside and renamed, as a certificate manager does.
    std::fs::write(dir.join("cert.pem.tmp"), cert).unwrap();
    std::fs::write(dir.join("key.pem.tmp"), key).unwrap();
    std::fs::rename(dir.join("key.pem.tmp"), dir.join("key.pem")).unwrap();
    std::fs::rename(dir.join("cert.pem.tmp"), dir.join("cert.pem")).unwrap();
}

/// A client that trusts only `cert`.
fn trusting(cert: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(cert.as_bytes()).unwrap()])
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn start(dir: &Path, interval: &str) -> Server {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    Server::start(
        &dir.join("data"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--tls-reload-interval",
            interval,
        ],
    )
}

async fn health(client: &reqwest::Client, server: &Server) -> Result<u16, reqwest::Error> {
    let url = format!("https://{}/health", server.addr);
    Ok(client.get(url).send().await?.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_handshake_plain_http_refused_and_reload_on_sighup_and_file_change() {
    let dir = tempfile::tempdir().unwrap();
    let first = certificate("first");
    write(dir.path(), &first);
    // A long interval: only SIGHUP reloads in the first part.
    let server = start(dir.path(), "1h");
    let old_client = trusting(&first.0);
    assert_eq!(health(&old_client, &server).await.unwrap(), 200);

    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let r = plain
        .get(format!("http://{}/health", server.addr))
        .send()
        .await;
    assert!(r.is_err(), "plain HTTP was answered: {r:?}");

    // A new certificate, then SIGHUP: new connections get it; the open one keeps working.
    let second = certificate("second");
    write(dir.path(), &second);
    let hup = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let new_client = trusting(&second.0);
    let mut ok = false;
    for _ in 0..100 {
        if health(&new_client, &server).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "the new certificate was not served after SIGHUP");
    assert_eq!(
        health(&old_client, &server).await.unwrap(),
        200,
        "the connection made before the reload was dropped"
    );
    // A fresh client trusting only the first certificate now fails the handshake.
    assert!(health(&trusting(&first.0), &server).await.is_err());
    drop(server);

    // File change alone (no signal), with a short interval.
    write(dir.path(), &first);
    let server = start(dir.path(), "1s");
    assert_eq!(health(&trusting(&first.0), &server).await.unwrap(), 200);
    let third = certificate("third");
    write(dir.path(), &third);
    let mut ok = false;
    for _ in 0..100 {
        if health(&trusting(&third.0), &server).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "the changed files were not reloaded");

    // A broken pair is refused and the previous one kept.
    std::fs::write(dir.path().join("key.pem"), "not a key").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(health(&trusting(&third.0), &server).await.unwrap(), 200);
}

#[test]
fn a_missing_or_half_tls_configuration_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (status, log) = common::run_until_exit(dir.path(), &["--tls-cert", "/nonexistent.pem"]);
    assert!(status.is_some_and(|s| !s.success()), "{log}");
    assert!(log.contains("tls_cert and tls_key go together"), "{log}");
    let (status, log) = common::run_until_exit(
        dir.path(),
        &[
            "--tls-cert",
            "/nonexistent.pem",
            "--tls-key",
            "/nonexistent.key",
        ],
    );
    assert!(status.is_some_and(|s| !s.success()), "{log}");
    assert!(log.contains("reading tls_cert"), "{log}");
}

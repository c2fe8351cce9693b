//! Test support: the real S3-compatible servers the object-store and tier tests run against,
//! spawning `akidb`, and test data ([`read_fvecs`], [`read_ivecs`], [`recall_at`],
//! [`seeded_vector`], and [`Synth`]: seeded data of any size with exact ground truth), and
//! [`filters`]: random metadata and filters with a brute-force oracle of the filter language.
//!
//! - [`Moto::start`] starts moto's standalone server on a free loopback port (one per call; it
//!   keeps data in memory and checks no signatures). `scripts/test` installs it and sets
//!   `AKIDB_MOTO_SERVER`; without it, tests that need it fail and say why (never skip).
//! - [`seaweedfs`] returns the SeaweedFS server `scripts/test` started for the whole run
//!   (`AKIDB_SEAWEEDFS_ENDPOINT`, `AKIDB_SEAWEEDFS_BUCKET`, credentials in
//!   `AKIDB_SEAWEEDFS_ACCESS_KEY_ID` / `AKIDB_SEAWEEDFS_SECRET_ACCESS_KEY`): a production
//!   object store that checks signatures and persists to disk. `None` when it is not running
//!   (`scripts/test` always runs it; a bare `cargo test` does not).
//!
//! Each test takes its own prefix ([`unique_prefix`]) so that tests sharing a server never see
//! each other's objects.

mod data;
pub mod filters;
pub mod synth;

pub use data::{read_fvecs, read_ivecs, recall_at, seeded_vector};
pub use synth::Synth;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// Where an S3-compatible server is and how to sign for it.
#[derive(Debug, Clone)]
pub struct S3Endpoint {
    /// `moto` or `seaweedfs`.
    pub kind: &'static str,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl S3Endpoint {
    /// `s3://BUCKET/PREFIX`
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.bucket)
    }

    /// The same settings as `akidb serve` flags.
    pub fn serve_args(&self, prefix: &str) -> Vec<String> {
        vec![
            "--object-store".into(),
            self.url(prefix),
            "--s3-endpoint".into(),
            self.endpoint.clone(),
            "--s3-region".into(),
            "us-east-1".into(),
            "--s3-access-key-id".into(),
            self.access_key_id.clone(),
            "--s3-secret-access-key".into(),
            self.secret_access_key.clone(),
        ]
    }
}

/// Every real S3-compatible server of this run: a fresh moto (kept alive by the returned
/// guard) and, when `scripts/test` started it, SeaweedFS.
pub fn s3_servers(bucket: &str) -> (Moto, Vec<S3Endpoint>) {
    let moto = Moto::start(bucket);
    let mut all = vec![moto.s3.clone()];
    all.extend(seaweedfs());
    (moto, all)
}

/// A moto server, killed on drop.
pub struct Moto {
    child: Child,
    pub s3: S3Endpoint,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_binary() -> String {
    if let Ok(path) = std::env::var("AKIDB_MOTO_SERVER") {
        return path;
    }
    let on_path = Command::new("moto_server")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if matches!(on_path, Ok(s) if s.success()) {
        return "moto_server".into();
    }
    panic!(
        "no S3-compatible test server: run the tests with scripts/test (it installs moto into .venv-test/), \
         or set AKIDB_MOTO_SERVER to a moto_server binary"
    );
}

impl Moto {
    /// Starts moto on a free loopback port and creates `bucket`; waits until it answers.
    pub fn start(bucket: &str) -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let child = Command::new(moto_binary())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let moto = Moto {
            child,
            s3: S3Endpoint {
                kind: "moto",
                endpoint: format!("http://127.0.0.1:{port}"),
                bucket: bucket.to_string(),
                access_key_id: "akidb-test".into(),
                secret_access_key: "akidb-test-secret".into(),
            },
        };
        // A deadline-bounded poll while the process starts (not synchronisation of our own
        // code): moto checks no signatures, so a plain PUT creates the bucket.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let req = format!(
                    "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let mut resp = String::new();
                if s.write_all(req.as_bytes()).is_ok()
                    && s.read_to_string(&mut resp).is_ok()
                    && resp.starts_with("HTTP/1.1 200")
                {
                    return moto;
                }
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not come up on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The SeaweedFS server of this test run, if `scripts/test` started one.
pub fn seaweedfs() -> Option<S3Endpoint> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    Some(S3Endpoint {
        kind: "seaweedfs",
        endpoint: var("AKIDB_SEAWEEDFS_ENDPOINT")?,
        bucket: var("AKIDB_SEAWEEDFS_BUCKET")?,
        access_key_id: var("AKIDB_SEAWEEDFS_ACCESS_KEY_ID")?,
        secret_access_key: var("AKIDB_SEAWEEDFS_SECRET_ACCESS_KEY")?,
    })
}

/// A prefix no other test (in this or an earlier run against a persistent server) uses.
pub fn unique_prefix(name: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{name}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Spawns `bin serve --listen 127.0.0.1:0 --data-dir DIR <extra>` (with `AKIDB_LOG=log`) and
/// waits up to 60 s for its `listening addr=` line; returns the child and its address. Its
/// stderr keeps being drained (echoed with `[akidb]` when `echo` is set), so the server never
/// blocks on a full pipe. On failure the child is killed and the error says why.
pub fn spawn_akidb(
    bin: &std::path::Path,
    data_dir: &std::path::Path,
    extra: &[&str],
    log: &str,
    echo: bool,
) -> Result<(Child, String), String> {
    spawn_akidb_with_log(bin, data_dir, extra, log, echo, None, |_| {})
}

/// [`spawn_akidb`] with the open-file limit (soft and hard) set to `nofile` first, as
/// `ulimit -n` would (through `sh`, which then `exec`s the server: the child is the server), and
/// every line of the server's log handed to `on_line` as well.
pub fn spawn_akidb_with_log(
    bin: &std::path::Path,
    data_dir: &std::path::Path,
    extra: &[&str],
    log: &str,
    echo: bool,
    nofile: Option<u64>,
    mut on_line: impl FnMut(String) + Send + 'static,
) -> Result<(Child, String), String> {
    use std::io::BufRead;
    let mut command = match nofile {
        Some(n) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                .arg(bin);
            c
        }
        None => Command::new(bin),
    };
    let mut child = command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .env("AKIDB_LOG", log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if echo {
                eprintln!("[akidb] {line}");
            }
            if line.contains("listening")
                && let Some(addr) = line
                    .split("addr=")
                    .nth(1)
                    .and_then(|s| s.split_whitespace().next())
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(addr.to_string());
            }
            on_line(line);
        }
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(addr) => Ok((child, addr)),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            Err("akidb did not log `listening addr=` within 60 s".into())
        }
    }
}

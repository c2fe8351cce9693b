//! Runs the real `akidb` binary for black-box tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

use serde_json::Value;

pub struct Server {
    child: Child,
    pub addr: String,
    pub url: String,
    pub data_dir: PathBuf,
}

impl Server {
    /// Starts `akidb serve` on a free loopback port and waits until it logs its address.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        Server::start_limited(data_dir, extra, None)
    }

    /// [`Server::start`] with the open-file limit set to `nofile` (soft and hard), as
    /// `ulimit -n` does.
    pub fn start_limited(data_dir: &Path, extra: &[&str], nofile: Option<u64>) -> Server {
        let bin = Path::new(env!("CARGO_BIN_EXE_akidb"));
        let echo = std::env::var_os("AKIDB_TEST_LOG").is_some();
        let (child, addr) =
            akidb_testkit::spawn_akidb_with_log(bin, data_dir, extra, "info", echo, nofile, |_| {})
                .unwrap_or_else(|e| panic!("{e}"));
        Server {
            child,
            url: format!("http://{addr}"),
            addr,
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// SIGKILL: no flush, no cleanup, like a power cut for the process.
    pub fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }

    /// SIGTERM and wait for a graceful exit.
    pub fn terminate(mut self) -> ExitStatus {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().expect("wait")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// The shared data sets, beside the repository (`../shared/data` from the repo root).
pub fn data_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/debian-minilm-384");
    assert!(
        dir.join("base.fvecs").exists(),
        "data set missing: {} (it lives in ../shared/data beside the repository)",
        dir.display()
    );
    dir
}

/// The first `limit` rows of a texmex `.fvecs` file.
pub fn read_fvecs(path: &Path, limit: usize) -> Vec<Vec<f32>> {
    let (_, mut rows) = akidb_testkit::read_fvecs(path).unwrap_or_else(|e| panic!("{e}"));
    rows.truncate(limit);
    rows
}

/// A small JSON client for one server.
pub struct Api {
    pub http: reqwest::Client,
    pub url: String,
}

impl Api {
    pub fn new(server: &Server) -> Api {
        Api {
            http: client(),
            url: server.url.clone(),
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        let (status, v) = self.call(reqwest::Method::POST, path, Some(body)).await;
        assert!((200..300).contains(&status), "POST {path}: {status} {v}");
        v
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// Waits until the background indexer has caught up, so HNSW answers are comparable.
    pub async fn wait_indexed(&self, name: &str) {
        for _ in 0..600 {
            let (_, info) = self.get(&format!("/api/v1/collections/{name}")).await;
            if info["index_pending"] == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("indexing did not finish within 60 s");
    }
}

/// Resident set size of a process, in bytes (from /proc).
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/PID/status");
    kb * 1024
}

/// Runs `akidb serve` on `data_dir` expecting it to stop by itself (a refused start); returns
/// its exit status (`None` if it was still running after 30 s: it was killed) and everything it
/// wrote to stderr.
pub fn run_until_exit(data_dir: &Path, extra: &[&str]) -> (Option<ExitStatus>, String) {
    use std::io::Read;
    let mut child = Command::new(env!("CARGO_BIN_EXE_akidb"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .env("AKIDB_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run akidb");
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status, reader.join().unwrap())
}

/// Open file descriptors of a process.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Threads of a process.
pub fn thread_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count()
}

/// A size-limited tmpfs mounted on a fresh directory, unmounted on drop. Needs root (the test
/// machines and CI run as root); panics with the reason otherwise.
pub struct Tmpfs {
    pub dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size_mib: u64) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mounting a {size_mib} MiB tmpfs failed (the disk-full tests need root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the filesystem at `dir` with a file, leaving about `leave` bytes free; returns its path.
pub fn fill(dir: &Path, leave: u64) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0xabu8; 1 << 20];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
    let len = std::fs::metadata(&path).unwrap().len();
    f.set_len(len.saturating_sub(leave)).unwrap();
    path
}

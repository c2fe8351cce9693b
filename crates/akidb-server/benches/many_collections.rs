//! Many collections: what 100,000 mostly cold collections cost, against the real `akidb` binary
//! on the file store.
//!
//! 1. An empty server's RSS, descriptors and threads (the baseline).
//! 2. Creation: N collections of D vectors of 384 dimensions, each created, filled with one
//!    upsert and demoted to cold (so it is closed to its catalog entry), `--concurrency` at once.
//! 3. All cold: RSS (total and per collection above the baseline), descriptors, threads; the time
//!    of `GET /api/v1/collections`, `GET /api/v1/tiers` and `GET /metrics` at that count.
//! 4. Restart (SIGTERM, then a new process): time to `listening` and to a first answered list;
//!    RSS, descriptors and threads then and 15 s later (once the start's threads have exited).
//! 5. First queries on random cold collections (each one opened, fetched, loaded, searched):
//!    p50 and p99.
//!
//! Run: `cargo bench -p akidb-server --bench many_collections -- --collections 100000`
//!
//! | flag | default | what |
//! |---|---|---|
//! | `--collections N` | 100000 | collections created |
//! | `--docs N` | 100 | vectors per collection |
//! | `--dim N` | 384 | dimension |
//! | `--concurrency N` | 16 | requests in flight while creating |
//! | `--queries N` | 200 | first queries on random cold collections |
//! | `--dir DIR` | a temporary directory | data directory (kept when given) |
//!
//! Unknown arguments (such as the `--bench` cargo passes) are ignored.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

struct Options {
    collections: usize,
    docs: usize,
    dim: usize,
    concurrency: usize,
    queries: usize,
    dir: Option<PathBuf>,
}

fn options() -> Options {
    let mut o = Options {
        collections: 100_000,
        docs: 100,
        dim: 384,
        concurrency: 16,
        queries: 200,
        dir: None,
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        let number = || {
            value
                .parse::<usize>()
                .unwrap_or_else(|_| panic!("{}: {value:?} is not a number", args[i]))
        };
        match args[i].as_str() {
            "--collections" => o.collections = number(),
            "--docs" => o.docs = number(),
            "--dim" => o.dim = number(),
            "--concurrency" => o.concurrency = number(),
            "--queries" => o.queries = number(),
            "--dir" => o.dir = Some(PathBuf::from(&value)),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(dir: &Path, extra: &[&str]) -> Server {
        let bin = Path::new(env!("CARGO_BIN_EXE_akidb"));
        let (child, addr) =
            akidb_testkit::spawn_akidb(bin, dir, extra, "warn,akidb_server=info", false)
                .unwrap_or_else(|e| panic!("{e}"));
        Server {
            child,
            url: format!("http://{addr}"),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn terminate(mut self) {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn proc_status(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// (RSS bytes, open descriptors, threads)
fn footprint(pid: u32) -> (u64, usize, u64) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    (
        proc_status(pid, "VmRSS:") * 1024,
        fds,
        proc_status(pid, "Threads:"),
    )
}

fn mib(b: u64) -> f64 {
    b as f64 / 1048576.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http.request(method, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn timed_get(http: &reqwest::Client, url: String) -> (Duration, usize) {
    let started = Instant::now();
    let resp = http.get(url).send().await.unwrap();
    assert!(resp.status().is_success());
    let bytes = resp.bytes().await.unwrap().len();
    (started.elapsed(), bytes)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let o = options();
    let tmp = tempfile::tempdir().unwrap();
    let data = o.dir.clone().unwrap_or_else(|| tmp.path().join("data"));
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let args = [
        "--tiering",
        "false",
        "--flush-idle-secs",
        "3600",
        "--flush-max-age-secs",
        "3600",
    ];

    let baseline = {
        let empty = tmp.path().join("empty");
        let server = Server::start(&empty, &args);
        let _ = call(
            &http,
            reqwest::Method::GET,
            format!("{}/api/v1/collections", server.url),
            None,
        )
        .await;
        footprint(server.pid())
    };
    println!(
        "baseline (empty server): RSS {:.1} MiB, {} descriptors, {} threads",
        mib(baseline.0),
        baseline.1,
        baseline.2
    );

    let server = Server::start(&data, &args);
    let url = Arc::new(server.url.clone());
    let started = Instant::now();
    let per_collection: Vec<Duration> = futures::stream::iter(0..o.collections)
        .map(|i| {
            let (http, url) = (http.clone(), url.clone());
            let (docs, dim) = (o.docs, o.dim);
            async move {
                let t = Instant::now();
                let name = format!("t{i:06}");
                let (s, v) = call(&http, reqwest::Method::POST, format!("{url}/api/v1/collections"),
                    Some(json!({"name": name, "dimension": dim, "metric": "cosine"}))).await;
                assert_eq!(s, 201, "{v}");
                let batch: Vec<Value> = (0..docs)
                    .map(|j| json!({"id": format!("d{j}"), "vector": akidb_testkit::seeded_vector((i * docs + j) as u64, dim)}))
                    .collect();
                let (s, v) = call(&http, reqwest::Method::POST, format!("{url}/api/v1/collections/{name}/documents"),
                    Some(json!({"documents": batch}))).await;
                assert_eq!(s, 200, "{v}");
                let (s, v) = call(&http, reqwest::Method::POST, format!("{url}/api/v1/collections/{name}/tier"),
                    Some(json!({"action": "demote", "target": "cold"}))).await;
                assert_eq!(s, 200, "{v}");
                if (i + 1) % 10_000 == 0 {
                    eprintln!("  {} collections created", i + 1);
                }
                t.elapsed()
            }
        })
        .buffer_unordered(o.concurrency)
        .collect()
        .await;
    let creation = started.elapsed();
    let mut sorted = per_collection;
    sorted.sort();
    println!(
        "creation: {} collections x {} x {}-d in {:.1} s ({:.0} collections/s; create+upsert+demote p50 {:.1} ms, p99 {:.1} ms)",
        o.collections,
        o.docs,
        o.dim,
        creation.as_secs_f64(),
        o.collections as f64 / creation.as_secs_f64(),
        percentile(&sorted, 0.5).as_secs_f64() * 1e3,
        percentile(&sorted, 0.99).as_secs_f64() * 1e3,
    );

    let report_cold = |label: &str, pid: u32| {
        let (rss, fds, threads) = footprint(pid);
        println!(
            "{label}: RSS {:.1} MiB ({:.0} bytes per collection above the baseline), {fds} descriptors, {threads} threads",
            mib(rss),
            rss.saturating_sub(baseline.0) as f64 / o.collections as f64
        );
    };
    report_cold("all cold, after creation", server.pid());
    for (what, path) in [
        ("list", "/api/v1/collections"),
        ("tiers", "/api/v1/tiers"),
        ("metrics", "/metrics"),
    ] {
        let (t, bytes) = timed_get(&http, format!("{}{path}", server.url)).await;
        println!(
            "GET {path} ({what}): {:.1} ms, {bytes} bytes",
            t.as_secs_f64() * 1e3
        );
    }
    server.terminate();

    let restart = Instant::now();
    let server = Server::start(&data, &args);
    let listening = restart.elapsed();
    let (t, _) = timed_get(&http, format!("{}/api/v1/collections", server.url)).await;
    println!(
        "restart to serving: listening after {:.2} s, first list answered after {:.2} s",
        listening.as_secs_f64(),
        listening.as_secs_f64() + t.as_secs_f64()
    );
    report_cold("all cold, after the restart", server.pid());
    // The blocking threads of the start exit after 10 s idle (tokio's keep-alive).
    tokio::time::sleep(Duration::from_secs(15)).await;
    report_cold("all cold, 15 s after the restart", server.pid());

    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut latencies = Vec::new();
    for _ in 0..o.queries.min(o.collections) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let i = (seed % o.collections as u64) as usize;
        let q = akidb_testkit::seeded_vector((i * o.docs) as u64, o.dim);
        let t = Instant::now();
        let (s, v) = call(
            &http,
            reqwest::Method::POST,
            format!("{}/api/v1/collections/t{i:06}/search", server.url),
            Some(json!({"vector": q, "k": 10})),
        )
        .await;
        latencies.push(t.elapsed());
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["results"][0]["id"], "d0", "{v}");
    }
    latencies.sort();
    println!(
        "first query on a random cold collection ({} queries): p50 {:.1} ms, p99 {:.1} ms",
        latencies.len(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );
    report_cold("after the queries", server.pid());
}

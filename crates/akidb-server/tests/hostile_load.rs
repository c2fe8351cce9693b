//! Hostile clients all at once against the real binary, while a normal client keeps searching:
//! made-up methods, giant filters whose clients give up, concurrent huge bodies, large `k` at
//! high dimension, and 2,000 connections that send half a header and stall. The normal client's
//! p99 must stay under 50 ms, `/metrics` under 100 KB, and the server's peak RSS under
//! [`PEAK_RSS_BOUND`] (README, "Bounds").

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Server, client};
use serde_json::{Value, json};

/// The documented bound on the server's peak RSS in this run (`--max-body-memory 96MiB`;
/// 645 MiB measured).
const PEAK_RSS_BOUND: u64 = 1 << 30;

const DIM: usize = 384;

fn vector(seed: u64, dim: usize) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 2000) as f32 / 1000.0 - 1.0
        })
        .collect()
}

fn upsert_body(first: u64, n: u64, dim: usize) -> String {
    let docs: Vec<Value> = (first..first + n)
        .map(|i| json!({"id": i.to_string(), "vector": vector(i, dim), "metadata": {"n": i % 100}}))
        .collect();
    json!({ "documents": docs }).to_string()
}

async fn post_raw(url: &str, body: String) -> u16 {
    client()
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
}

fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

fn raise_open_files() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let Rlimit { maximum, .. } = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: maximum,
            maximum,
        },
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_normal_client_keeps_its_latency_while_hostile_clients_attack() {
    raise_open_files();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            "--max-body-memory",
            "96MiB",
            "--header-timeout",
            "5s",
            "--max-connections",
            "4000",
        ],
    );
    let url = server.url.clone();
    let create =
        |name: &str, dim: usize| json!({"name": name, "dimension": dim, "metric": "cosine"});
    for (name, dim) in [("normal", DIM), ("bulk", DIM), ("wide", 4096)] {
        let r = client()
            .post(format!("{url}/api/v1/collections"))
            .json(&create(name, dim))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    for batch in 0..5 {
        let status = post_raw(
            &format!("{url}/api/v1/collections/normal/documents"),
            upsert_body(batch * 1000, 1000, DIM),
        )
        .await;
        assert_eq!(status, 200);
    }
    let status = post_raw(
        &format!("{url}/api/v1/collections/wide/documents"),
        upsert_body(0, 1000, 4096),
    )
    .await;
    assert_eq!(status, 200);

    // Prepared before the clock starts, so that the test's own work does not count.
    let huge: Vec<String> = (0..8)
        .map(|i| upsert_body(100_000 * (i + 1), 8_000, DIM))
        .collect();
    let giant_filter = {
        let clauses: serde_json::Map<String, Value> = (0..3000)
            .map(|c| {
                (
                    format!("k{c}"),
                    json!({"$in": (0..1024).collect::<Vec<u32>>()}),
                )
            })
            .collect();
        json!({"vector": vector(1, DIM), "k": 10, "filter": clauses}).to_string()
    };
    eprintln!(
        "huge bodies {} MiB each, filter {} MB",
        huge[0].len() >> 20,
        giant_filter.len() / 1_000_000
    );

    // The normal client: one search after another on a kept-alive connection.
    let normal = {
        let url = url.clone();
        tokio::spawn(async move {
            let http = client();
            let mut latencies = Vec::new();
            let started = Instant::now();
            let mut i = 0u64;
            while started.elapsed() < Duration::from_secs(20) {
                let t = Instant::now();
                let r = http
                    .post(format!("{url}/api/v1/collections/normal/search"))
                    .json(&json!({"vector": vector(i, DIM), "k": 10}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                r.bytes().await.unwrap();
                latencies.push(t.elapsed());
                i += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            latencies
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut attacks = Vec::new();

    // 2,000 connections that send half a header and stall.
    let addr = server.addr.clone();
    let stalled = tokio::task::spawn_blocking(move || {
        let mut held = Vec::new();
        for _ in 0..2000 {
            if let Ok(mut s) = TcpStream::connect(&addr) {
                let _ = s.write_all(
                    format!("GET /health HTTP/1.1\r\nx-slow: {}", "a".repeat(1000)).as_bytes(),
                );
                held.push(s);
            }
        }
        std::thread::sleep(Duration::from_secs(8));
        // Past the 5 s header timeout: the server has closed them.
        // Past the 5 s header timeout the server has answered or closed them (a read returns
        // rather than timing out).
        held.iter_mut()
            .map(|s| {
                let _ = s.set_read_timeout(Some(Duration::from_millis(10)));
                let mut buf = [0u8; 512];
                match s.read(&mut buf) {
                    // 0: closed; more: an error answer, then closed.
                    Ok(n) => n <= buf.len(),
                    Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
                }
            })
            .filter(|closed| *closed)
            .count()
    });

    // Made-up methods, 1 KiB long.
    let addr = server.addr.clone();
    attacks.push(tokio::task::spawn_blocking(move || {
        for i in 0..2000 {
            if let Ok(mut s) = TcpStream::connect(&addr) {
                let method = format!("M{i}{}", "X".repeat(1000));
                let _ = s.write_all(
                    format!("{method} /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                        .as_bytes(),
                );
                let mut out = Vec::new();
                let _ = s.read_to_end(&mut out);
            }
        }
    }));
    // Giant filters whose clients give up after 100 ms.
    for _ in 0..16 {
        let (url, body) = (url.clone(), giant_filter.clone());
        attacks.push(tokio::spawn(async move {
            let _ = client()
                .post(format!("{url}/api/v1/collections/normal/search"))
                .header("content-type", "application/json")
                .timeout(Duration::from_millis(100))
                .body(body)
                .send()
                .await;
        }));
    }
    // Eight huge upserts at once.
    for body in huge {
        let url = url.clone();
        attacks.push(tokio::spawn(async move {
            let status = post_raw(&format!("{url}/api/v1/collections/bulk/documents"), body).await;
            assert!(status == 200 || status == 503, "huge upsert: {status}");
        }));
    }
    // Large k at 4,096 dimensions, vectors included.
    for i in 0..4 {
        let url = url.clone();
        attacks.push(tokio::spawn(async move {
            let r = client()
                .post(format!("{url}/api/v1/collections/wide/search"))
                .json(&json!({"vector": vector(i, 4096), "k": 1000, "include_vector": true}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.bytes().await.unwrap();
        }));
    }
    for a in attacks {
        a.await.unwrap();
    }
    let closed = stalled.await.unwrap();
    let mut latencies = normal.await.unwrap();
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    let (p50, p99, max) = (p(0.5), p(0.99), *latencies.last().unwrap());
    let metrics = client()
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let rss = peak_rss(server.pid());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = common::rss_bytes(server.pid());
    eprintln!(
        "normal client: {} searches, p50 {p50:?} p99 {p99:?} max {max:?}; /metrics {} bytes; peak RSS {} MiB, {} MiB 3 s later; stalled connections closed by the server: {closed} of 2000",
        latencies.len(),
        metrics.len(),
        rss >> 20,
        after >> 20
    );
    assert!(p99 < Duration::from_millis(50), "p99 {p99:?}");
    assert!(
        metrics.len() < 100_000,
        "/metrics is {} bytes",
        metrics.len()
    );
    assert!(rss < PEAK_RSS_BOUND, "peak RSS {} MiB", rss >> 20);
    assert!(
        closed >= 1900,
        "only {closed} of the stalled connections were closed"
    );
    let r = client().get(format!("{url}/ready")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // A search past its deadline stops with 504; one whose client goes away is cancelled.
    let all: Vec<u32> = (0..100).collect();
    let slow = |timeout_ms: u64| {
        json!({"vector": vector(7, DIM), "k": 10, "exact": true,
               "filter": {"n": {"$in": all}}, "timeout_ms": timeout_ms})
    };
    let search = format!("{url}/api/v1/collections/bulk/search");
    let r = client()
        .post(&search)
        .json(&slow(60_000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = client().post(&search).json(&slow(1)).send().await.unwrap();
    assert_eq!(r.status(), 504);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "deadline_exceeded");
    for _ in 0..5 {
        let _ = client()
            .post(&search)
            .timeout(Duration::from_millis(1))
            .json(&slow(60_000))
            .send()
            .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let metrics = client()
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let stopped = |reason: &str| {
        metrics
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "akidb_searches_stopped_total{{reason=\"{reason}\"}}"
                ))
            })
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    eprintln!(
        "searches stopped: deadline {}, client gone {}",
        stopped("deadline"),
        stopped("client_gone")
    );
    assert!(stopped("deadline") >= 1.0);
    assert!(
        stopped("client_gone") >= 1.0,
        "no search was cancelled by its client leaving"
    );

    // Memory goes back once the large data is gone.
    for name in ["bulk", "wide"] {
        let r = client()
            .delete(format!("{url}/api/v1/collections/{name}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let left = common::rss_bytes(server.pid());
    eprintln!(
        "RSS after deleting the large collections: {} MiB",
        left >> 20
    );
    assert!(left < 384 << 20, "RSS stayed at {} MiB", left >> 20);
}

/// Connections beyond `max_connections` are closed at once, counted, and served again as soon
/// as a slot frees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_are_closed_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--max-connections", "4"]);
    let url = server.url.clone();
    let held: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(&server.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = TcpStream::connect(&server.addr).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = extra.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n");
    let mut buf = [0u8; 64];
    let n = extra.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the fifth connection was served");
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let metrics = client()
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("akidb_connections_refused_total{reason=\"max_connections\"} 1"),
        "{metrics}"
    );
}

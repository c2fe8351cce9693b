//! Crash safety: concurrent writers against the real binary, SIGKILLed at random points, 50
//! times. After every restart each acknowledged write is present with its last acknowledged
//! value, and a batch that was in flight at the kill is either wholly present or wholly absent.
//!
//! Each writer owns its ids, so it knows their history exactly: what it last saw acknowledged,
//! and what it had in flight when the server died.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::{Server, client};
use serde_json::{Value, json};
use tokio::sync::Mutex;

const ROUNDS: usize = 50;
const WRITERS: usize = 4;
const IDS_PER_WRITER: usize = 24;
const DIM: usize = 8;

/// What a document should be: `Some(version)` or deleted (`None`).
type Expected = Option<u64>;

#[derive(Default)]
struct WriterState {
    /// Last acknowledged state of each of this writer's ids.
    acked: HashMap<String, Expected>,
    /// The request in flight when the server died: (ids, what they become if it was applied).
    in_flight: Option<Vec<(String, Expected)>>,
    version: u64,
}

fn vector_for(version: u64, writer: usize) -> Vec<f32> {
    (0..DIM)
        .map(|j| version as f32 + writer as f32 * 0.001 + j as f32)
        .collect()
}

/// Tiny deterministic PRNG so a failure can be replayed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

async fn writer_loop(url: String, writer: usize, state: Arc<Mutex<WriterState>>, seed: u64) {
    let http = client();
    let mut rng = Rng(seed | 1);
    loop {
        let mut s = state.lock().await;
        s.version += 1;
        let version = s.version;
        let size = 1 + rng.below(6) as usize;
        let mut chosen: Vec<String> = (0..size)
            .map(|_| format!("w{writer}-{}", rng.below(IDS_PER_WRITER as u64)))
            .collect();
        chosen.sort();
        chosen.dedup();
        let delete = rng.below(5) == 0;
        let (path, body, outcome): (&str, Value, Expected) = if delete {
            ("documents/delete", json!({"ids": chosen}), None)
        } else {
            let docs: Vec<Value> = chosen
                .iter()
                .map(|id| json!({"id": id, "vector": vector_for(version, writer), "metadata": {"v": version}}))
                .collect();
            ("documents", json!({"documents": docs}), Some(version))
        };
        s.in_flight = Some(chosen.iter().map(|id| (id.clone(), outcome)).collect());
        drop(s);
        let resp = http
            .post(format!("{url}/api/v1/collections/crash/{path}"))
            .json(&body)
            .send()
            .await;
        let ok = matches!(&resp, Ok(r) if r.status().is_success());
        let mut s = state.lock().await;
        if ok {
            for (id, o) in s.in_flight.take().unwrap() {
                s.acked.insert(id, o);
            }
        } else {
            // The server died (or is dying). Keep `in_flight`: it may or may not have landed.
            return;
        }
    }
}

/// Reads each id's current state from the server.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    entries
        .flatten()
        .flat_map(|e| {
            let p = e.path();
            if p.is_dir() { walk(&p) } else { vec![p] }
        })
        .collect()
}

/// Demotes the collection to cold and promotes it back until the server dies.
async fn mover_loop(url: String) {
    let http = client();
    for i in 0.. {
        let body = if i % 2 == 0 {
            json!({"action": "demote", "target": "cold"})
        } else {
            json!({"action": "promote"})
        };
        let sent = http
            .post(format!("{url}/api/v1/collections/crash/tier"))
            .json(&body)
            .send()
            .await;
        if sent.is_err() {
            return; // the server was killed
        }
    }
}

async fn observe(url: &str, ids: impl Iterator<Item = String>) -> HashMap<String, Expected> {
    let http = client();
    let mut out = HashMap::new();
    for id in ids {
        let resp = http
            .get(format!("{url}/api/v1/collections/crash/documents/{id}"))
            .send()
            .await
            .unwrap();
        let state = match resp.status().as_u16() {
            404 => None,
            200 => {
                let doc: Value = resp.json().await.unwrap();
                let v = doc["metadata"]["v"].as_u64().expect("metadata.v");
                let writer: usize = id[1..id.find('-').unwrap()].parse().unwrap();
                let vector: Vec<f32> = serde_json::from_value(doc["vector"].clone()).unwrap();
                assert_eq!(
                    vector,
                    vector_for(v, writer),
                    "{id}: vector does not match its version {v}"
                );
                Some(v)
            }
            other => panic!("GET {id}: unexpected status {other}"),
        };
        out.insert(id, state);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    // Small flush threshold, so kills also land during segment flushes and WAL truncation.
    let args = ["--flush-max-docs", "40", "--flush-idle-secs", "1"];
    kill_rounds(&args, ROUNDS, false).await;
}

/// The same with a partitioned base rebuilt on every 50 ms tiering tick (every sealed row
/// counts: 50 are enough, a tail of 10% is due), and a mover demoting the collection to cold
/// and promoting it back, so that kills also land during base builds, uploads and commits, and
/// during background promotions; reads after each restart load the collection from its base.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_during_base_builds_and_promotions() {
    let args = [
        "--flush-max-docs",
        "40",
        "--flush-idle-secs",
        "1",
        "--partition-min-rows",
        "50",
        "--tier-interval",
        "50ms",
        "--tier-promote-accesses",
        "1000000",
    ];
    kill_rounds(&args, 20, true).await;
}

/// `rounds` times: writers (and with `move_tiers` a task moving the collection down and up)
/// against the server, a SIGKILL at a random point, a restart, and every writer's ids checked.
async fn kill_rounds(args: &[&str], rounds: usize, move_tiers: bool) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), args);
    let resp = client()
        .post(format!("{}/api/v1/collections", server.url))
        .json(&json!({"name": "crash", "dimension": DIM, "metric": "l2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let mut server = Some(server);

    let states: Vec<Arc<Mutex<WriterState>>> = (0..WRITERS).map(|_| Arc::default()).collect();
    let mut rng = Rng(0x5eed_cafe);
    let mut in_flight_seen_applied = 0;
    let mut in_flight_seen_absent = 0;
    for round in 0..rounds {
        let live = server.take().unwrap();
        let tasks: Vec<_> = (0..WRITERS)
            .map(|w| {
                tokio::spawn(writer_loop(
                    live.url.clone(),
                    w,
                    states[w].clone(),
                    rng.next(),
                ))
            })
            .collect();
        let mover = move_tiers.then(|| tokio::spawn(mover_loop(live.url.clone())));
        tokio::time::sleep(Duration::from_millis(20 + rng.below(250))).await;
        live.kill();
        for t in tasks {
            t.await.unwrap();
        }
        if let Some(m) = mover {
            m.await.unwrap();
        }

        let restarted = Server::start(dir.path(), args);
        for (w, state) in states.iter().enumerate() {
            let mut s = state.lock().await;
            let ids = (0..IDS_PER_WRITER).map(|i| format!("w{w}-{i}"));
            let seen = observe(&restarted.url, ids).await;
            let in_flight = s.in_flight.take().unwrap_or_default();
            let in_flight_ids: HashMap<&String, Expected> =
                in_flight.iter().map(|(id, o)| (id, *o)).collect();
            // An in-flight batch is all-or-nothing.
            let applied: Vec<bool> = in_flight
                .iter()
                .map(|(id, outcome)| {
                    seen[id] == *outcome && s.acked.get(id).copied().flatten() != *outcome
                })
                .collect();
            let any_changed = in_flight
                .iter()
                .any(|(id, o)| seen[id] == *o && s.acked.get(id).copied().flatten() != *o);
            for (id, now) in &seen {
                let acked = s.acked.get(id).copied().flatten();
                match in_flight_ids.get(id) {
                    None => assert_eq!(
                        *now, acked,
                        "round {round}: {id} lost its acknowledged state"
                    ),
                    Some(outcome) => {
                        let expected = if any_changed { *outcome } else { acked };
                        assert_eq!(
                            *now, expected,
                            "round {round}: {id}: in-flight batch half applied ({applied:?})"
                        );
                    }
                }
            }
            if any_changed {
                in_flight_seen_applied += 1;
                for (id, o) in in_flight {
                    s.acked.insert(id, o);
                }
            } else if !in_flight_ids.is_empty() {
                in_flight_seen_absent += 1;
            }
        }
        server = Some(restarted);
    }
    let total_acked: usize = {
        let mut n = 0;
        for s in &states {
            n += s.lock().await.version as usize;
        }
        n
    };
    eprintln!(
        "{rounds} kills, {total_acked} requests; in-flight batches found applied: {in_flight_seen_applied}, absent: {in_flight_seen_absent}"
    );
    if move_tiers {
        let bases = walk(&dir.path().join("objects"))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "akp"))
            .count();
        assert!(bases > 0, "no partitioned base was ever built");
    }
    assert!(
        total_acked > rounds * WRITERS,
        "writers barely wrote anything: the test would prove nothing"
    );
}

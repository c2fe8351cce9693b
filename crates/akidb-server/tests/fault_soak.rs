//! Fault soak: a long randomized run against the real `akidb` binary checking that ordinary
//! faults never lose, resurrect or serve wrong an acknowledged document.
//! Collections `s1` and `s3` are created with `quantization: sq8`.
//!
//! The server runs with its data directory on a 256 MiB tmpfs and its object store (`file://`)
//! outside it, flushing every 200 documents or 1 s idle, with the tiering policy moving idle
//! collections hot → warm → cold by itself. Four writers upsert and delete their own ids
//! (`w{writer}-{n}`, n < 150) in five collections (`s0`..`s3`, `race`) all the time; which
//! collections they write to changes between faults, so that the others go idle and move down.
//! Each writer keeps an exact model of its ids: the last acknowledged state, and the possible
//! outcomes of requests whose result is unknown (the server was killed, or a 503
//! `collection_unavailable`). Refusals (507 `insufficient_storage`, 503 `unavailable`, 404
//! `collection_not_found`) must change nothing; any other answer is a failure.
//!
//! Every 8–20 s one fault, in seeded random order (each kind once per round of five):
//! - **kill**: SIGKILL under load, restart;
//! - **disk**: fill the tmpfs to 64 KiB free for 3–5 s (topped up every 100 ms: the space a
//!   flush frees is taken at once, as by another process writing), then free it; every writer
//!   must be acknowledged again within 3 s, without a restart. The disk faults alternate between
//!   the two ways a server meets a full disk, the server being restarted right before one if it
//!   runs with the other setting: `--min-free-disk-bytes 0` (the guard off: writes reach the real
//!   ENOSPC and must be refused with 507 and cut back out of the WAL) and
//!   `--min-free-disk-bytes 4194304` (the guard refuses them with 507 first). Their 507s are
//!   counted per kind;
//! - **outage**: the object store partitioned for 5–10 s, then 5 s of 300 ms latency with 20%
//!   SlowDown, then healthy; `/ready` must say `ready` again within 30 s (no wedged breaker);
//! - **corruption**: writers stopped, SIGKILL, one bit flipped in a WAL file, a local segment
//!   copy, a stored segment or graph (its local copy removed, so that a load must read it), or a
//!   newest manifest; after a restart every document must be exactly right or its collection must
//!   report the damage (503 `collection_unavailable`, or listed `unavailable` when its manifest
//!   is unreadable); then the byte is restored, and after another SIGKILL and restart everything
//!   must be right. Each corruption is counted as *reported*, *healed silently* (all data right,
//!   and the server logged that it noticed: a local copy fetched again, a graph rebuilt) or *not
//!   read* (the file was deleted, by compaction say, or nothing needed it);
//! - **race**: `DELETE` of `race` while the writers write to it (must answer 200), its model
//!   reset and the collection re-created; nothing written before the delete may come back.
//!
//! After each fault the writers pause and every (collection, id) is read: it must be in one of
//! the states its model allows. The other restarts alternate `--min-free-disk-bytes` between the
//! same two values. A server that exits by itself is a failure. The server's log is kept: its
//! WARN and ERROR lines are counted by message in the summary, and printed with the failures of
//! a fault. A run of 300 s or more also fails if a kind of fault happened less than twice, or a
//! kind of disk fault never got a 507.
//!
//! Run it for longer with `scripts/fault-soak 30m` (or `AKIDB_SOAK_SECS=1800 cargo test
//! --release -p akidb-server --test fault_soak -- --nocapture`); the default, 40 s, runs in the
//! normal test suite. `AKIDB_SOAK_SEED=N` replays a seed (timing still varies);
//! `AKIDB_TEST_LOG=1` echoes the server's log. Needs root (it mounts a tmpfs).

mod common;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Tmpfs, fill};
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

const DIM: usize = 16;
const WRITERS: usize = 4;
/// Ids per writer in each collection.
const IDS: u64 = 150;
const COLLECTIONS: [&str; 5] = ["s0", "s1", "s2", "s3", "race"];
const RACE: usize = 4;
const READS_IN_FLIGHT: usize = 32;
/// A request without an answer for this long is a failure (a wedged server).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Printed failure messages per verification (all are counted).
const PRINTED_PER_VERIFY: usize = 30;

const SERVER_ARGS: [&str; 12] = [
    "--flush-max-docs",
    "200",
    "--flush-idle-secs",
    "1",
    "--test-faults",
    "latency_ms=0",
    "--tier-interval-secs",
    "2",
    "--tier-hot-idle-secs",
    "4",
    "--tier-warm-idle-secs",
    "8",
];
/// `--min-free-disk-bytes`: 0 (the guard off: a full disk is met as ENOSPC), or the guard on.
const MIN_FREE_DISK: [&str; 2] = ["0", "4194304"];
/// The two kinds of disk fault, by [`MIN_FREE_DISK`] index.
const DISK_KINDS: [&str; 2] = ["ENOSPC", "guard"];
/// What a disk fault leaves free: less than the guard wants, little enough to run out of.
const DISK_LEFT_FREE: u64 = 64 << 10;
/// Server log lines kept (for failure reports and to tell whether a corruption was noticed).
const LOG_KEPT: usize = 20_000;

// ---------------------------------------------------------------------------------------------
// Randomness and documents

/// splitmix64: small, seedable, good enough to pick faults and batches.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// One document slot: collection, writer, and the writer's id number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    coll: usize,
    writer: usize,
    n: u64,
}

impl Key {
    fn id(&self) -> String {
        doc_id(self.writer, self.n)
    }

    fn all() -> Vec<Key> {
        let mut keys = Vec::new();
        for coll in 0..COLLECTIONS.len() {
            for writer in 0..WRITERS {
                keys.extend((0..IDS).map(|n| Key { coll, writer, n }));
            }
        }
        keys
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", COLLECTIONS[self.coll], self.id())
    }
}

fn doc_id(writer: usize, n: u64) -> String {
    format!("w{writer}-{n}")
}

/// The vector of version `version` of a document: a function of all four, so a vector from
/// another document or version never matches.
fn vector_for(key: Key, version: u64) -> Vec<f32> {
    let seed = [key.coll as u64, key.writer as u64, key.n, version]
        .iter()
        .fold(0x50a6_u64, |h, &part| Rng(h ^ part).next());
    akidb_testkit::seeded_vector(seed, DIM)
}

// ---------------------------------------------------------------------------------------------
// The model

/// What a document is: `Some(version)` (its vector is [`vector_for`] that version) or absent.
type DocState = Option<u64>;

fn show(state: DocState) -> String {
    state.map_or("absent".into(), |v| format!("v{v}"))
}

/// One document as its writer knows it.
#[derive(Clone, Debug, Default)]
struct Doc {
    /// The last acknowledged state.
    acked: DocState,
    /// What unanswered requests since then would have made it, had they been applied.
    pending: Vec<DocState>,
}

impl Doc {
    fn allows(&self, state: DocState) -> bool {
        self.acked == state || self.pending.contains(&state)
    }

    /// Whether any allowed state is a present document.
    fn allows_presence(&self) -> bool {
        self.acked.is_some() || self.pending.iter().any(Option::is_some)
    }

    fn settle(&mut self, state: DocState) {
        self.acked = state;
        self.pending.clear();
    }

    fn describe(&self) -> String {
        if self.pending.is_empty() {
            return show(self.acked);
        }
        let pending: Vec<String> = self.pending.iter().map(|s| show(*s)).collect();
        format!(
            "{} or (unanswered) {}",
            show(self.acked),
            pending.join(", ")
        )
    }
}

/// One write request: which ids, and what they become if it is applied.
struct Write {
    coll: usize,
    ns: Vec<u64>,
    /// `Some(version)` for an upsert, `None` for a delete.
    outcome: DocState,
}

impl Write {
    /// The request's path and body.
    fn request(&self, writer: usize) -> (String, Value) {
        let name = COLLECTIONS[self.coll];
        match self.outcome {
            None => {
                let ids: Vec<String> = self.ns.iter().map(|&n| doc_id(writer, n)).collect();
                (
                    format!("/api/v1/collections/{name}/documents/delete"),
                    json!({ "ids": ids }),
                )
            }
            Some(version) => {
                let docs: Vec<Value> = self
                    .ns
                    .iter()
                    .map(|&n| {
                        let key = Key {
                            coll: self.coll,
                            writer,
                            n,
                        };
                        json!({"id": key.id(), "vector": vector_for(key, version), "metadata": {"v": version}})
                    })
                    .collect();
                (
                    format!("/api/v1/collections/{name}/documents"),
                    json!({ "documents": docs }),
                )
            }
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct WriteCounts {
    acked: u64,
    refused: u64,
    /// Refusals that were 507 `insufficient_storage`, by [`DISK_KINDS`] index: the disk was
    /// full (ENOSPC), or the guard refused (its message names `min_free_disk_bytes`).
    full: [u64; 2],
    ambiguous: u64,
}

impl WriteCounts {
    fn add(self, other: WriteCounts) -> WriteCounts {
        WriteCounts {
            acked: self.acked + other.acked,
            refused: self.refused + other.refused,
            full: [self.full[0] + other.full[0], self.full[1] + other.full[1]],
            ambiguous: self.ambiguous + other.ambiguous,
        }
    }

    fn minus(self, before: WriteCounts) -> WriteCounts {
        WriteCounts {
            acked: self.acked - before.acked,
            refused: self.refused - before.refused,
            full: [self.full[0] - before.full[0], self.full[1] - before.full[1]],
            ambiguous: self.ambiguous - before.ambiguous,
        }
    }

    fn full(&self) -> u64 {
        self.full[0] + self.full[1]
    }
}

/// Everything one writer knows about its own ids (no sharing between writers).
struct Model {
    /// `docs[collection][n]`
    docs: Vec<Vec<Doc>>,
    /// Grows with every request, so every upsert writes a version never written before.
    version: u64,
    counts: WriteCounts,
    /// The last answer that was not an acknowledgement (for failure messages).
    last_refusal: String,
}

impl Model {
    fn new() -> Model {
        Model {
            docs: vec![vec![Doc::default(); IDS as usize]; COLLECTIONS.len()],
            version: 0,
            counts: WriteCounts::default(),
            last_refusal: "none".into(),
        }
    }

    /// The next request: an upsert of 1..=8 ids, or (1 in 5) a delete of 1..=4, in one of the
    /// `active` collections (a bit mask).
    fn next_write(&mut self, rng: &mut Rng, active: u8) -> Write {
        let choices: Vec<usize> = (0..COLLECTIONS.len())
            .filter(|c| active & (1 << c) != 0)
            .collect();
        let coll = *rng.pick(&choices);
        let delete = rng.below(5) == 0;
        let size = if delete {
            rng.range(1, 4)
        } else {
            rng.range(1, 8)
        };
        let mut ns: Vec<u64> = (0..size).map(|_| rng.below(IDS)).collect();
        ns.sort_unstable();
        ns.dedup();
        self.version += 1;
        Write {
            coll,
            ns,
            outcome: (!delete).then_some(self.version),
        }
    }

    fn record(&mut self, write: &Write, answer: &Answer) {
        let docs = &mut self.docs[write.coll];
        match answer {
            Answer::Acked => {
                self.counts.acked += 1;
                for &n in &write.ns {
                    docs[n as usize].settle(write.outcome);
                }
            }
            Answer::Refused { full, why } => {
                self.counts.refused += 1;
                if let Some(kind) = full {
                    self.counts.full[*kind] += 1;
                }
                self.last_refusal.clone_from(why);
            }
            Answer::Ambiguous(why) | Answer::Unexpected(why) => {
                self.counts.ambiguous += 1;
                self.last_refusal.clone_from(why);
                for &n in &write.ns {
                    docs[n as usize].pending.push(write.outcome);
                }
            }
        }
    }

    /// The collection was deleted: none of its documents exists any more.
    fn reset(&mut self, coll: usize) {
        self.docs[coll] = vec![Doc::default(); IDS as usize];
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// A request that got no (complete) answer.
struct Transport {
    timed_out: bool,
    message: String,
}

async fn request(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), Transport> {
    let failed = |e: reqwest::Error| Transport {
        timed_out: e.is_timeout(),
        message: format!("{e:?}"),
    };
    let mut req = http.request(method, url);
    if let Some(body) = body {
        req = req.json(body);
    }
    let resp = req.send().await.map_err(failed)?;
    let status = resp.status().as_u16();
    match resp.text().await {
        Ok(text) => Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )),
        // The status line of a 200 is the acknowledgement; the body does not matter.
        Err(_) if status == 200 => Ok((200, Value::Null)),
        Err(e) => Err(failed(e)),
    }
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// What a write's answer says about whether it was applied.
enum Answer {
    Acked,
    /// Definitely not applied.
    Refused {
        /// A 507, by [`DISK_KINDS`] index.
        full: Option<usize>,
        why: String,
    },
    /// Maybe applied.
    Ambiguous(String),
    /// A failure of the server (it may or may not have been applied).
    Unexpected(String),
}

fn classify(result: &Result<(u16, Value), Transport>) -> Answer {
    let (status, body) = match result {
        Err(t) if t.timed_out => {
            return Answer::Unexpected(format!("no answer within {REQUEST_TIMEOUT:?}"));
        }
        Err(t) => return Answer::Ambiguous(format!("transport: {}", t.message)),
        Ok(answer) => answer,
    };
    let why = || format!("{status} {body}");
    match (*status, error_code(body)) {
        (200, _) => Answer::Acked,
        (507, "insufficient_storage") => Answer::Refused {
            full: Some(usize::from(
                body.to_string().contains("min_free_disk_bytes"),
            )),
            why: why(),
        },
        (503, "unavailable") | (404, "collection_not_found") => Answer::Refused {
            full: None,
            why: why(),
        },
        (503, "collection_unavailable") => Answer::Ambiguous(why()),
        _ => Answer::Unexpected(why()),
    }
}

// ---------------------------------------------------------------------------------------------
// The server and its log

/// The server's log (of every start): the last [`LOG_KEPT`] lines, numbered, and a count of
/// its WARN and ERROR lines by message.
#[derive(Default)]
struct ServerLog {
    lines: Mutex<VecDeque<(u64, String)>>,
    total: AtomicU64,
    warnings: Mutex<BTreeMap<String, u64>>,
}

impl ServerLog {
    fn push(&self, line: String) {
        if let Some(key) = warning_key(&line) {
            *self.warnings.lock().unwrap().entry(key).or_default() += 1;
        }
        let mut lines = self.lines.lock().unwrap();
        let n = self.total.fetch_add(1, Ordering::Relaxed);
        if lines.len() == LOG_KEPT {
            lines.pop_front();
        }
        lines.push_back((n, line));
    }

    /// The number of the next line.
    fn mark(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// The lines kept from line `mark` on.
    fn since(&self, mark: u64) -> Vec<String> {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .filter(|(n, _)| *n >= mark)
            .map(|(_, line)| line.clone())
            .collect()
    }
}

/// `LEVEL target: message` of a WARN or ERROR line (the time and the `key=value` fields after
/// the message left out).
fn warning_key(line: &str) -> Option<String> {
    let mut words = line.split_whitespace().skip(1);
    let level = words.next()?;
    if level != "WARN" && level != "ERROR" {
        return None;
    }
    let is_field = |w: &&str| {
        w.split_once('=').is_some_and(|(k, _)| {
            !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
    };
    let message: Vec<&str> = words.take_while(|w| !is_field(w)).collect();
    Some(format!("{level} {}", message.join(" ")))
}

fn is_warning(line: &str) -> bool {
    warning_key(line).is_some()
}

/// One run of `akidb serve`, its log going to a [`ServerLog`] (and to stderr with
/// `AKIDB_TEST_LOG=1`).
struct AkiDb {
    child: Child,
    url: String,
}

impl AkiDb {
    fn start(data_dir: &Path, args: &[&str], log: Arc<ServerLog>) -> AkiDb {
        let echo = std::env::var_os("AKIDB_TEST_LOG").is_some();
        let mark = log.mark();
        let reader_log = log.clone();
        match akidb_testkit::spawn_akidb_with_log(
            Path::new(env!("CARGO_BIN_EXE_akidb")),
            data_dir,
            args,
            "info",
            echo,
            None,
            move |line| reader_log.push(line),
        ) {
            Ok((child, addr)) => AkiDb {
                child,
                url: format!("http://{addr}"),
            },
            Err(e) => panic!("{e}; its log:\n{}", log.since(mark).join("\n")),
        }
    }

    /// Whether it exited by itself, and how.
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL: no flush, no cleanup, like a power cut for the process.
    fn kill(mut self) {
        let _ = self.child.kill();
        self.child.wait().expect("wait");
    }
}

impl Drop for AkiDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Writers

/// What the writers and the fault driver share.
struct Shared {
    http: reqwest::Client,
    url: Mutex<String>,
    /// Writers hold it shared for each request and the recording of its answer; the driver
    /// takes it exclusively to pause them (so no answer is recorded while it verifies or resets).
    gate: Arc<tokio::sync::RwLock<()>>,
    stop: AtomicBool,
    /// Set while the driver runs a fault (and the verification after it).
    in_fault: AtomicBool,
    /// Writes answered 503 `collection_unavailable` while no fault was being run.
    unprovoked: AtomicU64,
    /// Bit mask of the collections the writers write to now.
    active: AtomicU8,
    models: Vec<Mutex<Model>>,
    unexpected: AtomicU64,
    failures: Mutex<Vec<String>>,
    /// The writers' answers other than 200, by status and error code: how many, and the first.
    other_answers: Mutex<BTreeMap<String, (u64, String)>>,
    started: Instant,
}

impl Shared {
    fn url(&self) -> String {
        self.url.lock().unwrap().clone()
    }

    fn log(&self, message: &str) {
        eprintln!("[{:>7.1}s] {message}", self.started.elapsed().as_secs_f64());
    }

    /// Records a failure; prints it unless `quiet`.
    fn fail(&self, message: String, quiet: bool) {
        if !quiet {
            self.log(&format!("FAILURE: {message}"));
        }
        self.failures.lock().unwrap().push(message);
    }

    fn count_unexpected(&self) {
        self.unexpected.fetch_add(1, Ordering::Relaxed);
    }

    fn unexpected(&self, message: String, quiet: bool) {
        self.count_unexpected();
        self.fail(format!("unexpected: {message}"), quiet);
    }

    fn write_counts(&self) -> Vec<WriteCounts> {
        self.models
            .iter()
            .map(|m| m.lock().unwrap().counts)
            .collect()
    }

    /// Counts a write's answer other than 200 by status and error code. A 503
    /// `collection_unavailable` while no fault is being run (when nothing should leave a write's
    /// fate unknown) is allowed, as any such answer, but counted as unprovoked, and the first
    /// ones are printed.
    fn note_other_answer(&self, w: usize, path: &str, result: &Result<(u16, Value), Transport>) {
        let (kind, example) = match result {
            Ok((status, body)) => (format!("{status} {}", error_code(body)), body.to_string()),
            Err(t) => ("no answer".into(), t.message.clone()),
        };
        if kind == "503 collection_unavailable"
            && !self.in_fault.load(Ordering::Relaxed)
            && self.unprovoked.fetch_add(1, Ordering::Relaxed) < 5
        {
            self.log(&format!(
                "SUSPICIOUS: writer {w}: POST {path} answered {kind} with no fault in \
                 progress: {example}"
            ));
        }
        let at = self.started.elapsed().as_secs_f64();
        let mut answers = self.other_answers.lock().unwrap();
        let entry = answers
            .entry(kind)
            .or_insert_with(|| (0, format!("first at {at:.1} s: {example:.300}")));
        entry.0 += 1;
    }

    /// The writers' counts, summed.
    fn total_writes(&self) -> WriteCounts {
        self.write_counts()
            .into_iter()
            .fold(WriteCounts::default(), WriteCounts::add)
    }
}

async fn writer(shared: Arc<Shared>, w: usize, seed: u64) {
    let mut rng = Rng(seed);
    loop {
        let turn = shared.gate.read().await;
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        let active = shared.active.load(Ordering::Relaxed);
        let write = shared.models[w]
            .lock()
            .unwrap()
            .next_write(&mut rng, active);
        let (path, body) = write.request(w);
        let url = format!("{}{path}", shared.url());
        let result = request(&shared.http, Method::POST, &url, Some(&body)).await;
        let answer = classify(&result);
        if !matches!(answer, Answer::Acked) {
            shared.note_other_answer(w, &path, &result);
        }
        if let Answer::Unexpected(why) = &answer {
            shared.unexpected(format!("writer {w}: POST {path}: {why}"), false);
        }
        shared.models[w].lock().unwrap().record(&write, &answer);
        drop(turn);
        if !matches!(answer, Answer::Acked) {
            // Pacing only: do not spin against a full disk or a dead server.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Faults and counts

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    Kill,
    Disk,
    Outage,
    Corruption,
    Race,
}

const FAULTS: [Fault; 5] = [
    Fault::Kill,
    Fault::Disk,
    Fault::Outage,
    Fault::Corruption,
    Fault::Race,
];

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Disk => "disk",
            Fault::Outage => "outage",
            Fault::Corruption => "corruption",
            Fault::Race => "race",
        }
    }
}

#[derive(Default)]
struct Counts {
    /// By [`FAULTS`] index.
    faults: [u64; 5],
    reads: u64,
    lost: u64,
    resurrected: u64,
    served_wrong: u64,
    /// Corruptions by [`Noticed`] index.
    corruptions: [u64; 3],
    /// Disk faults by [`DISK_KINDS`] index, those of them during which some write got 507, and
    /// the 507s during them.
    disk_faults: [u64; 2],
    disk_faults_with_507: [u64; 2],
    disk_507s: [u64; 2],
    /// Outages during which `/ready` said `degraded`.
    degraded_seen: u64,
    restarts: u64,
    /// Tier moves of the servers already stopped, and of the running one so far.
    tier_moves_before: u64,
}

/// What became of a corruption.
#[derive(Clone, Copy, Debug)]
enum Noticed {
    /// A collection answered 503 `collection_unavailable` or was listed unavailable.
    Reported,
    /// Every document right, and the server logged that it noticed (a local copy fetched
    /// again, a graph rebuilt).
    Healed,
    /// Every document right, and nothing logged: the file was deleted (compaction, a tier
    /// move), or nothing needed it.
    NotRead,
}

const NOTICED: [&str; 3] = ["reported", "healed silently", "not read"];

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Normal,
    /// Right after a bit flip: a collection may report the damage instead of serving.
    Corruption,
}

/// What one read of a document found.
enum Seen {
    Doc(u64),
    Absent,
    /// Present, but not exactly some version of this document.
    Garbled(String),
    /// 503 `collection_unavailable`.
    Unavailable(String),
    /// 404 `collection_not_found`.
    NoCollection,
    Error(String),
}

async fn read_doc(http: &reqwest::Client, base: &str, key: Key) -> Seen {
    let path = format!(
        "/api/v1/collections/{}/documents/{}",
        COLLECTIONS[key.coll],
        key.id()
    );
    match request(http, Method::GET, &format!("{base}{path}"), None).await {
        Err(t) => Seen::Error(format!("GET {path}: {}", t.message)),
        Ok((200, doc)) => check_doc(key, &doc),
        Ok((status, body)) => match (status, error_code(&body)) {
            (404, "document_not_found") => Seen::Absent,
            (404, "collection_not_found") => Seen::NoCollection,
            (503, "collection_unavailable") => Seen::Unavailable(body.to_string()),
            _ => Seen::Error(format!("GET {path}: {status} {body}")),
        },
    }
}

/// A 200 answer: the document must be exactly the version its metadata names.
fn check_doc(key: Key, doc: &Value) -> Seen {
    let Some(version) = doc["metadata"]["v"].as_u64() else {
        return Seen::Garbled(format!("no version in its metadata: {doc}"));
    };
    let vector: Option<Vec<f32>> = doc["vector"].as_array().map(|xs| {
        xs.iter()
            .map(|x| x.as_f64().unwrap_or(f64::NAN) as f32)
            .collect()
    });
    if doc["id"] != key.id().as_str() || vector != Some(vector_for(key, version)) {
        return Seen::Garbled(format!(
            "metadata says v{version}, but the id or vector is not v{version}'s: {doc}"
        ));
    }
    Seen::Doc(version)
}

/// Grows `filler` to take whatever the filesystem has free beyond `leave` bytes (the space a
/// flush freed, say): the disk stays full, as when another process keeps writing.
fn top_up(filler: &Path, leave: u64) {
    use std::io::Write;
    let dir = filler.parent().expect("in a directory");
    let mut extra = akidb_engine::disk::free_bytes(dir)
        .unwrap_or(0)
        .saturating_sub(leave);
    let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(filler) else {
        return;
    };
    let chunk = vec![0xabu8; 64 << 10];
    while extra > 0 {
        let n = extra.min(chunk.len() as u64);
        if f.write_all(&chunk[..n as usize]).is_err() {
            return;
        }
        extra -= n;
    }
}

/// One flipped bit, to be undone.
struct Flip {
    path: PathBuf,
    offset: u64,
    original: u8,
    flipped: u8,
}

impl Flip {
    fn apply(path: &Path, rng: &mut Rng) -> Flip {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        let offset = rng.below(file.metadata().unwrap().len());
        let mut byte = [0u8];
        file.read_exact_at(&mut byte, offset).unwrap();
        let flipped = byte[0] ^ (1 << rng.below(8));
        file.write_all_at(&[flipped], offset).unwrap();
        file.sync_all().unwrap();
        Flip {
            path: path.to_path_buf(),
            offset,
            original: byte[0],
            flipped,
        }
    }

    /// Whether the file still holds the flipped byte.
    fn state(&self) -> &'static str {
        let Ok(file) = std::fs::File::open(&self.path) else {
            return "gone";
        };
        let mut byte = [0u8];
        match file.read_exact_at(&mut byte, self.offset) {
            Err(_) => "shorter now",
            Ok(()) if byte[0] == self.flipped => "still flipped",
            Ok(()) => "rewritten",
        }
    }

    /// Puts the original byte back if the file still holds the flipped one there.
    fn restore(&self) -> &'static str {
        let Ok(file) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
        else {
            return "the file is gone";
        };
        let mut byte = [0u8];
        if file.read_exact_at(&mut byte, self.offset).is_err() {
            return "the file is shorter now";
        }
        if byte[0] != self.flipped {
            return "the byte was rewritten already";
        }
        file.write_all_at(&[self.original], self.offset).unwrap();
        file.sync_all().unwrap();
        "restored"
    }
}

/// Regular non-empty files directly in `dir` whose name passes `keep`, sorted.
fn files_in(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(&keep)
                && p.metadata().is_ok_and(|m| m.is_file() && m.len() > 0)
        })
        .collect();
    files.sort();
    files
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs
}

const STORED: &str = "stored object";

/// The local copy of the stored object `object`: the same name in the collection's `segments`.
fn local_copy_of(data: &Path, store: &Path, object: &Path) -> PathBuf {
    let relative = object.strip_prefix(store).expect("in the store");
    let id = relative.iter().nth(1).expect("collections/<id>/...");
    let name = object.file_name().expect("a file");
    data.join("collections")
        .join(id)
        .join("segments")
        .join(name)
}

/// What a corruption may hit, by kind: WAL files, local copies, stored segments and graphs,
/// and each collection's newest manifest (older versions are never read again).
fn corruption_targets(data: &Path, store: &Path) -> Vec<(&'static str, Vec<PathBuf>)> {
    let mut wal = Vec::new();
    let mut local = Vec::new();
    for dir in subdirs(&data.join("collections")) {
        wal.extend(files_in(&dir.join("wal"), |n| n.ends_with(".log")));
        local.extend(files_in(&dir.join("segments"), |_| true));
    }
    let mut stored = Vec::new();
    let mut manifests = Vec::new();
    for dir in subdirs(&store.join("collections")) {
        stored.extend(files_in(&dir.join("segments"), |n| {
            n.ends_with(".parquet") || n.ends_with(".hnsw")
        }));
        manifests.extend(files_in(&dir.join("manifest"), |n| n.ends_with(".json")).pop());
    }
    [
        ("WAL file", wal),
        ("local copy", local),
        (STORED, stored),
        ("newest manifest", manifests),
    ]
    .into_iter()
    .filter(|(_, files)| !files.is_empty())
    .collect()
}

// ---------------------------------------------------------------------------------------------
// The soak

struct Soak {
    shared: Arc<Shared>,
    fs: Tmpfs,
    store: tempfile::TempDir,
    server: Option<AkiDb>,
    /// The running server's `--min-free-disk-bytes`, as a [`MIN_FREE_DISK`] index.
    min_free: usize,
    log: Arc<ServerLog>,
    rng: Rng,
    counts: Counts,
    /// The current id of each collection (`race` gets a new one at each re-create).
    ids: Vec<String>,
    /// A label for log lines and failures: the fault being run.
    stage: String,
}

impl Soak {
    async fn new(seed: u64) -> Soak {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .unwrap();
        let shared = Arc::new(Shared {
            http,
            url: Mutex::new(String::new()),
            gate: Arc::new(tokio::sync::RwLock::new(())),
            stop: AtomicBool::new(false),
            in_fault: AtomicBool::new(false),
            unprovoked: AtomicU64::new(0),
            active: AtomicU8::new((1 << COLLECTIONS.len()) - 1),
            models: (0..WRITERS).map(|_| Mutex::new(Model::new())).collect(),
            unexpected: AtomicU64::new(0),
            failures: Mutex::new(Vec::new()),
            other_answers: Mutex::new(BTreeMap::new()),
            started: Instant::now(),
        });
        let mut soak = Soak {
            shared,
            fs: Tmpfs::mount(256),
            store: tempfile::tempdir().unwrap(),
            server: None,
            min_free: 0,
            log: Arc::new(ServerLog::default()),
            rng: Rng(seed),
            counts: Counts::default(),
            ids: vec![String::new(); COLLECTIONS.len()],
            stage: "start".into(),
        };
        soak.start_server();
        for coll in 0..COLLECTIONS.len() {
            soak.create(coll).await;
        }
        soak
    }

    fn data_dir(&self) -> PathBuf {
        self.fs.path().join("data")
    }

    /// Starts the server, with the other `--min-free-disk-bytes` than last time.
    fn start_server(&mut self) {
        self.start_server_with(self.counts.restarts as usize % 2);
    }

    /// Starts the server with `--min-free-disk-bytes` [`MIN_FREE_DISK`]`[min_free]`.
    fn start_server_with(&mut self, min_free: usize) {
        let store = format!("file://{}", self.store.path().display());
        let mut args = SERVER_ARGS.to_vec();
        args.extend([
            "--object-store",
            &store,
            "--min-free-disk-bytes",
            MIN_FREE_DISK[min_free],
        ]);
        let data = self.data_dir();
        let log = self.log.clone();
        let server = tokio::task::block_in_place(|| AkiDb::start(&data, &args, log));
        *self.shared.url.lock().unwrap() = server.url.clone();
        self.shared.log(&format!(
            "{}: server started (start {}, min-free-disk-bytes {})",
            self.stage,
            self.counts.restarts + 1,
            MIN_FREE_DISK[min_free]
        ));
        self.server = Some(server);
        self.min_free = min_free;
        self.counts.restarts += 1;
    }

    /// SIGKILL (after noting its tier moves).
    async fn kill_server(&mut self) {
        self.check_alive();
        self.counts.tier_moves_before += self.tier_moves().await;
        self.server.take().expect("a running server").kill();
    }

    /// A server that exited by itself (a crash, a panic) is a failure; it is started again.
    fn check_alive(&mut self) {
        let Some(status) = self.server.as_mut().and_then(AkiDb::exited) else {
            return;
        };
        self.shared.unexpected(
            format!("{}: the server exited by itself: {status}", self.stage),
            false,
        );
        self.server = None;
        self.start_server();
    }

    /// Waits for the writers' requests in flight, and keeps them from sending more.
    async fn pause(&self) -> tokio::sync::OwnedRwLockWriteGuard<()> {
        self.shared.gate.clone().write_owned().await
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.shared.url());
        match request(&self.shared.http, method, &url, body.as_ref()).await {
            Ok(answer) => answer,
            Err(t) => (0, Value::String(t.message)),
        }
    }

    async fn create(&mut self, coll: usize) {
        // Every other collection holds 8-bit codes when hot (its f32 vectors in a file on the
        // tmpfs, which the disk faults fill).
        let quantization = if coll % 2 == 1 { "sq8" } else { "none" };
        let body = json!({"name": COLLECTIONS[coll], "dimension": DIM, "metric": "l2",
                          "quantization": quantization});
        let (status, info) = self
            .call(Method::POST, "/api/v1/collections", Some(body))
            .await;
        assert_eq!(status, 201, "create {}: {info}", COLLECTIONS[coll]);
        self.ids[coll] = info["id"].as_str().unwrap().to_string();
    }

    async fn tier_moves(&self) -> u64 {
        let (_, metrics) = self.call(Method::GET, "/metrics", None).await;
        metrics
            .as_str()
            .unwrap_or("")
            .lines()
            .filter(|l| l.starts_with("akidb_tier_moves_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    async fn ready_status(&self) -> String {
        let (status, body) = self.call(Method::GET, "/ready", None).await;
        match body["status"].as_str() {
            Some(s) if status == 200 => s.to_string(),
            _ => format!("{status} {body}"),
        }
    }

    async fn set_store_faults(&self, body: Value) {
        let (status, answer) = self
            .call(
                Method::POST,
                "/api/v1/admin/test-faults",
                Some(body.clone()),
            )
            .await;
        if status != 200 {
            self.shared.unexpected(
                format!("{}: POST test-faults {body}: {status} {answer}", self.stage),
                false,
            );
        }
    }

    async fn sleep_ms(&mut self, lo: u64, hi: u64) {
        let ms = self.rng.range(lo, hi);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    /// Picks the collections the writers use until the next fault; the others go idle and the
    /// tiering policy moves them down.
    fn choose_active(&mut self) {
        let mask = 1 + self.rng.below((1 << COLLECTIONS.len()) - 1) as u8;
        self.shared.active.store(mask, Ordering::Relaxed);
    }

    /// Runs one fault (and the verification after it); if it failed, prints the server's log
    /// since it began: its WARN and ERROR lines and its last lines.
    async fn run(&mut self, fault: Fault) {
        let mark = self.log.mark();
        let failures = self.shared.failures.lock().unwrap().len();
        self.shared.in_fault.store(true, Ordering::Relaxed);
        match fault {
            Fault::Kill => self.kill().await,
            Fault::Disk => self.disk_full().await,
            Fault::Outage => self.outage().await,
            Fault::Corruption => self.corruption().await,
            Fault::Race => self.race().await,
        }
        self.shared.in_fault.store(false, Ordering::Relaxed);
        if self.shared.failures.lock().unwrap().len() > failures {
            self.print_log_since(mark);
        }
    }

    fn print_log_since(&self, mark: u64) {
        let lines = self.log.since(mark);
        let warnings: Vec<&String> = lines.iter().filter(|l| is_warning(l)).collect();
        let mut text = format!(
            "{}: the server's WARN and ERROR lines since it began ({} of {}):",
            self.stage,
            warnings.len().min(60),
            warnings.len()
        );
        for line in warnings.iter().take(60) {
            text += &format!("\n    {line}");
        }
        text += &format!("\n  and its last {} lines:", lines.len().min(30));
        for line in &lines[lines.len().saturating_sub(30)..] {
            text += &format!("\n    {line}");
        }
        self.shared.log(&text);
    }

    async fn kill(&mut self) {
        self.kill_server().await; // under load: requests in flight become ambiguous
        let _paused = self.pause().await;
        self.start_server();
        self.verify(Mode::Normal).await;
    }

    /// Fills the disk to [`DISK_LEFT_FREE`] for a while, alternately with the guard off (the
    /// writes meet ENOSPC) and on; a server running with the other setting is restarted first.
    async fn disk_full(&mut self) {
        let kind = (self.counts.disk_faults.iter().sum::<u64>() % 2) as usize;
        if self.min_free != kind {
            let _paused = self.pause().await;
            self.kill_server().await;
            self.start_server_with(kind);
            self.verify(Mode::Normal).await;
        }
        let before = self.shared.total_writes();
        let root = self.fs.path().to_path_buf();
        let filler = tokio::task::block_in_place(|| fill(&root, DISK_LEFT_FREE));
        let free = akidb_engine::disk::free_bytes(&root).unwrap_or(0);
        let filled = self.shared.total_writes();
        let full_until = Instant::now() + Duration::from_millis(self.rng.range(3000, 5000));
        while Instant::now() < full_until {
            tokio::time::sleep(Duration::from_millis(100)).await;
            tokio::task::block_in_place(|| top_up(&filler, DISK_LEFT_FREE));
        }
        let while_full = self.shared.total_writes().minus(filled);
        std::fs::remove_file(&filler).unwrap();
        let freed = self.shared.write_counts();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let after = self.shared.write_counts();
        let stuck: Vec<usize> = (0..WRITERS)
            .filter(|&w| after[w].acked == freed[w].acked)
            .collect();
        let during = self.shared.total_writes().minus(before);
        self.counts.disk_faults[kind] += 1;
        self.counts.disk_507s[kind] += during.full();
        self.counts.disk_faults_with_507[kind] += u64::from(during.full() > 0);
        self.shared.log(&format!(
            "{}: {} kind (min-free-disk-bytes {}): {free} bytes free after the fill; from then \
             on, while full: {} writes acked, {} refused with 507 ({} by the guard, {} for \
             ENOSPC), {} ambiguous; freed; writers without an acknowledgement 3 s later: \
             {stuck:?}",
            self.stage,
            DISK_KINDS[kind],
            MIN_FREE_DISK[kind],
            while_full.acked,
            while_full.full(),
            while_full.full[1],
            while_full.full[0],
            while_full.ambiguous,
        ));
        for w in stuck {
            let last = self.shared.models[w].lock().unwrap().last_refusal.clone();
            self.shared.unexpected(
                format!(
                    "{}: writer {w} had no write acknowledged within 3 s after the disk was \
                     freed (its last refusal: {last})",
                    self.stage
                ),
                false,
            );
        }
        let _paused = self.pause().await;
        self.verify(Mode::Normal).await;
    }

    async fn outage(&mut self) {
        self.set_store_faults(json!({"partitioned": true})).await;
        let heal_at = Instant::now() + Duration::from_millis(self.rng.range(5000, 10000));
        let mut degraded = false;
        while Instant::now() < heal_at {
            degraded |= self.ready_status().await == "degraded";
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        self.counts.degraded_seen += u64::from(degraded);
        let seed = self.rng.next();
        self.set_store_faults(
            json!({"partitioned": false, "latency_ms": 300, "fail_rate": 0.2, "seed": seed}),
        )
        .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        self.set_store_faults(json!({"latency_ms": 0, "fail_rate": 0.0}))
            .await;
        let healed = Instant::now();
        let mut status = self.ready_status().await;
        while status != "ready" && healed.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            status = self.ready_status().await;
        }
        self.shared.log(&format!(
            "{}: /ready said degraded during the partition: {degraded}; after healing: \
             {status} in {:.1} s",
            self.stage,
            healed.elapsed().as_secs_f64()
        ));
        if status != "ready" {
            self.shared.unexpected(
                format!(
                    "{}: the object store is healthy again but /ready still says {status:?} \
                     after 30 s (a wedged circuit breaker?)",
                    self.stage
                ),
                false,
            );
        }
        let _paused = self.pause().await;
        self.verify(Mode::Normal).await;
    }

    async fn corruption(&mut self) {
        let _paused = self.pause().await;
        self.kill_server().await;
        let targets = corruption_targets(&self.data_dir(), self.store.path());
        if targets.is_empty() {
            self.shared
                .log(&format!("{}: nothing to corrupt yet", self.stage));
            self.start_server();
            self.verify(Mode::Normal).await;
            return;
        }
        let (kind, files) = &targets[self.rng.below(targets.len() as u64) as usize];
        let path = self.rng.pick(files).clone();
        let flip = Flip::apply(&path, &mut self.rng);
        let owner = self
            .ids
            .iter()
            .position(|id| path.components().any(|c| c.as_os_str() == id.as_str()))
            .map_or("a deleted collection", |c| COLLECTIONS[c]);
        let mut note = String::new();
        if *kind == STORED {
            // Else a load reads the local copy and never the stored object.
            let local = local_copy_of(&self.data_dir(), self.store.path(), &path);
            if std::fs::remove_file(&local).is_ok() {
                note = format!("; removed its local copy {}", self.short(&local));
            }
        }
        self.shared.log(&format!(
            "{}: flipped a bit of the {kind} {} (of {owner}) at byte {} of {}: {:#04x} -> {:#04x}{note}",
            self.stage,
            self.short(&path),
            flip.offset,
            std::fs::metadata(&path).map_or(0, |m| m.len()),
            flip.original,
            flip.flipped
        ));
        let mark = self.log.mark();
        self.start_server();
        let reported = self.verify(Mode::Corruption).await;
        // The log lines of the reads just done (the reader thread may lag a little).
        tokio::time::sleep(Duration::from_millis(200)).await;
        let warnings: Vec<String> = self
            .log
            .since(mark)
            .into_iter()
            .filter(|l| is_warning(l) && !l.contains("TESTING ONLY"))
            .collect();
        let noticed = warnings.iter().any(|l| {
            ["damaged", "unusable", "unreadable", "corrupt", "checksum"]
                .iter()
                .any(|word| l.contains(word))
        });
        let state = flip.state();
        let outcome = if !reported.is_empty() {
            Noticed::Reported
        } else if noticed {
            Noticed::Healed
        } else {
            Noticed::NotRead
        };
        self.counts.corruptions[outcome as usize] += 1;
        self.kill_server().await;
        let restored = flip.restore();
        self.shared.log(&format!(
            "{}: {} (reported by {:?}; the file: {state}; the server's WARN and ERROR lines: \
             {warnings:?}); byte: {restored}",
            self.stage,
            NOTICED[outcome as usize],
            reported.iter().map(|&c| COLLECTIONS[c]).collect::<Vec<_>>(),
        ));
        self.start_server();
        self.verify(Mode::Normal).await;
    }

    async fn race(&mut self) {
        self.shared.active.fetch_or(1 << RACE, Ordering::Relaxed);
        self.sleep_ms(300, 1500).await; // the writers write to `race` meanwhile
        let (status, body) = self
            .call(Method::DELETE, "/api/v1/collections/race", None)
            .await;
        if status != 200 {
            self.shared.unexpected(
                format!("{}: DELETE race: {status} {body}", self.stage),
                false,
            );
        } else {
            let _paused = self.pause().await;
            for model in &self.shared.models {
                model.lock().unwrap().reset(RACE);
            }
            self.create(RACE).await;
        }
        self.sleep_ms(1000, 3000).await; // the writers write to the new `race`
        let _paused = self.pause().await;
        self.verify(Mode::Normal).await;
    }

    /// A path relative to the tmpfs or the store, for log lines.
    fn short(&self, path: &Path) -> String {
        if let Ok(p) = path.strip_prefix(self.fs.path()) {
            return p.display().to_string();
        }
        if let Ok(p) = path.strip_prefix(self.store.path()) {
            return format!("<store>/{}", p.display());
        }
        path.display().to_string()
    }

    /// Checks the list of collections; returns the ids it lists as unavailable.
    async fn check_list(&self, mode: Mode) -> BTreeSet<String> {
        let (status, body) = self.call(Method::GET, "/api/v1/collections", None).await;
        let rows = match body["collections"].as_array() {
            Some(rows) if status == 200 => rows.clone(),
            _ => {
                let stage = &self.stage;
                self.shared.unexpected(
                    format!("{stage}: GET /api/v1/collections: {status} {body}"),
                    false,
                );
                return BTreeSet::new();
            }
        };
        let mut unavailable = BTreeSet::new();
        for row in &rows {
            if row["status"] != "ready" {
                unavailable.insert(row["id"].as_str().unwrap_or("").to_string());
                if mode == Mode::Normal {
                    let stage = &self.stage;
                    self.shared
                        .unexpected(format!("{stage}: listed as not ready: {row}"), false);
                }
            }
        }
        for name in COLLECTIONS {
            if mode == Mode::Normal && !rows.iter().any(|r| r["name"] == name) {
                let stage = &self.stage;
                self.shared
                    .unexpected(format!("{stage}: {name} is not listed: {body}"), false);
            }
        }
        unavailable
    }

    /// With the writers paused: reads every document and checks it against its writer's
    /// model, then settles the model to what was read. Returns the collections that reported
    /// damage (only allowed in [`Mode::Corruption`]).
    async fn verify(&mut self, mode: Mode) -> BTreeSet<usize> {
        self.check_alive();
        let unavailable_ids = self.check_list(mode).await;
        let base = self.shared.url();
        let http = self.shared.http.clone();
        let mut seen: Vec<(Key, Seen)> = futures::stream::iter(Key::all())
            .map(|key| {
                let (http, base) = (http.clone(), base.clone());
                async move { (key, read_doc(&http, &base, key).await) }
            })
            .buffer_unordered(READS_IN_FLIGHT)
            .collect()
            .await;
        seen.sort_by_key(|(key, _)| *key);
        self.counts.reads += seen.len() as u64;
        let (lost, resurrected, wrong) = (
            self.counts.lost,
            self.counts.resurrected,
            self.counts.served_wrong,
        );
        let mut reported = BTreeSet::new();
        let mut printed = 0;
        for (key, seen) in seen {
            let problem = match seen {
                Seen::Doc(v) => self.judge(key, Some(v)),
                Seen::Absent => self.judge(key, None),
                Seen::Garbled(why) => {
                    self.counts.served_wrong += 1;
                    let model = self.shared.models[key.writer].lock().unwrap();
                    let doc = &model.docs[key.coll][key.n as usize];
                    Some(format!(
                        "served wrong: {key}: expected {}, observed {why}",
                        doc.describe()
                    ))
                }
                Seen::Unavailable(_) if mode == Mode::Corruption => {
                    reported.insert(key.coll);
                    None
                }
                Seen::NoCollection
                    if mode == Mode::Corruption
                        && unavailable_ids.contains(&self.ids[key.coll]) =>
                {
                    reported.insert(key.coll); // its manifest is unreadable: listed by id
                    None
                }
                Seen::Unavailable(why) => {
                    self.shared.count_unexpected();
                    Some(format!("unexpected: {key}: collection_unavailable: {why}"))
                }
                Seen::NoCollection => {
                    self.shared.count_unexpected();
                    Some(format!("unexpected: {key}: collection_not_found"))
                }
                Seen::Error(why) => {
                    self.shared.count_unexpected();
                    Some(format!("unexpected: {why}"))
                }
            };
            if let Some(problem) = problem {
                let quiet = printed >= PRINTED_PER_VERIFY;
                self.shared
                    .fail(format!("{}: {problem}", self.stage), quiet);
                printed += 1;
            }
        }
        if printed > PRINTED_PER_VERIFY {
            self.shared.log(&format!(
                "{}: ... and {} more failures in this verification",
                self.stage,
                printed - PRINTED_PER_VERIFY
            ));
        }
        let moves = self.tier_moves().await;
        self.shared.log(&format!(
            "{}: verified {} documents{}: lost {}, resurrected {}, served wrong {}; \
             {} tier moves so far",
            self.stage,
            Key::all().len(),
            if mode == Mode::Corruption {
                " (corruption mode)"
            } else {
                ""
            },
            self.counts.lost - lost,
            self.counts.resurrected - resurrected,
            self.counts.served_wrong - wrong,
            self.counts.tier_moves_before + moves,
        ));
        reported
    }

    /// Checks one observed state against the model and settles the model to it; returns what
    /// is wrong, if anything.
    fn judge(&mut self, key: Key, observed: DocState) -> Option<String> {
        let mut model = self.shared.models[key.writer].lock().unwrap();
        let doc = &mut model.docs[key.coll][key.n as usize];
        let problem = if doc.allows(observed) {
            None
        } else {
            let kind = match observed {
                None => {
                    self.counts.lost += 1;
                    "lost"
                }
                Some(_) if !doc.allows_presence() => {
                    self.counts.resurrected += 1;
                    "resurrected"
                }
                Some(_) => {
                    self.counts.served_wrong += 1;
                    "served wrong (another version)"
                }
            };
            Some(format!(
                "{kind}: {key}: expected {}, observed {}",
                doc.describe(),
                show(observed)
            ))
        };
        doc.settle(observed);
        problem
    }

    fn summary(&self, seed: u64) -> String {
        let c = &self.counts;
        let writes = self.shared.total_writes();
        let faults: Vec<String> = FAULTS
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let detail = match f {
                    Fault::Disk => format!(
                        " ({} {}, {} {})",
                        DISK_KINDS[0], c.disk_faults[0], DISK_KINDS[1], c.disk_faults[1]
                    ),
                    Fault::Corruption => format!(
                        " ({} {}, {} {}, {} {})",
                        NOTICED[0],
                        c.corruptions[0],
                        NOTICED[1],
                        c.corruptions[1],
                        NOTICED[2],
                        c.corruptions[2]
                    ),
                    _ => String::new(),
                };
                format!("{} {}{detail}", f.name(), c.faults[i])
            })
            .collect();
        let during: Vec<String> = (0..2)
            .map(|k| {
                format!(
                    "{} in {} {} disk faults ({} with 507s)",
                    c.disk_507s[k], c.disk_faults[k], DISK_KINDS[k], c.disk_faults_with_507[k],
                )
            })
            .collect();
        format!(
            "fault soak: {} s, seed {seed}, faults: {}; writes acked {}, refused {}, ambiguous {}; \
             507s: {}, {} outside disk faults; verified {} document reads: lost {}, \
             resurrected {}, served wrong {}; unexpected errors {}; writes answered 503 \
             collection_unavailable with no fault in progress {}",
            self.shared.started.elapsed().as_secs(),
            faults.join(", "),
            writes.acked,
            writes.refused,
            writes.ambiguous,
            during.join(", "),
            writes.full() - c.disk_507s.iter().sum::<u64>(),
            c.reads,
            c.lost,
            c.resurrected,
            c.served_wrong,
            self.shared.unexpected.load(Ordering::Relaxed),
            self.shared.unprovoked.load(Ordering::Relaxed),
        )
    }

    /// After a long run: every kind of fault happened at least twice, each kind of disk fault
    /// got 507s at least once.
    fn check_coverage(&self) {
        let c = &self.counts;
        let mut missing: Vec<String> = FAULTS
            .iter()
            .zip(c.faults)
            .filter(|(_, n)| *n < 2)
            .map(|(f, n)| format!("{} faults: {n}", f.name()))
            .collect();
        missing.extend(
            (0..2)
                .filter(|&k| c.disk_faults_with_507[k] == 0)
                .map(|k| format!("{} disk faults with a 507: 0", DISK_KINDS[k])),
        );
        if !missing.is_empty() {
            self.shared.fail(
                format!("too little happened: {}", missing.join(", ")),
                false,
            );
        }
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ordinary_faults_never_lose_resurrect_or_serve_wrong_documents() {
    let secs = env_u64("AKIDB_SOAK_SECS").unwrap_or(40);
    let seed = env_u64("AKIDB_SOAK_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            % 1_000_000_000
    });
    eprintln!("fault soak: {secs} s, seed {seed} (AKIDB_SOAK_SEED={seed} replays it)");
    let mut soak = Soak::new(seed).await;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(writer(soak.shared.clone(), w, soak.rng.next())))
        .collect();

    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut bag: Vec<Fault> = Vec::new();
    for number in 1.. {
        soak.choose_active();
        let quiet = Duration::from_millis(soak.rng.range(8000, 20000));
        let left = deadline.saturating_duration_since(Instant::now());
        if quiet >= left {
            tokio::time::sleep(left).await;
            break;
        }
        tokio::time::sleep(quiet).await;
        if bag.is_empty() {
            // Each kind once per round, in a seeded order.
            bag = FAULTS.to_vec();
            for i in (1..bag.len()).rev() {
                bag.swap(i, soak.rng.below(i as u64 + 1) as usize);
            }
        }
        let fault = bag.pop().unwrap();
        soak.stage = format!("fault {number} ({})", fault.name());
        let active: Vec<&str> = (0..COLLECTIONS.len())
            .filter(|c| soak.shared.active.load(Ordering::Relaxed) & (1 << c) != 0)
            .map(|c| COLLECTIONS[c])
            .collect();
        soak.shared
            .log(&format!("{}: begins (writing to {active:?})", soak.stage));
        soak.run(fault).await;
        soak.counts.faults[FAULTS.iter().position(|f| *f == fault).unwrap()] += 1;
    }

    soak.shared.stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    soak.stage = "final".into();
    soak.verify(Mode::Normal).await;

    if secs >= 300 {
        soak.check_coverage();
    }
    let c = &soak.counts;
    eprintln!(
        "fault soak details: {} server starts; {} tier moves; outages with /ready degraded: {} \
         of {}; 507s by message: {} {}, {} {}",
        c.restarts,
        c.tier_moves_before + soak.tier_moves().await,
        c.degraded_seen,
        c.faults[2],
        DISK_KINDS[0],
        soak.shared.total_writes().full[0],
        DISK_KINDS[1],
        soak.shared.total_writes().full[1],
    );
    eprintln!("writes answered other than 200:");
    for (kind, (n, first)) in soak.shared.other_answers.lock().unwrap().iter() {
        eprintln!("  {n:>6} × {kind} ({first})");
    }
    eprintln!("the server's WARN and ERROR lines:");
    for (message, n) in soak.log.warnings.lock().unwrap().iter() {
        eprintln!("  {n:>6} × {message}");
    }
    let summary = soak.summary(seed);
    eprintln!("{summary}");
    let failures = soak.shared.failures.lock().unwrap().clone();
    if !failures.is_empty() {
        eprintln!("{} failures, the first ones:", failures.len());
        for f in failures.iter().take(50) {
            eprintln!("  {f}");
        }
    }
    assert_eq!(
        (
            c.lost,
            c.resurrected,
            c.served_wrong,
            soak.shared.unexpected.load(Ordering::Relaxed)
        ),
        (0, 0, 0, 0),
        "{summary} (seed {seed})"
    );
    assert!(failures.is_empty(), "{failures:?}");
}

//! The run: check the server, set up and preload collections, drive the load (open or closed
//! loop), sample the server process, and build the report.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use akidb_api::client::Client;
use akidb_api::{
    CreateCollectionRequest, DocumentIn, Metric, SearchRequest, SearchResponse, TierStatus,
    UpsertRequest, UpsertResponse,
};
use anyhow::{Context, Result, anyhow, bail};
use tokio::sync::{Semaphore, oneshot};

use crate::cli::{Args, resolve};
use crate::dataset::{Dataset, recall};
use crate::faults::{self, report::FaultsReport};
use crate::mix::{Mix, Op};
use crate::procmon::{self, ProcessSummary, Sample};
use crate::raw::{Raw, collection_path};
use crate::report::{
    CollectionReport, OpReport, PreloadReport, RecallReport, RepeatsReport, Report, ScheduleReport,
    op_reports, totals_of,
};
use crate::rng::Rng;
use crate::scenario::{Load, Scenario};
use crate::schedule::RateProfile;
use crate::stats::{OpStats, Outcome, check_thresholds_over_repeats};
use crate::tiered::Tiered;
use crate::zipf::Zipf;

/// Vectors per preload request.
pub const PRELOAD_BATCH: usize = 1000;
/// An open-loop request sent later than this after its due time counts as late.
pub const LATE_AFTER: Duration = Duration::from_millis(5);
/// How long the reachability check (`GET /health`) may take.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

pub const EXIT_ERROR: u8 = 1;
pub const EXIT_UNAVAILABLE: u8 = 2;
pub const EXIT_THRESHOLD: u8 = 3;

/// Where vectors come from.
enum Source {
    Random { dim: usize },
    Dataset { data: Arc<Dataset>, loaded: usize },
}

/// What every request needs: the client, the collections, the vectors.
struct Work {
    /// Raw JSON requests, so the `Retry-After` of an error answer is seen.
    raw: Raw,
    names: Vec<String>,
    /// `tiered`: collections are picked Zipf-like by index; otherwise uniformly.
    zipf: Option<Zipf>,
    mix: Mix,
    seed: u64,
    k: usize,
    insert_batch: usize,
    source: Source,
    /// Dataset runs with valid ground truth: the exact top-k per query.
    truth: Option<Vec<Option<Vec<u32>>>>,
}

impl Work {
    /// Request `i`'s operation and its private random stream (deterministic in seed and i).
    fn plan(&self, i: u64) -> (Op, Rng) {
        let mut rng = Rng::derive(self.seed, 0x6F70, i);
        (self.mix.pick(rng.next_u64()), rng)
    }

    async fn execute(&self, op: Op, mut rng: Rng, i: u64) -> Outcome {
        let c = match &self.zipf {
            Some(z) => z.pick(rng.next_u64()),
            None => rng.below(self.names.len()),
        };
        self.execute_on(op, c, rng, i).await
    }

    /// Request `i`'s operation `op` on collection `c`.
    async fn execute_on(&self, op: Op, c: usize, mut rng: Rng, i: u64) -> Outcome {
        let name = &self.names[c];
        match op {
            Op::Search => {
                let (vector, truth) = match &self.source {
                    Source::Random { dim } => (rng.vector(*dim), None),
                    Source::Dataset { data, .. } => {
                        let q = rng.below(data.queries.len());
                        let truth = self.truth.as_ref().and_then(|t| t[q].as_ref());
                        (data.queries.row(q).to_vec(), truth)
                    }
                };
                let req = SearchRequest {
                    vector,
                    k: self.k,
                    ef: None,
                    filter: None,
                    exact: false,
                    include_vector: false,
                    include_metadata: false,
                };
                let path = collection_path(name, "/search");
                match self.raw.post::<_, SearchResponse>(&path, &req).await {
                    Ok(resp) if resp.results.len() > self.k => Outcome::Transport("decode"),
                    Ok(resp) => Outcome::Ok {
                        recall: truth.map(|t| {
                            let ids: Vec<String> = resp.results.into_iter().map(|h| h.id).collect();
                            recall(&ids, t)
                        }),
                    },
                    Err(f) => f.outcome(),
                }
            }
            Op::Insert => {
                let documents: Vec<DocumentIn> = (0..self.insert_batch)
                    .map(|b| match &self.source {
                        // Random mode: new documents (the collections grow).
                        Source::Random { dim } => DocumentIn {
                            id: Some(format!("load-extra-{i}-{b}")),
                            vector: rng.vector(*dim),
                            metadata: None,
                        },
                        // Dataset mode: re-upsert a base vector under its own id, so the
                        // collection keeps exactly the base set and the ground truth stays valid.
                        Source::Dataset { data, loaded } => {
                            let j = rng.below(*loaded);
                            DocumentIn {
                                id: Some(j.to_string()),
                                vector: data.base.row(j).to_vec(),
                                metadata: None,
                            }
                        }
                    })
                    .collect();
                let n = documents.len() as u64;
                let path = collection_path(name, "/documents");
                let req = UpsertRequest { documents };
                match self.raw.post::<_, UpsertResponse>(&path, &req).await {
                    Ok(resp) if resp.upserted == n => Outcome::Ok { recall: None },
                    Ok(_) => Outcome::Transport("decode"),
                    Err(f) => f.outcome(),
                }
            }
            Op::Tier => tier_op(&self.raw, name).await,
        }
    }
}

/// A "tier" operation: a tier status read, `GET /api/v1/collections/{name}/tier`. It reads
/// where the data is without counting as an access, so it never moves the collection itself.
async fn tier_op(raw: &Raw, name: &str) -> Outcome {
    match raw.get::<TierStatus>(&collection_path(name, "/tier")).await {
        Ok(_) => Outcome::Ok { recall: None },
        Err(f) => f.outcome(),
    }
}

/// The measured phases: `repeats` of `duration_secs` back to back after `warmup_secs`.
#[derive(Debug, Clone, Copy)]
pub struct Phases {
    pub warmup_secs: f64,
    pub duration_secs: f64,
    pub repeats: usize,
}

impl Phases {
    /// The repeat (0-based) a time `t_secs` from the start of the run falls in; `None` during
    /// the warm-up. Times past the last repeat count in the last one (a closed-loop request
    /// that started before the end and finished after it).
    pub fn repeat_at(&self, t_secs: f64) -> Option<usize> {
        if t_secs < self.warmup_secs {
            return None;
        }
        let r = ((t_secs - self.warmup_secs) / self.duration_secs).floor() as usize;
        Some(r.min(self.repeats - 1))
    }

    /// Warm-up plus every repeat, seconds.
    pub fn total_secs(&self) -> f64 {
        self.warmup_secs + self.measured_secs()
    }

    /// Every repeat together, seconds.
    pub fn measured_secs(&self) -> f64 {
        self.duration_secs * self.repeats as f64
    }
}

/// Counters shared by the request tasks, the progress line and the report.
struct Shared {
    /// Per repeat (index 0 for a single run).
    stats: Mutex<Vec<BTreeMap<Op, OpStats>>>,
    done: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    in_flight: AtomicU64,
    scheduled_measured: AtomicU64,
    sent_measured: AtomicU64,
    late: AtomicU64,
    max_lag_us: AtomicU64,
}

impl Shared {
    fn new(ops: &[Op], repeats: usize) -> Shared {
        let per_repeat: BTreeMap<Op, OpStats> =
            ops.iter().map(|&o| (o, OpStats::default())).collect();
        Shared {
            stats: Mutex::new(vec![per_repeat; repeats]),
            done: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            scheduled_measured: AtomicU64::new(0),
            sent_measured: AtomicU64::new(0),
            late: AtomicU64::new(0),
            max_lag_us: AtomicU64::new(0),
        }
    }

    /// `repeat`: the measured repeat the request belongs to, `None` in the warm-up.
    fn record(&self, op: Op, repeat: Option<usize>, latency: Duration, outcome: &Outcome) {
        self.done.fetch_add(1, Ordering::Relaxed);
        if !matches!(outcome, Outcome::Ok { .. }) {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(r) = repeat {
            let mut stats = self.stats.lock().expect("stats lock");
            stats[r].entry(op).or_default().record(latency, outcome);
        }
    }

    fn record_dropped(&self, op: Op, repeat: Option<usize>) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        if let Some(r) = repeat {
            let mut stats = self.stats.lock().expect("stats lock");
            stats[r].entry(op).or_default().dropped += 1;
        }
    }
}

/// Open loop: request i is due at `start + profile.due(i)`; the generator never waits for
/// answers, and latency runs from the due time. At most `max_in_flight` requests are pending;
/// a request due while the cap is reached is dropped and counted.
async fn open_loop(
    work: Arc<Work>,
    shared: Arc<Shared>,
    profile: RateProfile,
    start: Instant,
    phases: Phases,
    max_in_flight: usize,
) {
    let sem = Arc::new(Semaphore::new(max_in_flight));
    let mut i = 0u64;
    while let Some(due_secs) = profile.due(i) {
        let due = start + Duration::from_secs_f64(due_secs);
        tokio::time::sleep_until(due.into()).await;
        // Warm-up or measured (and which repeat) is decided by the due time.
        let repeat = phases.repeat_at(due_secs);
        let measured = repeat.is_some();
        let (op, rng) = work.plan(i);
        if measured {
            shared.scheduled_measured.fetch_add(1, Ordering::Relaxed);
            let lag = Instant::now().saturating_duration_since(due);
            if lag > LATE_AFTER {
                shared.late.fetch_add(1, Ordering::Relaxed);
            }
            shared
                .max_lag_us
                .fetch_max(lag.as_micros() as u64, Ordering::Relaxed);
        }
        match sem.clone().try_acquire_owned() {
            Ok(permit) => {
                if measured {
                    shared.sent_measured.fetch_add(1, Ordering::Relaxed);
                }
                shared.in_flight.fetch_add(1, Ordering::Relaxed);
                let (work, shared) = (work.clone(), shared.clone());
                tokio::spawn(async move {
                    let outcome = work.execute(op, rng, i).await;
                    let latency = Instant::now().saturating_duration_since(due);
                    shared.record(op, repeat, latency, &outcome);
                    shared.in_flight.fetch_sub(1, Ordering::Relaxed);
                    drop(permit);
                });
            }
            Err(_) => shared.record_dropped(op, repeat),
        }
        i += 1;
    }
    // Every request has a timeout, so all permits come back.
    let _ = sem.acquire_many(max_in_flight as u32).await;
}

/// Closed loop: `workers` tasks send back to back until the end of the last repeat; latency
/// runs from the send.
async fn closed_loop(
    work: Arc<Work>,
    shared: Arc<Shared>,
    workers: usize,
    start: Instant,
    phases: Phases,
) {
    let end = start + Duration::from_secs_f64(phases.total_secs());
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (work, shared, next) = (work.clone(), shared.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let (op, rng) = work.plan(i);
                shared.in_flight.fetch_add(1, Ordering::Relaxed);
                let outcome = work.execute(op, rng, i).await;
                shared.in_flight.fetch_sub(1, Ordering::Relaxed);
                // A request belongs to the measured phase (and the repeat) it ends in: a request
                // that started in the warm-up and hung into the measured phase must show up.
                let ended = Instant::now();
                let repeat = phases.repeat_at(ended.duration_since(start).as_secs_f64());
                shared.record(op, repeat, ended.duration_since(t0), &outcome);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// Samples RSS/CPU of the server (when known) and of this process once a second, and prints
/// the progress line, until `stop` fires.
async fn monitor(
    server_pid: Option<u32>,
    shared: Arc<Shared>,
    start: Instant,
    phases: Phases,
    mut stop: oneshot::Receiver<()>,
) -> (Vec<Sample>, Option<String>, Vec<Sample>, Option<String>) {
    let clk = procmon::clock_ticks_per_sec();
    let server_dir = server_pid.map(|p| Path::new("/proc").join(p.to_string()));
    let self_dir = Path::new("/proc/self").to_path_buf();
    let mut server = (Vec::new(), None::<String>, None::<(Instant, u64)>);
    let mut own = (Vec::new(), None::<String>, None::<(Instant, u64)>);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last = (start, 0u64);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut stop => break,
        }
        let now = Instant::now();
        let t = now.duration_since(start).as_secs_f64();
        let repeat = phases.repeat_at(t);
        let measured = repeat.is_some() && t <= phases.total_secs();
        for (dir, st) in [
            (server_dir.as_deref(), &mut server),
            (Some(&*self_dir), &mut own),
        ] {
            let Some(dir) = dir else { continue };
            if st.1.is_some() {
                continue; // stopped after an error (process gone)
            }
            match procmon::read_process(dir) {
                Ok(r) => {
                    let cpu = match (st.2, clk) {
                        (Some((t, ticks)), Some(clk)) => Some(procmon::cpu_percent(
                            ticks,
                            r.cpu_ticks,
                            clk,
                            now.duration_since(t).as_secs_f64(),
                        )),
                        _ => None,
                    };
                    st.2 = Some((now, r.cpu_ticks));
                    st.0.push(Sample {
                        t_secs: t,
                        rss_mib: r.rss_bytes as f64 / (1024.0 * 1024.0),
                        cpu_percent: cpu,
                        measured,
                    });
                }
                Err(e) => st.1 = Some(format!("process gone or unreadable: {e}")),
            }
        }
        let done = shared.done.load(Ordering::Relaxed);
        let dt = now.duration_since(last.0).as_secs_f64();
        // The first tick fires at once: a rate over a few milliseconds means nothing.
        if dt < 0.5 {
            continue;
        }
        let rate = (done - last.1) as f64 / dt;
        last = (now, done);
        let phase = match repeat {
            None => "warm-up".to_string(),
            Some(_) if phases.repeats == 1 => "measured".to_string(),
            Some(r) => format!("repeat {}/{}", r + 1, phases.repeats),
        };
        eprintln!(
            "[akidb-load] {t:6.1}s {phase:8} {rate:8.1} req/s  done {done}  errors {}  dropped {}  in-flight {}",
            shared.failed.load(Ordering::Relaxed),
            shared.dropped.load(Ordering::Relaxed),
            shared.in_flight.load(Ordering::Relaxed),
        );
    }
    (server.0, server.1, own.0, own.1)
}

/// Creates the collection or checks that the existing one has the right dimension.
async fn ensure_collection(client: &Client, name: &str, dim: usize) -> Result<bool> {
    let req = CreateCollectionRequest {
        name: name.to_string(),
        dimension: dim,
        metric: Metric::Cosine,
        index: None,
    };
    match client.create_collection(&req).await {
        Ok(info) if info.dimension == dim => Ok(true),
        Ok(info) => bail!(
            "the server created {name} with dimension {} although {dim} was asked",
            info.dimension
        ),
        Err(e) if e.code() == Some("collection_exists") => {
            let info = client
                .get_collection(name)
                .await
                .with_context(|| format!("reading the existing collection {name}"))?;
            if info.dimension != dim {
                bail!(
                    "wrong dimension: collection {name} already exists with dimension {}, but this \
                     run uses dimension {dim}; delete it (DELETE /api/v1/collections/{name}) or \
                     choose a matching --dimension/--dataset",
                    info.dimension
                );
            }
            if info.status != "ready" {
                bail!(
                    "collection {name} exists but is {}: {}",
                    info.status,
                    info.reason.unwrap_or_default()
                );
            }
            Ok(false)
        }
        Err(e) => Err(anyhow!(e).context(format!("creating collection {name}"))),
    }
}

async fn preload(
    client: &Client,
    name: &str,
    c: usize,
    n: usize,
    seed: u64,
    src: &Source,
) -> Result<()> {
    for start in (0..n).step_by(PRELOAD_BATCH) {
        let documents: Vec<DocumentIn> = (start..(start + PRELOAD_BATCH).min(n))
            .map(|j| match src {
                Source::Random { dim } => DocumentIn {
                    id: Some(format!("base-{j}")),
                    vector: Rng::derive(seed, c as u64, j as u64).vector(*dim),
                    metadata: None,
                },
                Source::Dataset { data, .. } => DocumentIn {
                    id: Some(j.to_string()),
                    vector: data.base.row(j).to_vec(),
                    metadata: None,
                },
            })
            .collect();
        let sent = documents.len() as u64;
        match client.upsert(name, &UpsertRequest { documents }).await {
            Ok(r) if r.upserted == sent => {}
            Ok(r) => bail!(
                "preload of {name}: sent {sent} documents, the server upserted {}",
                r.upserted
            ),
            Err(e) if e.code() == Some("invalid_argument") => bail!(
                "the server rejected the preload of {name} (wrong dimension or invalid vectors?): {e}"
            ),
            Err(e) => {
                return Err(anyhow!(e).context(format!("preloading {name} rows {start}..")));
            }
        }
    }
    Ok(())
}

async fn delete_collections(client: &Client, names: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    for name in names {
        match client.delete_collection(name).await {
            Ok(()) => {}
            Err(e) if e.code() == Some("collection_not_found") => {}
            Err(e) => problems.push(format!("could not delete {name}: {e}")),
        }
    }
    problems
}

/// Entry point: returns the process exit code.
pub fn main_with(args: Args) -> ExitCode {
    if let Err(msg) = args.scenario.availability() {
        eprintln!("akidb-load: {msg}");
        return ExitCode::from(EXIT_UNAVAILABLE);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("akidb-load: error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("akidb-load: error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

async fn run(args: Args) -> Result<ExitCode> {
    let mut cfg = resolve(&args)?;
    let mut notes = vec![
        "tier operations are tier status reads through the tier API (GET \
         /api/v1/collections/{name}/tier); the server does not count them as accesses, so they \
         never move a collection themselves."
            .to_string(),
    ];

    // Vectors: the dataset (checked before anything touches the server) or seeded random.
    let dataset = match &cfg.dataset {
        Some(path) => Some(Arc::new(
            Dataset::load(path).with_context(|| format!("--dataset {}", path.display()))?,
        )),
        None => None,
    };
    let dim = match (&dataset, cfg.dimension) {
        (Some(d), Some(explicit)) if explicit != d.dim() => bail!(
            "wrong dimension: --dimension {explicit} but the dataset {} has dimension {}",
            d.path.display(),
            d.dim()
        ),
        (Some(d), _) => d.dim(),
        (None, Some(dim)) => dim,
        (None, None) => unreachable!("resolve sets the dimension without a dataset"),
    };
    cfg.dimension = Some(dim);
    let loaded = cfg.vectors_per_collection;
    if let Some(d) = &dataset
        && loaded > d.base.len()
    {
        bail!(
            "--vectors-per-collection {loaded} exceeds the {} base vectors of {}",
            d.base.len(),
            d.path.display()
        );
    }

    // The server must be there before anything else happens.
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs_f64(cfg.request_timeout_secs))
        .connect_timeout(HEALTH_TIMEOUT)
        .build()
        .context("building the HTTP client")?;
    let raw = Raw::new(http.clone(), &cfg.url);
    let client = Client::with_http_client(http, &cfg.url);
    match tokio::time::timeout(HEALTH_TIMEOUT, client.health()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => bail!(
            "the server is not reachable at {}: GET /health failed: {e}",
            cfg.url
        ),
        Err(_) => bail!(
            "the server is not reachable at {}: GET /health did not answer within {:?}",
            cfg.url,
            HEALTH_TIMEOUT
        ),
    }

    // Which process to sample.
    let (server_pid, found_by, pid_problem) = match cfg.server_pid {
        Some(pid) if Path::new("/proc").join(pid.to_string()).is_dir() => {
            (Some(pid), "--server-pid", None)
        }
        Some(pid) => (
            None,
            "",
            Some(format!("--server-pid {pid}: no such process in /proc")),
        ),
        None => {
            let (host, port) = host_port(&cfg.url)?;
            match procmon::find_pid_by_addr(&host, port) {
                Ok(pid) => (Some(pid), "listening port", None),
                Err(e) => (None, "", Some(e)),
            }
        }
    };
    if let Some(p) = &pid_problem {
        eprintln!("akidb-load: warning: no server RSS/CPU sampling: {p}");
    }

    // Collections and preload.
    let names: Vec<String> = (0..cfg.collections)
        .map(|i| cfg.collection_name(i))
        .collect();
    let source = match &dataset {
        Some(d) => Source::Dataset {
            data: d.clone(),
            loaded,
        },
        None => Source::Random { dim },
    };
    let setup_started = Instant::now();
    let mut collections = Vec::new();
    let mut created_now = Vec::new();
    let setup = async {
        for (c, name) in names.iter().enumerate() {
            let created = ensure_collection(&client, name, dim).await?;
            if created {
                created_now.push(name.clone());
            }
            preload(&client, name, c, loaded, cfg.seed, &source).await?;
            let info = client.get_collection(name).await?;
            collections.push(CollectionReport {
                name: name.clone(),
                created,
                dimension: info.dimension,
                count_after_preload: info.count,
                deleted_at_end: false,
            });
            if names.len() <= 10 || (c + 1) % 10 == 0 {
                eprintln!("[akidb-load] preloaded {name}: {} documents", info.count);
            }
        }
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = setup {
        // Only what this run created: a pre-existing collection is never deleted on failure.
        if cfg.cleanup {
            delete_collections(&client, &created_now).await;
        }
        return Err(e);
    }
    let preload_secs = setup_started.elapsed().as_secs_f64();

    // Let the index absorb the preload, so searches measure HNSW rather than exact scans.
    let index_started = Instant::now();
    let pending = loop {
        let mut pending = 0;
        for name in &names {
            pending += client.get_collection(name).await?.index_pending;
        }
        if pending == 0 || index_started.elapsed().as_secs_f64() >= cfg.index_timeout_secs {
            break pending;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let index_wait_secs = index_started.elapsed().as_secs_f64();
    if pending > 0 {
        notes.push(format!(
            "{pending} preloaded vectors were still waiting for the index when the run started \
             (--index-timeout {} s); the server searches those exactly, which costs latency.",
            cfg.index_timeout_secs
        ));
    }

    // Recall: only valid while each collection holds exactly the first `loaded` base vectors.
    let mut recall_note = None;
    let truth = match &dataset {
        Some(d) if cfg.mix_parsed.weight(Op::Search) > 0 => {
            if let Some(c) = collections
                .iter()
                .find(|c| c.count_after_preload != loaded as u64)
            {
                recall_note = Some(format!(
                    "recall not checked: {} holds {} documents, not the {loaded} base vectors the \
                     ground truth assumes (a leftover collection? delete it)",
                    c.name, c.count_after_preload
                ));
                None
            } else if cfg.k > d.groundtruth.dim {
                recall_note = Some(format!(
                    "recall not checked: k = {} exceeds the {} neighbours in groundtruth.ivecs",
                    cfg.k, d.groundtruth.dim
                ));
                None
            } else {
                let t = d.truth_for(loaded, cfg.k);
                let usable = t.iter().filter(|x| x.is_some()).count();
                if usable < t.len() {
                    recall_note = Some(format!(
                        "{} of {} queries have fewer than k = {} ground-truth neighbours among the \
                         {loaded} loaded base vectors; their searches are not checked",
                        t.len() - usable,
                        t.len(),
                        cfg.k
                    ));
                }
                Some(t)
            }
        }
        _ => None,
    };
    if dataset.is_some() {
        notes.push(
            "dataset mode: inserts re-upsert base vectors under their own ids (the collection \
             keeps exactly the base set, so recall against groundtruth.ivecs stays valid); they \
             exercise the overwrite path, not collection growth."
                .into(),
        );
    }
    match cfg.load() {
        Load::Open { .. } => notes.push(format!(
            "open loop: latency runs from each request's scheduled time (coordinated omission \
             corrected); at most {} requests in flight, requests due beyond that are dropped and \
             count as failures.",
            cfg.max_in_flight
        )),
        Load::Closed { .. } => notes.push(
            "closed loop: latency runs from the send time and the rate adapts to the server \
             (service time, not corrected for coordinated omission); use --qps for latency \
             under a fixed arrival rate."
                .into(),
        ),
    }
    if cfg.repeat > 1 {
        notes.push(format!(
            "--repeat {}: one warm-up, then {} measured phases of {} s back to back against the \
             same collections (they keep growing with the inserts). Operations and totals above \
             cover all repeats together; the thresholds are checked against the median repeat \
             (each figure's median over the repeats).",
            cfg.repeat, cfg.repeat, cfg.duration_secs
        ));
    }
    notes.push(
        "the load generator runs on the same host as the server unless --url points elsewhere; \
         its own CPU use is reported below."
            .into(),
    );

    // The run.
    let ops = cfg.mix_parsed.ops();
    let phases = Phases {
        warmup_secs: cfg.warmup_secs,
        duration_secs: cfg.duration_secs,
        repeats: cfg.repeat,
    };
    let shared = Arc::new(Shared::new(&ops, phases.repeats));
    let work = Arc::new(Work {
        raw: raw.clone(),
        names: names.clone(),
        zipf: (cfg.scenario == Scenario::Tiered)
            .then(|| Zipf::new(names.len(), crate::tiered::split::ZIPF_EXPONENT)),
        mix: cfg.mix_parsed,
        seed: cfg.seed,
        k: cfg.k,
        insert_batch: cfg.insert_batch,
        source,
        truth,
    });

    // `tiered`: move the collections to their tiers and time the first search of each tier.
    let tiered = if cfg.scenario == Scenario::Tiered {
        let w = work.clone();
        let seed = cfg.seed;
        let first_search = async |c: usize| {
            w.execute_on(Op::Search, c, Rng::derive(seed, 0x6671, c as u64), 0)
                .await
        };
        match Tiered::prepare(&raw, &names, first_search).await {
            Ok(t) => Some(t),
            Err(e) => {
                if cfg.cleanup {
                    delete_collections(&client, &created_now).await;
                }
                return Err(e);
            }
        }
    } else {
        None
    };
    if tiered.is_some() {
        notes.push(format!(
            "tiered: requests pick collection i with weight 1/(i+1)^{} (Zipf), so the few hot \
             collections get most of them and the cold tail a few each; the server's promotion \
             rule decides how many of the tail end up hot (see Tiers).",
            crate::tiered::split::ZIPF_EXPONENT
        ));
    }
    // `failure-injection`: the object-store counters before the run; `/ready` during it.
    let injecting = cfg.scenario == Scenario::FailureInjection;
    let metrics_before = if injecting {
        Some(faults::read_metrics(&raw).await)
    } else {
        None
    };

    let started_unix_secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let start = Instant::now();
    let (stop_tx, stop_rx) = oneshot::channel();
    let mon = tokio::spawn(monitor(server_pid, shared.clone(), start, phases, stop_rx));
    let (probe_stop, probe) = if injecting {
        let (tx, rx) = oneshot::channel();
        let probe = tokio::spawn(faults::probe_ready(raw.clone(), start, rx));
        (Some(tx), Some(probe))
    } else {
        (None, None)
    };
    let profile = match cfg.load() {
        Load::Open { qps } => {
            let p = RateProfile::spike_repeated(
                qps,
                cfg.warmup_secs,
                cfg.duration_secs,
                cfg.spike_factor,
                phases.repeats,
            );
            open_loop(
                work.clone(),
                shared.clone(),
                p.clone(),
                start,
                phases,
                cfg.max_in_flight,
            )
            .await;
            Some(p)
        }
        Load::Closed { workers } => {
            closed_loop(work.clone(), shared.clone(), workers, start, phases).await;
            None
        }
    };
    let _ = stop_tx.send(());
    if let Some(tx) = probe_stop {
        let _ = tx.send(());
    }
    let (server_samples, server_err, own_samples, own_err) =
        mon.await.context("the monitor task failed")?;
    let ready = match probe {
        Some(p) => Some(p.await.context("the /ready probe task failed")?),
        None => None,
    };
    eprintln!(
        "[akidb-load] done in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let metrics_after = if injecting {
        Some(faults::read_metrics(&raw).await)
    } else {
        None
    };
    // Before the cleanup, which deletes the collections.
    let tiered = match tiered {
        Some(t) => Some(t.finish(&raw, &names, &mut notes).await),
        None => None,
    };

    // Cleanup.
    if cfg.cleanup {
        let problems = delete_collections(&client, &names).await;
        for c in &mut collections {
            c.deleted_at_end = !problems.iter().any(|p| p.contains(&c.name));
        }
        for p in problems {
            eprintln!("akidb-load: warning: {p}");
            notes.push(p);
        }
    }

    // The report.
    // `operations` and `totals` cover every repeat together; thresholds use the median repeat.
    let per_repeat = shared.stats.lock().expect("stats lock").clone();
    let mut stats: BTreeMap<Op, OpStats> = BTreeMap::new();
    for repeat in &per_repeat {
        for (op, s) in repeat {
            stats.entry(*op).or_default().merge(s);
        }
    }
    let all = totals_of(&stats);
    let measured_secs = phases.measured_secs();
    let operations = op_reports(&stats, measured_secs, &cfg.mix_parsed);
    let thresholds = check_thresholds_over_repeats(
        &per_repeat,
        cfg.max_p95_ms,
        cfg.max_p99_ms,
        cfg.max_error_rate,
    );
    let mut problems = Vec::new();
    if all.ok == 0 {
        problems.push(format!(
            "no request succeeded in the measured phase ({} attempted): the server stalled or \
             refused everything",
            all.attempted()
        ));
    } else if per_repeat.len() > 1 {
        for (r, repeat) in per_repeat.iter().enumerate() {
            let t = totals_of(repeat);
            if t.ok == 0 {
                problems.push(format!(
                    "no request succeeded in repeat {} of {} ({} attempted): the server stalled",
                    r + 1,
                    per_repeat.len(),
                    t.attempted()
                ));
            }
        }
    }
    let repeats = (per_repeat.len() > 1).then(|| {
        RepeatsReport::new(
            &per_repeat,
            cfg.warmup_secs,
            cfg.duration_secs,
            &cfg.mix_parsed,
        )
    });
    let passed = problems.is_empty() && thresholds.iter().all(|t| t.passed);
    let schedule = profile.map(|_| ScheduleReport {
        target_qps: cfg.qps.unwrap_or_default(),
        spike_factor: cfg.spike_factor,
        scheduled: shared.scheduled_measured.load(Ordering::Relaxed),
        sent: shared.sent_measured.load(Ordering::Relaxed),
        dropped: all.dropped,
        late: shared.late.load(Ordering::Relaxed),
        late_threshold_ms: LATE_AFTER.as_secs_f64() * 1000.0,
        max_send_lag_ms: shared.max_lag_us.load(Ordering::Relaxed) as f64 / 1000.0,
        max_in_flight: cfg.max_in_flight,
    });
    let recall = dataset.as_ref().map(|_| {
        let s = stats.get(&Op::Search);
        let n = s.map_or(0, |s| s.recall_n);
        RecallReport {
            k: cfg.k,
            checked: n,
            mean: s.filter(|_| n > 0).map(|s| s.recall_sum / n as f64),
            min: s.filter(|_| n > 0).map(|s| s.recall_min),
            note: recall_note.clone(),
        }
    });
    let server_process = match server_pid {
        Some(pid) => ProcessSummary::from_samples(pid, found_by, server_samples, server_err),
        None => ProcessSummary::unavailable(
            pid_problem.unwrap_or_else(|| "server process not found".into()),
        ),
    };
    let generator_process =
        ProcessSummary::from_samples(std::process::id(), "self", own_samples, own_err);
    let failure_injection = match (ready, metrics_before, metrics_after) {
        (Some(ready), Some(before), Some(after)) => Some(FaultsReport::new(
            ready,
            before,
            after,
            all.by_status.get(&503).copied().unwrap_or(0),
            all.retry_after,
        )),
        _ => None,
    };
    let report = Report {
        tool: "akidb-load",
        version: env!("CARGO_PKG_VERSION"),
        started_unix_secs,
        dimension: dim,
        vector_source: match &dataset {
            Some(d) => format!(
                "dataset {} (first {loaded} of {} base vectors, {} queries)",
                d.path.display(),
                d.base.len(),
                d.queries.len()
            ),
            None => format!("seeded random, uniform in [-1, 1), seed {}", cfg.seed),
        },
        config: cfg.clone(),
        measured_secs,
        totals: OpReport::new(&all, measured_secs, None),
        operations,
        repeats,
        schedule,
        recall,
        preload: PreloadReport {
            vectors: (loaded * names.len()) as u64,
            batch: PRELOAD_BATCH,
            secs: preload_secs,
            index_wait_secs,
            index_pending_at_start: pending,
        },
        collections,
        tiered,
        failure_injection,
        server_process,
        generator_process,
        thresholds,
        problems,
        passed,
        notes,
    };
    let md = report.to_markdown();
    print!("{md}");
    if let Some(path) = &args.report_json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("writing --report-json {}", path.display()))?;
    }
    if let Some(path) = &args.report_md {
        std::fs::write(path, &md)
            .with_context(|| format!("writing --report-md {}", path.display()))?;
    }
    if !passed {
        for p in &report.problems {
            eprintln!("akidb-load: run failed: {p}");
        }
        for t in report.thresholds.iter().filter(|t| !t.passed) {
            eprintln!("akidb-load: threshold failed: {}", t.describe());
        }
        return Ok(ExitCode::from(EXIT_THRESHOLD));
    }
    Ok(ExitCode::SUCCESS)
}

/// `http://host:port/...` -> (host, port); the port defaults to 80/443.
pub fn host_port(url: &str) -> Result<(String, u16)> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| anyhow!("--url {url}: no scheme"))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let default_port = if scheme == "https" { 443 } else { 80 };
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| anyhow!("--url {url}: bad IPv6 host"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => p
                .parse()
                .with_context(|| format!("--url {url}: bad port"))?,
            None => default_port,
        };
        return Ok((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => Ok((
            h.to_string(),
            p.parse()
                .with_context(|| format!("--url {url}: bad port"))?,
        )),
        None => Ok((authority.to_string(), default_port)),
    }
}

#[cfg(test)]
mod tests {
    use super::{Phases, host_port};

    #[test]
    fn times_map_to_repeats() {
        let p = Phases {
            warmup_secs: 2.0,
            duration_secs: 10.0,
            repeats: 3,
        };
        assert_eq!(p.repeat_at(0.0), None);
        assert_eq!(p.repeat_at(1.999), None);
        assert_eq!(p.repeat_at(2.0), Some(0));
        assert_eq!(p.repeat_at(11.999), Some(0));
        assert_eq!(p.repeat_at(12.0), Some(1));
        assert_eq!(p.repeat_at(31.9), Some(2));
        // A closed-loop request ending after the last repeat counts in the last one.
        assert_eq!(p.repeat_at(40.0), Some(2));
        assert_eq!((p.total_secs(), p.measured_secs()), (32.0, 30.0));
        let single = Phases { repeats: 1, ..p };
        assert_eq!(single.repeat_at(100.0), Some(0));
    }

    #[test]
    fn splits_urls() {
        assert_eq!(
            host_port("http://127.0.0.1:8080").unwrap(),
            ("127.0.0.1".into(), 8080)
        );
        assert_eq!(
            host_port("http://localhost/x").unwrap(),
            ("localhost".into(), 80)
        );
        assert_eq!(host_port("http://[::1]:9/").unwrap(), ("::1".into(), 9));
        assert!(host_port("http://h:notaport").is_err());
    }
}

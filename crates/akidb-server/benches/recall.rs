//! Recall harness: the QPS-versus-recall curve of AkiDB on the shared data sets.
//!
//! For every folder under `../shared/data` (beside the repository) that holds `base.fvecs`,
//! `queries.fvecs` and `groundtruth.ivecs`, this builds a collection with the default HNSW
//! parameters (upserts of 1,000 vectors, ids = row index, then waits until the background
//! indexer has put every vector in the graph) and measures, for each `ef`:
//!
//! - recall@10 (k = 10) and recall@100 (k = 100) against the exact ground truth;
//! - QPS with one query at a time (one thread) and with the queries split over N threads
//!   (N = available parallelism), best and median of 3 timed passes after one warm-up pass;
//! - p50 / p99 latency of single queries (one-thread passes).
//!
//! Two modes: `engine` (in process, through `akidb_engine::Engine`) and `http` (the real `akidb`
//! binary on 127.0.0.1, keep-alive `reqwest` clients, one connection per thread).
//!
//! The engine never searches with `ef < k` (effective ef = max(ef, k)), so the recall@100 rows
//! with ef below 100 all run with ef = 100.
//!
//! Run: `cargo bench -p akidb-server --bench recall [-- FLAGS]`
//!
//! | flag | environment | what |
//! |---|---|---|
//! | `--quick` | `AKIDB_RECALL_QUICK=1` | ef in {10, 40, 200} only |
//! | `--ef 10,20` | `AKIDB_RECALL_EF` | this ef list |
//! | `--k 10,100` | `AKIDB_RECALL_K` | these k (each reports recall@k) |
//! | `--engine-only` / `--http-only` | `AKIDB_RECALL_MODE=engine\|http` | one mode |
//! | `--threads N` | `AKIDB_RECALL_THREADS` | N for the "all threads" columns |
//! | `--queries N` | `AKIDB_RECALL_QUERIES` | only the first N queries |
//! | `--passes N` | `AKIDB_RECALL_PASSES` | timed passes per point (default 3) |
//! | `--data DIR` | `AKIDB_RECALL_DATA` | the folder of data sets (default `../shared/data`) |
//! | `--json FILE` | `AKIDB_RECALL_JSON` | also write the results as JSON |
//!
//! Unknown arguments (such as the `--bench` cargo passes) are ignored.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use akidb_core::Metric;
use akidb_engine::{CreateCollection, Engine, EngineConfig, NewDocument, SearchQuery};
use serde_json::{Value, json};

type Res<T> = Result<T, String>;

const DEFAULT_EF: &[usize] = &[10, 20, 40, 80, 120, 200, 300, 500];
const QUICK_EF: &[usize] = &[10, 40, 200];
const BATCH: usize = 1_000;
const COLLECTION: &str = "recall";
const INDEX_TIMEOUT: Duration = Duration::from_secs(3_600);

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Options {
    efs: Vec<usize>,
    ks: Vec<usize>,
    engine: bool,
    http: bool,
    threads: usize,
    queries: Option<usize>,
    passes: usize,
    data: PathBuf,
    json: Option<PathBuf>,
}

fn parse_list(flag: &str, s: &str) -> Res<Vec<usize>> {
    let list: Vec<usize> = s
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            p.trim()
                .parse::<usize>()
                .map_err(|e| format!("{flag}: {p:?} is not a positive integer ({e})"))
        })
        .collect::<Res<_>>()?;
    if list.is_empty() || list.contains(&0) {
        return Err(format!(
            "{flag}: expected a comma-separated list of positive integers, got {s:?}"
        ));
    }
    Ok(list)
}

fn parse_count(flag: &str, s: &str) -> Res<usize> {
    match s.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{flag}: expected a positive integer, got {s:?}")),
    }
}

fn options() -> Res<Options> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut o = Options {
        efs: DEFAULT_EF.to_vec(),
        ks: vec![10, 100],
        engine: true,
        http: true,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        queries: None,
        passes: 3,
        data: Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
        json: None,
    };
    // Environment first, then arguments (which win).
    if env("AKIDB_RECALL_QUICK").is_some_and(|v| v != "0") {
        o.efs = QUICK_EF.to_vec();
    }
    if let Some(v) = env("AKIDB_RECALL_EF") {
        o.efs = parse_list("AKIDB_RECALL_EF", &v)?;
    }
    if let Some(v) = env("AKIDB_RECALL_K") {
        o.ks = parse_list("AKIDB_RECALL_K", &v)?;
    }
    match env("AKIDB_RECALL_MODE").as_deref() {
        None | Some("both") => {}
        Some("engine") => o.http = false,
        Some("http") => o.engine = false,
        Some(other) => {
            return Err(format!(
                "AKIDB_RECALL_MODE: expected engine, http or both, got {other:?}"
            ));
        }
    }
    if let Some(v) = env("AKIDB_RECALL_THREADS") {
        o.threads = parse_count("AKIDB_RECALL_THREADS", &v)?;
    }
    if let Some(v) = env("AKIDB_RECALL_QUERIES") {
        o.queries = Some(parse_count("AKIDB_RECALL_QUERIES", &v)?);
    }
    if let Some(v) = env("AKIDB_RECALL_PASSES") {
        o.passes = parse_count("AKIDB_RECALL_PASSES", &v)?;
    }
    if let Some(v) = env("AKIDB_RECALL_DATA") {
        o.data = PathBuf::from(v);
    }
    if let Some(v) = env("AKIDB_RECALL_JSON") {
        o.json = Some(PathBuf::from(v));
    }

    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    let value = |i: &mut usize, flag: &str| -> Res<String> {
        *i += 1;
        args.get(*i)
            .cloned()
            .ok_or_else(|| format!("{flag} needs a value"))
    };
    while i < args.len() {
        let arg = args[i].clone();
        // Accept `--flag=value` as well as `--flag value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut val = |flag: &str| -> Res<String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => value(&mut i, flag),
            }
        };
        match flag.as_str() {
            "--quick" => o.efs = QUICK_EF.to_vec(),
            "--ef" => o.efs = parse_list("--ef", &val("--ef")?)?,
            "--k" => o.ks = parse_list("--k", &val("--k")?)?,
            "--engine-only" => {
                o.engine = true;
                o.http = false;
            }
            "--http-only" => {
                o.engine = false;
                o.http = true;
            }
            "--threads" => o.threads = parse_count("--threads", &val("--threads")?)?,
            "--queries" => o.queries = Some(parse_count("--queries", &val("--queries")?)?),
            "--passes" => o.passes = parse_count("--passes", &val("--passes")?)?,
            "--data" => o.data = PathBuf::from(val("--data")?),
            "--json" => o.json = Some(PathBuf::from(val("--json")?)),
            "--bench" => {}
            other => eprintln!("recall: ignoring unknown argument {other:?}"),
        }
        i += 1;
    }
    if o.ks.iter().any(|&k| k > akidb_engine::MAX_K) {
        return Err(format!("--k: k must be at most {}", akidb_engine::MAX_K));
    }
    if o.efs.iter().any(|&ef| ef > akidb_engine::MAX_EF) {
        return Err(format!("--ef: ef must be at most {}", akidb_engine::MAX_EF));
    }
    Ok(o)
}

// ---------------------------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------------------------

struct Dataset {
    name: String,
    dir: PathBuf,
    dim: usize,
    base: Vec<Vec<f32>>,
    queries: Vec<Vec<f32>>,
    /// Exact neighbours per query, best first.
    gt: Vec<Vec<u32>>,
    metric: Metric,
    metric_source: String,
}

/// The data set's metric: `AKIDB_RECALL_METRIC`, else the `Metric:` line of its README, else
/// cosine (what every shared data set uses today).
fn dataset_metric(dir: &Path) -> Res<(Metric, String)> {
    let parse = |s: &str| -> Option<Metric> {
        let s = s.to_ascii_lowercase();
        if s.contains("cosine") {
            Some(Metric::Cosine)
        } else if s.contains("inner product") || s.contains("dot") {
            Some(Metric::Dot)
        } else if s.contains("l2") || s.contains("euclid") {
            Some(Metric::L2)
        } else {
            None
        }
    };
    if let Ok(v) = std::env::var("AKIDB_RECALL_METRIC") {
        return parse(&v)
            .map(|m| (m, "AKIDB_RECALL_METRIC".to_string()))
            .ok_or_else(|| format!("AKIDB_RECALL_METRIC: unknown metric {v:?}"));
    }
    if let Ok(readme) = std::fs::read_to_string(dir.join("README.md")) {
        for line in readme.lines() {
            let l = line
                .trim_start_matches(['-', '*', ' '])
                .to_ascii_lowercase();
            if l.starts_with("metric:")
                && let Some(m) = parse(line)
            {
                return Ok((m, "README.md".to_string()));
            }
        }
    }
    Ok((
        Metric::Cosine,
        "default (no Metric: line in README.md)".to_string(),
    ))
}

fn find_datasets(root: &Path) -> Res<Vec<PathBuf>> {
    if !root.is_dir() {
        return Err(format!(
            "data folder {} does not exist (the shared data sets live in ../shared/data beside the \
             repository; pass --data DIR or AKIDB_RECALL_DATA to use another)",
            root.display()
        ));
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .map_err(|e| format!("{}: {e}", root.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && ["base.fvecs", "queries.fvecs", "groundtruth.ivecs"]
                    .iter()
                    .all(|f| p.join(f).is_file())
        })
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        return Err(format!(
            "no data set under {}: no subfolder holds base.fvecs, queries.fvecs and groundtruth.ivecs",
            root.display()
        ));
    }
    Ok(dirs)
}

fn load_dataset(dir: &Path, opts: &Options) -> Res<Dataset> {
    let name = dir
        .file_name()
        .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into());
    let (dim, base) = akidb_testkit::read_fvecs(&dir.join("base.fvecs"))?;
    let (qdim, mut queries) = akidb_testkit::read_fvecs(&dir.join("queries.fvecs"))?;
    let (gk, gt_raw) = akidb_testkit::read_ivecs(&dir.join("groundtruth.ivecs"))?;
    if qdim != dim {
        return Err(format!(
            "{name}: queries.fvecs has dimension {qdim}, base.fvecs {dim}"
        ));
    }
    if dim > 4_096 {
        return Err(format!(
            "{name}: dimension {dim} is above AkiDB's maximum of 4,096"
        ));
    }
    if gt_raw.len() != queries.len() {
        return Err(format!(
            "{name}: groundtruth.ivecs has {} rows, queries.fvecs {}",
            gt_raw.len(),
            queries.len()
        ));
    }
    if base.is_empty() || queries.is_empty() {
        return Err(format!("{name}: empty base or query set"));
    }
    let mut gt = Vec::with_capacity(gt_raw.len());
    for (q, row) in gt_raw.into_iter().enumerate() {
        let mut ids = Vec::with_capacity(gk);
        for &id in &row {
            if id < 0 || id as usize >= base.len() {
                return Err(format!(
                    "{name}: malformed groundtruth.ivecs: query {q} names base id {id}, but base.fvecs has {} rows",
                    base.len()
                ));
            }
            ids.push(id as u32);
        }
        gt.push(ids);
    }
    for &k in &opts.ks {
        if k > gk {
            return Err(format!(
                "{name}: recall@{k} asked for, but groundtruth.ivecs holds only the top {gk}"
            ));
        }
    }
    if let Some(n) = opts.queries {
        queries.truncate(n);
        gt.truncate(n);
    }
    let (metric, metric_source) = dataset_metric(dir)?;
    Ok(Dataset {
        name,
        dir: dir.to_path_buf(),
        dim,
        base,
        queries,
        gt,
        metric,
        metric_source,
    })
}

// ---------------------------------------------------------------------------------------------
// Measurement
// ---------------------------------------------------------------------------------------------

/// One pass over all queries: wall time, ids per query (in query order), and per-query latency
/// in seconds (one-thread passes only).
struct Pass {
    secs: f64,
    ids: Vec<Vec<u32>>,
    latencies: Vec<f64>,
}

struct Point {
    k: usize,
    ef: usize,
    threads: usize,
    recall: f64,
    qps_best: f64,
    qps_median: f64,
    pass_secs: Vec<f64>,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
}

struct Build {
    vectors: usize,
    ingest_secs: f64,
    indexed_secs: f64,
    flushed_secs: f64,
    /// HNSW parameters the collection reports.
    m: usize,
    ef_construction: usize,
}

fn parse_id(s: &str) -> Res<u32> {
    s.parse::<u32>()
        .map_err(|_| format!("search returned id {s:?}, which is not a row index"))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn split(n: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    (0..parts)
        .map(|i| (i * n / parts)..((i + 1) * n / parts))
        .collect()
}

fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

trait Target {
    fn label(&self) -> &'static str;
    fn build(&mut self, ds: &Dataset) -> Res<Build>;
    fn pass(&self, ds: &Dataset, k: usize, ef: usize, threads: usize) -> Res<Pass>;
    /// Called once per point before its passes (the HTTP target pre-encodes request bodies).
    fn prepare(&mut self, _ds: &Dataset, _k: usize, _ef: usize) -> Res<()> {
        Ok(())
    }
}

fn measure(
    target: &mut dyn Target,
    ds: &Dataset,
    k: usize,
    ef: usize,
    threads: usize,
    passes: usize,
) -> Res<Point> {
    target.prepare(ds, k, ef)?;
    let _warm = target.pass(ds, k, ef, threads)?;
    let mut secs = Vec::with_capacity(passes);
    let mut latencies = Vec::new();
    let mut recall = None;
    for _ in 0..passes {
        let p = target.pass(ds, k, ef, threads)?;
        let r = akidb_testkit::recall_at(k, &p.ids, &ds.gt);
        // Every pass is checked, not only the first: a search that answered differently from
        // one pass to the next would show here.
        recall = Some(recall.map_or(r, |prev: f64| prev.min(r)));
        secs.push(p.secs);
        latencies.extend(p.latencies);
    }
    let mut sorted = secs.clone();
    sorted.sort_by(f64::total_cmp);
    let nq = ds.queries.len() as f64;
    latencies.sort_by(f64::total_cmp);
    let (p50_ms, p99_ms) = if latencies.is_empty() {
        (None, None)
    } else {
        (
            Some(percentile(&latencies, 50.0) * 1e3),
            Some(percentile(&latencies, 99.0) * 1e3),
        )
    };
    Ok(Point {
        k,
        ef,
        threads,
        recall: recall.unwrap_or(0.0),
        qps_best: nq / sorted[0],
        qps_median: nq / sorted[sorted.len() / 2],
        pass_secs: secs,
        p50_ms,
        p99_ms,
    })
}

// ---------------------------------------------------------------------------------------------
// Engine (in process)
// ---------------------------------------------------------------------------------------------

struct EngineTarget {
    rt: tokio::runtime::Runtime,
    engine: Option<Engine>,
    _dir: tempfile::TempDir,
}

impl EngineTarget {
    fn new(threads: usize) -> Res<EngineTarget> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(2))
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        Ok(EngineTarget {
            rt,
            engine: None,
            _dir: dir,
        })
    }

    fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("built")
    }
}

fn engine_query(v: &[f32], k: usize, ef: usize) -> SearchQuery {
    SearchQuery {
        vector: v.to_vec(),
        k,
        ef: Some(ef),
        nprobe: None,
        exact: false,
        filter: None,
        include_vector: false,
        include_metadata: false,
        deadline: None,
        text: None,
    }
}

impl Target for EngineTarget {
    fn label(&self) -> &'static str {
        "engine"
    }

    fn build(&mut self, ds: &Dataset) -> Res<Build> {
        let dir = self._dir.path().to_path_buf();
        let engine = self.rt.block_on(async {
            let engine = Engine::open(EngineConfig::new(&dir))
                .await
                .map_err(|e| format!("Engine::open: {e}"))?;
            engine
                .create_collection(CreateCollection {
                    name: COLLECTION.into(),
                    dimension: ds.dim,
                    metric: ds.metric,
                    m: None,
                    ef_construction: None,
                    ef_search: None,
                    quantization: None,
                })
                .await
                .map_err(|e| format!("create_collection: {e}"))?;
            Ok::<_, String>(engine)
        })?;
        let started = Instant::now();
        self.rt.block_on(async {
            for (b, chunk) in ds.base.chunks(BATCH).enumerate() {
                let docs = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, v)| NewDocument {
                        id: Some((b * BATCH + i).to_string()),
                        vector: v.clone(),
                        metadata: None,
                    })
                    .collect();
                engine
                    .upsert(COLLECTION, docs)
                    .await
                    .map_err(|e| format!("upsert batch {b}: {e}"))?;
            }
            Ok::<_, String>(())
        })?;
        let ingest_secs = started.elapsed().as_secs_f64();
        let (indexed_secs, flushed_secs) = wait_ready(started, || {
            let info = info_of(&engine)?;
            if info.count != ds.base.len() {
                return Err(format!(
                    "collection holds {} documents after upserting {}",
                    info.count,
                    ds.base.len()
                ));
            }
            Ok((info.index_pending, info.unflushed))
        })?;
        let index = info_of(&engine)?.def.index;
        self.engine = Some(engine);
        Ok(Build {
            vectors: ds.base.len(),
            ingest_secs,
            indexed_secs,
            flushed_secs,
            m: index.m,
            ef_construction: index.ef_construction,
        })
    }

    fn pass(&self, ds: &Dataset, k: usize, ef: usize, threads: usize) -> Res<Pass> {
        let engine = self.engine();
        if threads == 1 {
            let started = Instant::now();
            let (ids, latencies) = self.rt.block_on(async {
                let mut ids = Vec::with_capacity(ds.queries.len());
                let mut lat = Vec::with_capacity(ds.queries.len());
                for q in &ds.queries {
                    let t = Instant::now();
                    let hits = engine
                        .search(COLLECTION, engine_query(q, k, ef))
                        .await
                        .map_err(|e| format!("search: {e}"))?;
                    lat.push(t.elapsed().as_secs_f64());
                    ids.push(
                        hits.iter()
                            .map(|h| parse_id(&h.id))
                            .collect::<Res<Vec<u32>>>()?,
                    );
                }
                Ok::<_, String>((ids, lat))
            })?;
            return Ok(Pass {
                secs: started.elapsed().as_secs_f64(),
                ids,
                latencies,
            });
        }
        let handle = self.rt.handle();
        let ranges = split(ds.queries.len(), threads);
        let started = Instant::now();
        let parts: Vec<Res<Vec<Vec<u32>>>> = std::thread::scope(|s| {
            let workers: Vec<_> = ranges
                .iter()
                .map(|r| {
                    let r = r.clone();
                    s.spawn(move || {
                        handle.block_on(async {
                            let mut ids = Vec::with_capacity(r.len());
                            for q in &ds.queries[r] {
                                let hits = engine
                                    .search(COLLECTION, engine_query(q, k, ef))
                                    .await
                                    .map_err(|e| format!("search: {e}"))?;
                                ids.push(
                                    hits.iter()
                                        .map(|h| parse_id(&h.id))
                                        .collect::<Res<Vec<u32>>>()?,
                                );
                            }
                            Ok(ids)
                        })
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|_| Err("worker panicked".into())))
                .collect()
        });
        let secs = started.elapsed().as_secs_f64();
        let mut ids = Vec::with_capacity(ds.queries.len());
        for p in parts {
            ids.extend(p?);
        }
        Ok(Pass {
            secs,
            ids,
            latencies: Vec::new(),
        })
    }
}

/// Polls until the index holds every vector and everything is flushed; returns the seconds
/// from `started` to each.
fn wait_ready(started: Instant, mut poll: impl FnMut() -> Res<(usize, usize)>) -> Res<(f64, f64)> {
    let mut indexed = None;
    loop {
        let (pending, unflushed) = poll()?;
        if pending == 0 && indexed.is_none() {
            indexed = Some(started.elapsed().as_secs_f64());
        }
        if let (Some(i), 0) = (indexed, unflushed) {
            return Ok((i, started.elapsed().as_secs_f64()));
        }
        if started.elapsed() > INDEX_TIMEOUT {
            return Err(format!(
                "index still has {pending} pending vectors and {unflushed} unflushed after {:?}",
                INDEX_TIMEOUT
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP (the real binary)
// ---------------------------------------------------------------------------------------------

struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(data_dir: &Path) -> Res<Server> {
        let bin = Path::new(env!("CARGO_BIN_EXE_akidb"));
        let echo = std::env::var_os("AKIDB_RECALL_LOG").is_some();
        let (child, addr) =
            akidb_testkit::spawn_akidb(bin, data_dir, &[], "warn,akidb_server=info", echo)?;
        Ok(Server {
            child,
            url: format!("http://{addr}"),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct HttpTarget {
    rt: tokio::runtime::Runtime,
    server: Server,
    /// One keep-alive client per worker, so N workers use N connections.
    clients: Vec<reqwest::Client>,
    bodies: Arc<Vec<String>>,
    _dir: tempfile::TempDir,
}

fn http_err(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

async fn post_json(client: &reqwest::Client, url: &str, body: String) -> Res<Vec<u8>> {
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| http_err(url, e))?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| http_err(url, e))?;
    if !status.is_success() {
        return Err(format!(
            "POST {url}: {status}: {}",
            String::from_utf8_lossy(&bytes)
        ));
    }
    Ok(bytes.to_vec())
}

/// One HTTP worker's answer: ids per query (in its query range's order) and latencies.
type WorkerOut = (Vec<Vec<u32>>, Vec<f64>);

fn search_ids(body: &[u8]) -> Res<Vec<u32>> {
    let resp: akidb_api::SearchResponse =
        serde_json::from_slice(body).map_err(|e| format!("search response: {e}"))?;
    resp.results.iter().map(|h| parse_id(&h.id)).collect()
}

impl HttpTarget {
    fn new(threads: usize) -> Res<HttpTarget> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let server = Server::start(dir.path())?;
        let clients = (0..threads.max(1))
            .map(|_| {
                reqwest::Client::builder()
                    .no_proxy()
                    .pool_max_idle_per_host(1)
                    .tcp_nodelay(true)
                    .build()
                    .map_err(|e| format!("reqwest client: {e}"))
            })
            .collect::<Res<Vec<_>>>()?;
        Ok(HttpTarget {
            rt,
            server,
            clients,
            bodies: Arc::new(Vec::new()),
            _dir: dir,
        })
    }

    fn search_url(&self) -> String {
        format!("{}/api/v1/collections/{COLLECTION}/search", self.server.url)
    }
}

impl Target for HttpTarget {
    fn label(&self) -> &'static str {
        "http"
    }

    fn build(&mut self, ds: &Dataset) -> Res<Build> {
        let client = self.clients[0].clone();
        let base_url = self.server.url.clone();
        let metric = match ds.metric {
            Metric::Cosine => "cosine",
            Metric::L2 => "l2",
            Metric::Dot => "dot",
        };
        // Request bodies are encoded before the clock starts: the server's ingest is measured,
        // not the client's JSON encoder.
        let batches: Vec<String> = ds
            .base
            .chunks(BATCH)
            .enumerate()
            .map(|(b, chunk)| {
                let documents: Vec<Value> = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, v)| json!({"id": (b * BATCH + i).to_string(), "vector": v}))
                    .collect();
                json!({ "documents": documents }).to_string()
            })
            .collect();
        let started = self.rt.block_on(async {
            post_json(
                &client,
                &format!("{base_url}/api/v1/collections"),
                json!({"name": COLLECTION, "dimension": ds.dim, "metric": metric}).to_string(),
            )
            .await?;
            let started = Instant::now();
            let url = format!("{base_url}/api/v1/collections/{COLLECTION}/documents");
            for (b, body) in batches.into_iter().enumerate() {
                let resp = post_json(&client, &url, body).await?;
                let v: Value = serde_json::from_slice(&resp)
                    .map_err(|e| format!("upsert batch {b}: response: {e}"))?;
                if v["upserted"].as_u64().is_none() {
                    return Err(format!("upsert batch {b}: unexpected response {v}"));
                }
            }
            Ok::<_, String>(started)
        })?;
        let ingest_secs = started.elapsed().as_secs_f64();
        let info_url = format!("{base_url}/api/v1/collections/{COLLECTION}");
        let n = ds.base.len() as u64;
        let mut index = None;
        let (indexed_secs, flushed_secs) = wait_ready(started, || {
            self.rt.block_on(async {
                let resp = client
                    .get(&info_url)
                    .send()
                    .await
                    .map_err(|e| http_err(&info_url, e))?;
                let info: akidb_api::CollectionInfo =
                    resp.json().await.map_err(|e| http_err(&info_url, e))?;
                if info.count != n {
                    return Err(format!(
                        "collection holds {} documents after upserting {n}",
                        info.count
                    ));
                }
                index = Some(info.index.clone());
                Ok((info.index_pending as usize, info.unflushed as usize))
            })
        })?;
        let index = index.expect("polled at least once");
        Ok(Build {
            vectors: ds.base.len(),
            ingest_secs,
            indexed_secs,
            flushed_secs,
            m: index.m,
            ef_construction: index.ef_construction,
        })
    }

    fn prepare(&mut self, ds: &Dataset, k: usize, ef: usize) -> Res<()> {
        // Encoded once per point, outside the timed passes.
        self.bodies = Arc::new(
            ds.queries
                .iter()
                .map(|q| json!({"vector": q, "k": k, "ef": ef}).to_string())
                .collect(),
        );
        Ok(())
    }

    fn pass(&self, ds: &Dataset, _k: usize, _ef: usize, threads: usize) -> Res<Pass> {
        let url = Arc::new(self.search_url());
        let ranges = split(ds.queries.len(), threads);
        let started = Instant::now();
        let parts: Vec<Res<WorkerOut>> = self.rt.block_on(async {
            let tasks: Vec<_> = ranges
                .into_iter()
                .enumerate()
                .map(|(w, r)| {
                    let client = self.clients[w % self.clients.len()].clone();
                    let bodies = self.bodies.clone();
                    let url = url.clone();
                    let timed = threads == 1;
                    tokio::spawn(async move {
                        let mut ids = Vec::with_capacity(r.len());
                        let mut lat = Vec::new();
                        for i in r {
                            let t = Instant::now();
                            let body = post_json(&client, &url, bodies[i].clone()).await?;
                            if timed {
                                lat.push(t.elapsed().as_secs_f64());
                            }
                            ids.push(search_ids(&body)?);
                        }
                        Ok::<_, String>((ids, lat))
                    })
                })
                .collect();
            let mut out = Vec::with_capacity(tasks.len());
            for t in tasks {
                out.push(t.await.unwrap_or_else(|e| Err(format!("worker: {e}"))));
            }
            out
        });
        let secs = started.elapsed().as_secs_f64();
        let mut ids = Vec::with_capacity(ds.queries.len());
        let mut latencies = Vec::new();
        for p in parts {
            let (i, l) = p?;
            ids.extend(i);
            latencies.extend(l);
        }
        Ok(Pass {
            secs,
            ids,
            latencies,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

struct ModeResult {
    mode: &'static str,
    build: Build,
    points: Vec<Point>,
    load_before: String,
    load_after: String,
}

fn fmt_int(x: f64) -> String {
    let s = format!("{:.0}", x);
    let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

fn mode_title(mode: &str) -> &'static str {
    match mode {
        "engine" => "in process, through the Engine API",
        _ => "over HTTP, the real akidb binary on 127.0.0.1",
    }
}

fn print_mode(ds: &Dataset, r: &ModeResult, opts: &Options) {
    let b = &r.build;
    println!();
    println!("### {} — {} ({})", ds.name, r.mode, mode_title(r.mode));
    println!();
    println!(
        "HNSW m = {}, ef_construction = {} (the defaults).",
        b.m, b.ef_construction
    );
    println!();
    println!(
        "Build: {} vectors upserted in batches of {} in {:.2} s ({} vectors/s acknowledged); \
         HNSW graph complete (index_pending = 0) after {:.2} s ({} vectors/s end to end); \
         flushed to a segment after {:.2} s. Load average before / after this mode: {} / {}.",
        fmt_int(b.vectors as f64),
        fmt_int(BATCH as f64),
        b.ingest_secs,
        fmt_int(b.vectors as f64 / b.ingest_secs),
        b.indexed_secs,
        fmt_int(b.vectors as f64 / b.indexed_secs),
        b.flushed_secs,
        r.load_before,
        r.load_after,
    );
    let n = opts.threads;
    for &k in &opts.ks {
        println!();
        if opts.efs.iter().any(|&ef| ef < k) {
            println!(
                "recall@{k} (k = {k}; the engine searches with ef = max(ef, k), so rows with ef < {k} run at ef = {k}):"
            );
        } else {
            println!("recall@{k} (k = {k}):");
        }
        println!();
        let multi = n > 1;
        let mut header = format!(
            "| ef | effective ef | recall@{k} | QPS 1 thread (best) | QPS 1 thread (median) | p50 ms | p99 ms |"
        );
        let mut rule = "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |".to_string();
        if multi {
            header.push_str(&format!(
                " QPS {n} threads (best) | QPS {n} threads (median) |"
            ));
            rule.push_str(" ---: | ---: |");
        }
        println!("{header}");
        println!("{rule}");
        for &ef in &opts.efs {
            let one = r
                .points
                .iter()
                .find(|p| p.k == k && p.ef == ef && p.threads == 1);
            let Some(one) = one else { continue };
            let mut row = format!(
                "| {ef} | {} | {:.4} | {} | {} | {:.3} | {:.3} |",
                ef.max(k),
                one.recall,
                fmt_int(one.qps_best),
                fmt_int(one.qps_median),
                one.p50_ms.unwrap_or(f64::NAN),
                one.p99_ms.unwrap_or(f64::NAN),
            );
            if multi
                && let Some(m) = r
                    .points
                    .iter()
                    .find(|p| p.k == k && p.ef == ef && p.threads == n)
            {
                row.push_str(&format!(
                    " {} | {} |",
                    fmt_int(m.qps_best),
                    fmt_int(m.qps_median)
                ));
            }
            println!("{row}");
        }
    }
}

fn mode_json(r: &ModeResult) -> Value {
    json!({
        "mode": r.mode,
        "build": {
            "vectors": r.build.vectors,
            "batch": BATCH,
            "ingest_secs": r.build.ingest_secs,
            "indexed_secs": r.build.indexed_secs,
            "flushed_secs": r.build.flushed_secs,
            "ingest_vectors_per_sec": r.build.vectors as f64 / r.build.ingest_secs,
            "indexed_vectors_per_sec": r.build.vectors as f64 / r.build.indexed_secs,
            "m": r.build.m,
            "ef_construction": r.build.ef_construction,
        },
        "load_avg_before": r.load_before,
        "load_avg_after": r.load_after,
        "points": r.points.iter().map(|p| json!({
            "k": p.k,
            "ef": p.ef,
            "effective_ef": p.ef.max(p.k),
            "threads": p.threads,
            "recall": p.recall,
            "qps_best": p.qps_best,
            "qps_median": p.qps_median,
            "pass_secs": p.pass_secs,
            "p50_ms": p.p50_ms,
            "p99_ms": p.p99_ms,
        })).collect::<Vec<_>>(),
    })
}

fn run_mode(mut target: Box<dyn Target>, ds: &Dataset, opts: &Options) -> Res<ModeResult> {
    let load_before = load_avg();
    let mode = target.label();
    eprintln!(
        "recall: {}: {mode}: building ({} vectors, load {load_before})",
        ds.name,
        ds.base.len()
    );
    let build = target.build(ds)?;
    eprintln!(
        "recall: {}: {mode}: ingest {:.2} s, indexed {:.2} s, flushed {:.2} s",
        ds.name, build.ingest_secs, build.indexed_secs, build.flushed_secs
    );
    let mut thread_counts = vec![1];
    if opts.threads > 1 {
        thread_counts.push(opts.threads);
    }
    let mut points = Vec::new();
    for &k in &opts.ks {
        for &ef in &opts.efs {
            for &t in &thread_counts {
                let p = measure(target.as_mut(), ds, k, ef, t, opts.passes)?;
                eprintln!(
                    "recall: {}: {mode}: k={k} ef={ef} threads={t}: recall@{k} {:.4}, QPS best {:.0} median {:.0}",
                    ds.name, p.recall, p.qps_best, p.qps_median
                );
                points.push(p);
            }
        }
    }
    Ok(ModeResult {
        mode,
        build,
        points,
        load_before,
        load_after: load_avg(),
    })
}

fn run() -> Res<()> {
    let opts = options()?;
    let dirs = find_datasets(&opts.data)?;
    let data_root = opts
        .data
        .canonicalize()
        .unwrap_or_else(|_| opts.data.clone());
    let started = Instant::now();
    println!("# AkiDB recall harness");
    println!();
    println!(
        "Data: {} ({} data set{}). k: {:?}. ef: {:?}. Threads for the multi-thread columns: {}. \
         Each point: 1 warm-up pass, then {} timed passes over all queries (QPS best and median; \
         p50/p99 are per-query latencies over the timed one-thread passes). HNSW parameters: \
         the defaults. Load average at start: {}.",
        data_root.display(),
        dirs.len(),
        if dirs.len() == 1 { "" } else { "s" },
        opts.ks,
        opts.efs,
        opts.threads,
        opts.passes,
        load_avg(),
    );
    let mut json_sets = Vec::new();
    for dir in &dirs {
        let ds = load_dataset(dir, &opts)?;
        println!();
        println!(
            "## {}: {} base vectors × {} dims, {} queries, metric {} (from {})",
            ds.name,
            fmt_int(ds.base.len() as f64),
            ds.dim,
            fmt_int(ds.queries.len() as f64),
            ds.metric,
            ds.metric_source
        );
        let mut modes = Vec::new();
        if opts.engine {
            let r = run_mode(Box::new(EngineTarget::new(opts.threads)?), &ds, &opts)?;
            print_mode(&ds, &r, &opts);
            modes.push(r);
        }
        if opts.http {
            let r = run_mode(Box::new(HttpTarget::new(opts.threads)?), &ds, &opts)?;
            print_mode(&ds, &r, &opts);
            modes.push(r);
        }
        json_sets.push(json!({
            "name": ds.name,
            "dir": ds.dir.display().to_string(),
            "vectors": ds.base.len(),
            "dimension": ds.dim,
            "queries": ds.queries.len(),
            "metric": ds.metric.to_string(),
            "modes": modes.iter().map(mode_json).collect::<Vec<_>>(),
        }));
    }
    println!();
    println!(
        "Total time {:.1} s. Load average at end: {}.",
        started.elapsed().as_secs_f64(),
        load_avg()
    );
    if let Some(path) = &opts.json {
        let doc = json!({
            "tool": "akidb recall harness",
            "threads": opts.threads,
            "available_parallelism": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "passes": opts.passes,
            "ks": opts.ks,
            "efs": opts.efs,
            "datasets": json_sets,
        });
        let text = serde_json::to_string_pretty(&doc).map_err(|e| format!("json: {e}"))?;
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("recall: wrote {}", path.display());
    }
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("recall: error: {e}");
        std::process::exit(1);
    }
}

/// The collection's summary, without loading anything (the engine's list is synchronous).
fn info_of(engine: &akidb_engine::Engine) -> Result<akidb_engine::CollectionInfo, String> {
    engine
        .list_collections()
        .into_iter()
        .find_map(|s| match s {
            akidb_engine::CollectionStatus::Ready(info) if info.def.name == COLLECTION => {
                Some(info)
            }
            _ => None,
        })
        .ok_or_else(|| format!("collection {COLLECTION} is not listed"))
}

//! The prepare phase: everything before the load, in this order. The settings are resolved
//! and the dataset read (bad input stops the run before anything touches the server); the
//! server must answer `GET /health`; the server process to sample is found; the collections are
//! created (or checked) and preloaded, and the index is given time to absorb the preload; the
//! ground truth for recall is checked against what was loaded; the report's notes on the
//! method are written; last, the scenario's own setup ([`ScenarioHooks::prepare`]).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use akidb_api::client::Client;
use anyhow::{Context, Result, anyhow, bail};

use super::collections::{self, PRELOAD_BATCH, delete_collections};
use crate::churn::log::ChurnLog;
use crate::cli::{Args, Config, resolve};
use crate::dataset::Dataset;
use crate::hooks::ScenarioHooks;
use crate::mix::Op;
use crate::procmon;
use crate::raw::Raw;
use crate::report::{CollectionReport, PreloadReport};
use crate::requests::{Requests, Source};
use crate::scenario::Load;

/// How long the reachability check (`GET /health`) may take.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// Ground truth per query: the exact top-k among the loaded base vectors (`None`: too few).
type Truth = Vec<Option<Vec<u32>>>;

/// What the prepare phase leaves for the load and the report.
pub struct Prepared {
    /// Resolved, with the dimension set.
    pub cfg: Config,
    pub dim: usize,
    /// Vectors preloaded into each collection.
    pub loaded: usize,
    pub dataset: Option<Arc<Dataset>>,
    pub client: Client,
    pub server: ServerProcess,
    pub collections: Vec<CollectionReport>,
    pub preload: PreloadReport,
    /// Why recall was not (or not fully) checked.
    pub recall_note: Option<String>,
    /// The report's notes so far.
    pub notes: Vec<String>,
    pub requests: Arc<Requests>,
}

/// The server process whose RSS/CPU is sampled, or why there is none.
pub struct ServerProcess {
    pub pid: Option<u32>,
    /// `--server-pid` or `listening port`.
    pub found_by: &'static str,
    pub problem: Option<String>,
}

/// The prepare phase; `hooks` give the requests' choice of collection and set the scenario up.
pub async fn prepare<H: ScenarioHooks>(args: &Args, hooks: &mut H) -> Result<Prepared> {
    let mut cfg = resolve(args)?;
    let mut notes = vec![
        "tier operations are tier control through the tier API, in turn: a status read, pin, \
         demote (one tier down), unpin, promote (to hot) of the chosen collection (churn: \
         status reads only)."
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
    let server = server_process(&cfg)?;
    if let Some(p) = &server.problem {
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
    let collections::SetUp {
        collections,
        created_now,
    } = collections::set_up(&client, &names, dim, loaded, cfg.seed, &source, cfg.cleanup).await?;
    let preload_secs = setup_started.elapsed().as_secs_f64();

    // Let the index absorb the preload, so searches measure HNSW rather than exact scans.
    let index_started = Instant::now();
    let pending = collections::wait_for_index(&client, &names, cfg.index_timeout_secs).await?;
    let index_wait_secs = index_started.elapsed().as_secs_f64();
    if pending > 0 {
        notes.push(format!(
            "{pending} preloaded vectors were still waiting for the index when the run started \
             (--index-timeout {} s); the server searches those exactly, which costs latency.",
            cfg.index_timeout_secs
        ));
    }

    // Recall: only valid while each collection holds exactly the first `loaded` base vectors.
    // Under churn the contents change, so each search is checked against the server's exact
    // answer instead.
    let churn = cfg.churn_noise.map(|noise| {
        Arc::new(ChurnLog::new(
            names.len(),
            loaded,
            noise,
            cfg.warmup_secs,
            cfg.duration_secs * cfg.repeat as f64,
        ))
    });
    let (truth, recall_note) = match &dataset {
        _ if churn.is_some() => (
            None,
            Some(
                "churn: recall is measured against the server's exact answer (`exact: true`) to \
                 the same query, sent right after each search; a hit scores at least the exact \
                 k-th (ties count). See Recall under churn."
                    .to_string(),
            ),
        ),
        Some(d) if cfg.mix_parsed.weight(Op::Search) > 0 => {
            ground_truth(d, cfg.k, loaded, &collections)
        }
        _ => (None, None),
    };
    method_notes(&cfg, dataset.is_some() && churn.is_none(), &mut notes);

    let preload = PreloadReport::new(
        (loaded * names.len()) as u64,
        PRELOAD_BATCH,
        preload_secs,
        index_wait_secs,
        pending,
    );
    let requests = Arc::new(Requests {
        raw,
        choice: hooks.collection_choice(names.len()),
        names,
        mix: cfg.mix_parsed,
        seed: cfg.seed,
        k: cfg.k,
        ef: cfg.ef,
        insert_batch: cfg.insert_batch,
        source,
        truth,
        churn,
    });

    // The scenario's setup. On failure, as above, only what this run created is deleted.
    if let Err(e) = hooks.prepare(&requests, &mut notes).await {
        if cfg.cleanup {
            delete_collections(&client, &created_now).await;
        }
        return Err(e);
    }
    Ok(Prepared {
        cfg,
        dim,
        loaded,
        dataset,
        client,
        server,
        collections,
        preload,
        recall_note,
        notes,
        requests,
    })
}

/// The server process to sample: `--server-pid`, or the process listening on the `--url` port.
fn server_process(cfg: &Config) -> Result<ServerProcess> {
    let (pid, found_by, problem) = match cfg.server_pid {
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
    Ok(ServerProcess {
        pid,
        found_by,
        problem,
    })
}

/// The exact top-k per query among the `loaded` base vectors, when recall can be checked, and
/// why it cannot be (or not for every query).
fn ground_truth(
    d: &Dataset,
    k: usize,
    loaded: usize,
    collections: &[CollectionReport],
) -> (Option<Truth>, Option<String>) {
    if let Some(c) = collections
        .iter()
        .find(|c| c.count_after_preload != loaded as u64)
    {
        let note = format!(
            "recall not checked: {} holds {} documents, not the {loaded} base vectors the \
             ground truth assumes (a leftover collection? delete it)",
            c.name, c.count_after_preload
        );
        return (None, Some(note));
    }
    if k > d.groundtruth.dim {
        let note = format!(
            "recall not checked: k = {} exceeds the {} neighbours in groundtruth.ivecs",
            k, d.groundtruth.dim
        );
        return (None, Some(note));
    }
    let t = d.truth_for(loaded, k);
    let usable = t.iter().filter(|x| x.is_some()).count();
    let note = (usable < t.len()).then(|| {
        format!(
            "{} of {} queries have fewer than k = {} ground-truth neighbours among the \
             {loaded} loaded base vectors; their searches are not checked",
            t.len() - usable,
            t.len(),
            k
        )
    });
    (Some(t), note)
}

/// The report's notes on how the run measures (dataset mode, open or closed loop, repeats,
/// where the generator runs).
fn method_notes(cfg: &Config, dataset_mode: bool, notes: &mut Vec<String>) {
    if dataset_mode {
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
    use super::host_port;

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

//! The `churn` scenario: recall while documents are being replaced.
//!
//! The collection is preloaded (10,000 vectors by default; with `--dataset` the data set's
//! base rows, e.g. MiniLM), then the usual mix runs with two changes (`requests.rs`):
//!
//! - an **insert** replaces an existing document: a preloaded id gets a new vector, its
//!   original plus seeded noise (`--churn-noise`, default 0.2; 0 re-upserts it unchanged), so
//!   the server tombstones the old slot and writes a new one: dead slots pile up;
//! - a **search** (at the collection's default `ef`, or `--ef`) is followed by the same query with
//!   `"exact": true`, and its recall@k is measured against that exact answer: the truth under
//!   churn is the collection's current contents, which only the server holds exactly. A search
//!   whose answers contain a document written while the two ran is flagged *conflicted* (they
//!   may have seen different versions of it) and reported apart too. Latency counts the first
//!   search only.
//!
//! Beside the load, the hooks poll `GET /api/v1/collections/{name}` about once a second (index
//! backlog, RAM; a sharp RAM drop is a compaction). The pure parts are in `log.rs` (shared with
//! the requests) and `report.rs` (the section).

pub mod log;
pub mod report;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use akidb_api::CollectionInfo;
use anyhow::{Context, Result};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::hooks::ScenarioHooks;
use crate::raw::{Raw, collection_path};
use crate::requests::Requests;
use crate::stats::OpStats;
use log::ChurnLog;
use report::{ChurnReport, CollectionWatch, RecallUnderChurn};

/// How often the collections are read during the run.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(1);

type Watches = BTreeMap<String, CollectionWatch>;

/// The `churn` scenario's hooks: the collection watcher beside the load, and the section.
#[derive(Default)]
pub struct ChurnHooks {
    log: Option<Arc<ChurnLog>>,
    start: Option<Instant>,
    names: Vec<String>,
    watcher: Option<(oneshot::Sender<()>, JoinHandle<Watches>)>,
    watches: Watches,
}

impl ScenarioHooks for ChurnHooks {
    type Section = ChurnReport;

    async fn prepare(&mut self, requests: &Requests, notes: &mut Vec<String>) -> Result<()> {
        let log = requests
            .churn
            .clone()
            .context("the churn scenario runs without its log (a bug)")?;
        notes.push(format!(
            "churn: inserts replace preloaded ids with their original vector plus noise {} \
             (relative norm; 0 = unchanged), so every acknowledged insert leaves a dead slot; \
             searches use the collection's default ef and are checked against the server's \
             exact answer to the same query, sent right after (not counted in latency).",
            log.noise
        ));
        self.log = Some(log);
        self.names = requests.names.clone();
        Ok(())
    }

    fn load_started(&mut self, raw: &Raw, start: Instant) {
        self.start = Some(start);
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(watch(raw.clone(), self.names.clone(), rx));
        self.watcher = Some((tx, task));
    }

    async fn load_ended(&mut self) -> Result<()> {
        if let Some((stop, task)) = self.watcher.take() {
            let _ = stop.send(());
            self.watches = task.await.context("the collection watcher failed")?;
        }
        Ok(())
    }

    async fn finish(
        self,
        requests: &Requests,
        _totals: &OpStats,
        _notes: &mut Vec<String>,
    ) -> Option<ChurnReport> {
        let (log, start) = (self.log?, self.start?);
        let samples = log.samples();
        let recall = RecallUnderChurn::new(
            requests.k,
            &samples,
            |s| s.at.saturating_duration_since(start).as_secs_f64(),
            log.warmup_secs,
            log.measured_secs,
        );
        Some(ChurnReport {
            noise: log.noise,
            ef: requests.ef,
            live_documents: (log.per_collection * requests.names.len()) as u64,
            replacements_acknowledged: log.replaced(),
            replacements_failed: log.failed(),
            dead_slots_note: "The collection API (`GET /api/v1/collections/{name}`) exposes no \
                              count of dead slots, so the acknowledged replacements are the \
                              dead slots created; a compaction (at least 1,000 dead slots and \
                              half of all slots) removes them, seen as a drop in RAM below."
                .into(),
            exact_searches_failed: log.exact_failures(),
            recall,
            collections: self.watches,
        })
    }
}

/// Reads every collection each [`WATCH_INTERVAL`] until `stop` fires.
async fn watch(raw: Raw, names: Vec<String>, mut stop: oneshot::Receiver<()>) -> Watches {
    let mut watches: Watches = names
        .iter()
        .map(|n| (n.clone(), CollectionWatch::default()))
        .collect();
    let mut tick = tokio::time::interval(WATCH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut stop => break,
        }
        for name in &names {
            let read = raw
                .get::<CollectionInfo>(&collection_path(name, ""))
                .await
                .ok()
                .map(|i| (i.count, i.index_pending, i.bytes_in_ram));
            watches.get_mut(name).expect("every name").add(read);
        }
    }
    watches
}

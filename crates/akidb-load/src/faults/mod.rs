//! The `failure-injection` scenario's checks. The fault injection is the server's
//! (`akidb serve --test-faults latency_ms=..,fail_rate=..,seed=..`, testing only), and the tool
//! cannot start the server or read its fault settings, so it checks what it can see from the
//! outside and says so in the report: `/ready` polled during the run (`ready`, `degraded`,
//! failing), the object-store counters of `/metrics` before and after the run, and the errors
//! by HTTP status and code, with how many carried `Retry-After` (the server's backpressure).
//!
//! This file holds the scenario's hooks ([`FaultsHooks`]) and what talks to the server (the
//! `/ready` probe, the `/metrics` reads); what they add up to, and the report section, is in
//! `report.rs`.

pub mod report;

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::hooks::ScenarioHooks;
use crate::raw::Raw;
use crate::requests::Requests;
use crate::stats::{OpStats, Outcome};
use report::{
    FaultsReport, READY_INTERVAL, READY_TIMEOUT, ReadyReport, STORE_COUNTERS, parse_metrics,
};

/// `/metrics`, parsed, or why it could not be read.
type Metrics = Result<BTreeMap<String, f64>, String>;

/// The `failure-injection` scenario's hooks: `/metrics` before the run, `/ready` polled during
/// it, `/metrics` after it.
#[derive(Default)]
pub struct FaultsHooks {
    metrics_before: Option<Metrics>,
    /// While the load runs: the stop signal and the task of the `/ready` probe.
    probe: Option<(oneshot::Sender<()>, JoinHandle<ReadyReport>)>,
    ready: Option<ReadyReport>,
}

impl ScenarioHooks for FaultsHooks {
    type Section = FaultsReport;

    /// The object-store counters before the run.
    async fn prepare(&mut self, requests: &Requests, _notes: &mut Vec<String>) -> Result<()> {
        self.metrics_before = Some(read_metrics(&requests.raw).await);
        Ok(())
    }

    /// Starts polling `/ready`.
    fn load_started(&mut self, raw: &Raw, start: Instant) {
        let (tx, rx) = oneshot::channel();
        let probe = tokio::spawn(probe_ready(raw.clone(), start, rx));
        self.probe = Some((tx, probe));
    }

    /// Stops polling `/ready` and keeps what it saw.
    async fn load_ended(&mut self) -> Result<()> {
        if let Some((stop, probe)) = self.probe.take() {
            let _ = stop.send(());
            self.ready = Some(probe.await.context("the /ready probe task failed")?);
        }
        Ok(())
    }

    /// The object-store counters after the run, and the errors of the measured phase.
    async fn finish(
        self,
        requests: &Requests,
        totals: &OpStats,
        _notes: &mut Vec<String>,
    ) -> Option<FaultsReport> {
        let after = read_metrics(&requests.raw).await;
        let (ready, before) = (self.ready?, self.metrics_before?);
        Some(FaultsReport::new(
            ready,
            before,
            after,
            totals.by_status.get(&503).copied().unwrap_or(0),
            totals.retry_after,
        ))
    }
}

fn failure_kind(o: &Outcome) -> String {
    match o {
        Outcome::Ok { .. } => "ok".into(),
        Outcome::Http { status, code, .. } => format!(
            "HTTP {status} {}",
            code.as_deref().unwrap_or("(no error code)")
        ),
        Outcome::Transport(kind) => (*kind).to_string(),
    }
}

/// Polls `/ready` every [`READY_INTERVAL`] until `stop` fires.
pub async fn probe_ready(raw: Raw, start: Instant, mut stop: oneshot::Receiver<()>) -> ReadyReport {
    let mut report = ReadyReport::new();
    let mut tick = tokio::time::interval(READY_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut stop => break,
        }
        let t_secs = start.elapsed().as_secs_f64();
        match raw.get_within::<Value>("/ready", READY_TIMEOUT).await {
            Ok(v) => report.add(t_secs, Ok(&v)),
            Err(f) => report.add(t_secs, Err(failure_kind(&f.outcome()))),
        }
    }
    report
}

/// `/metrics`, parsed, or why it could not be read.
pub async fn read_metrics(raw: &Raw) -> Metrics {
    let text = raw
        .get_text("/metrics")
        .await
        .map_err(|e| format!("GET /metrics failed: {e}"))?;
    let m = parse_metrics(&text);
    if !STORE_COUNTERS.iter().all(|c| m.contains_key(*c)) {
        return Err(format!(
            "GET /metrics has no object-store upload counters ({})",
            STORE_COUNTERS.join(", ")
        ));
    }
    Ok(m)
}

//! The `failure-injection` scenario's checks. The fault injection is the server's
//! (`akidb serve --test-faults latency_ms=..,fail_rate=..,seed=..`, testing only), and the tool
//! cannot start the server or read its fault settings, so it checks what it can see from the
//! outside and says so in the report: `/ready` polled during the run (`ready`, `degraded`,
//! failing), the object-store counters of `/metrics` before and after the run, and the errors
//! by HTTP status and code, with how many carried `Retry-After` (the server's backpressure).
//!
//! This file holds what talks to the server (the `/ready` probe, the `/metrics` reads); what
//! they add up to, and the report section, is in `report.rs`.

pub mod report;

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::Value;
use tokio::sync::oneshot;

use crate::raw::Raw;
use crate::stats::Outcome;
use report::{READY_INTERVAL, READY_TIMEOUT, ReadyReport, STORE_COUNTERS, parse_metrics};

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
pub async fn read_metrics(raw: &Raw) -> Result<BTreeMap<String, f64>, String> {
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

//! The drive phase: the load itself. Open loop (`--qps`: requests due on a fixed schedule,
//! latency from the due time, at most `--max-in-flight` pending) or closed loop (`--workers`
//! sending back to back, latency from the send), over one warm-up and the `--repeat` measured
//! phases. Beside it run the monitor (`monitor.rs`) and whatever the scenario watches
//! ([`ScenarioHooks::load_started`]); both stop when the load ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use tokio::sync::{Semaphore, oneshot};

use super::counters::Shared;
use super::monitor::{Sampled, monitor};
use super::phases::Phases;
use super::prepare::Prepared;
use crate::hooks::ScenarioHooks;
use crate::requests::Requests;
use crate::scenario::Load;
use crate::schedule::RateProfile;

/// An open-loop request sent later than this after its due time counts as late.
pub const LATE_AFTER: Duration = Duration::from_millis(5);

/// What the load leaves for the report.
pub struct Driven {
    pub started_unix_secs: u64,
    pub phases: Phases,
    /// Every request's outcome, by repeat, and the schedule's counters.
    pub shared: Arc<Shared>,
    /// Open loop (a schedule to report on) or closed.
    pub open_loop: bool,
    pub sampled: Sampled,
}

/// The drive phase: starts the monitor and the scenario's watchers, runs the load, stops them.
pub async fn drive<H: ScenarioHooks>(prepared: &Prepared, hooks: &mut H) -> Result<Driven> {
    let cfg = &prepared.cfg;
    let work = &prepared.requests;
    let ops = cfg.mix_parsed.ops();
    let phases = Phases {
        warmup_secs: cfg.warmup_secs,
        duration_secs: cfg.duration_secs,
        repeats: cfg.repeat,
    };
    let shared = Arc::new(Shared::new(&ops, phases.repeats));

    let started_unix_secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let start = Instant::now();
    let (stop_tx, stop_rx) = oneshot::channel();
    let server_pid = prepared.server.pid;
    let mon = tokio::spawn(monitor(server_pid, shared.clone(), start, phases, stop_rx));
    hooks.load_started(&work.raw, start);
    let open_loop = match cfg.load() {
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
                p,
                start,
                phases,
                cfg.max_in_flight,
            )
            .await;
            true
        }
        Load::Closed { workers } => {
            closed_loop(work.clone(), shared.clone(), workers, start, phases).await;
            false
        }
    };
    let _ = stop_tx.send(());
    hooks.load_ended().await?;
    let sampled = mon.await.context("the monitor task failed")?;
    eprintln!(
        "[akidb-load] done in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    Ok(Driven {
        started_unix_secs,
        phases,
        shared,
        open_loop,
        sampled,
    })
}

/// Open loop: request i is due at `start + profile.due(i)`; the generator never waits for
/// answers, and latency runs from the due time. At most `max_in_flight` requests are pending;
/// a request due while the cap is reached is dropped and counted.
async fn open_loop(
    work: Arc<Requests>,
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
                    let done = work.execute(op, rng, i).await;
                    let latency = done.ended.saturating_duration_since(due);
                    shared.record(op, repeat, latency, &done.outcome);
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
    work: Arc<Requests>,
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
                let done = work.execute(op, rng, i).await;
                shared.in_flight.fetch_sub(1, Ordering::Relaxed);
                // A request belongs to the measured phase (and the repeat) it ends in: a request
                // that started in the warm-up and hung into the measured phase must show up.
                // Its latency ends with its measured part (a churn search's exact check after
                // it does not count).
                let ended = done.ended;
                let repeat = phases.repeat_at(ended.duration_since(start).as_secs_f64());
                shared.record(op, repeat, ended.duration_since(t0), &done.outcome);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

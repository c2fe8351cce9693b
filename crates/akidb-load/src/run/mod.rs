//! The run, in three phases, each in its own file:
//!
//! 1. `prepare.rs`: settings, vectors, the server check, the process to sample, the collections
//!    and their preload, the index wait, recall's ground truth, then the scenario's setup.
//! 2. `drive.rs`: the load (open or closed loop, warm-up and `--repeat` phases), with the
//!    monitor (`monitor.rs`: RSS/CPU, progress line) and the scenario's watchers beside it.
//! 3. `finish.rs`: the scenario's end-of-run reads, the cleanup, the report, pass or fail.
//!
//! Serving them: `phases.rs` (which repeat a moment falls in), `counters.rs` (what the request
//! tasks record) and `collections.rs` (create, preload, delete). Scenarios plug into the phases
//! through [`ScenarioHooks`]; `run` (below) is where each scenario's hooks are chosen. This file
//! also owns the entry point and the exit codes.

mod collections;
mod counters;
mod drive;
mod finish;
mod monitor;
mod phases;
mod prepare;

use std::process::ExitCode;

use anyhow::Result;

pub use collections::PRELOAD_BATCH;
pub use drive::LATE_AFTER;
pub use phases::Phases;
pub use prepare::host_port;

use crate::churn::ChurnHooks;
use crate::cli::Args;
use crate::faults::FaultsHooks;
use crate::hooks::{NoHooks, ScenarioHooks};
use crate::scenario::Scenario;
use crate::tiered::TieredHooks;

pub const EXIT_ERROR: u8 = 1;
pub const EXIT_UNAVAILABLE: u8 = 2;
pub const EXIT_THRESHOLD: u8 = 3;

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

/// Chooses the scenario's hooks (the one place that does; a scenario with behaviour of its own
/// adds its line here) and runs.
async fn run(args: Args) -> Result<ExitCode> {
    match args.scenario {
        Scenario::Tiered => run_with(&args, TieredHooks::default()).await,
        Scenario::FailureInjection => run_with(&args, FaultsHooks::default()).await,
        Scenario::Churn => run_with(&args, ChurnHooks::default()).await,
        Scenario::Baseline | Scenario::Sustained | Scenario::Spike | Scenario::ManyCollections => {
            run_with(&args, NoHooks).await
        }
    }
}

/// The three phases in order.
async fn run_with<H: ScenarioHooks>(args: &Args, mut hooks: H) -> Result<ExitCode> {
    let prepared = prepare::prepare(args, &mut hooks).await?;
    let driven = drive::drive(&prepared, &mut hooks).await?;
    let passed = finish::finish(args, prepared, hooks, driven).await?;
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_THRESHOLD)
    })
}

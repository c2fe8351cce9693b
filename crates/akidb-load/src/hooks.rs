//! How a scenario plugs into the run: the [`ScenarioHooks`] trait, called by the run's phases
//! (`run/prepare.rs`, `run/drive.rs`, `run/finish.rs`) at fixed points, and [`NoHooks`], the
//! hooks of the scenarios that only set knob defaults (baseline, sustained, spike,
//! many-collections).
//!
//! Adding a scenario with behaviour of its own: a file implementing [`ScenarioHooks`] (its
//! report part implements [`ReportSection`]), and its line in `run::run`, where a scenario's
//! hooks are chosen; its name and knob defaults go in `scenario.rs`.

use std::time::Instant;

use anyhow::Result;

use crate::raw::Raw;
use crate::requests::{CollectionChoice, Requests};
use crate::section::{NoSection, ReportSection};
use crate::stats::OpStats;

/// What a scenario adds to the run, phase by phase. Every method but the section type has a
/// default that adds nothing. The run calls them in this order, each at most once:
/// [`collection_choice`](Self::collection_choice) and [`prepare`](Self::prepare) in the prepare
/// phase, [`load_started`](Self::load_started) and [`load_ended`](Self::load_ended) around the
/// load, [`finish`](Self::finish) before the cleanup.
///
/// The run awaits the hooks on its own task, never across a spawn, so the futures need not be
/// `Send` (hence `async fn` without bounds).
#[allow(async_fn_in_trait)]
pub trait ScenarioHooks: Sized {
    /// The scenario's part of the report.
    type Section: ReportSection;

    /// How the run's requests pick one of `collections` collections.
    fn collection_choice(&self, _collections: usize) -> CollectionChoice {
        CollectionChoice::Uniform
    }

    /// After the preload and the index wait, before the warm-up: set the server up for the
    /// scenario and take the readings the end compares against. Notes go to the report. An
    /// error stops the run (exit 1); the collections this run created are deleted first when
    /// it cleans up.
    async fn prepare(&mut self, _requests: &Requests, _notes: &mut Vec<String>) -> Result<()> {
        Ok(())
    }

    /// The load (warm-up included) starts at `start`: start watching the server.
    fn load_started(&mut self, _raw: &Raw, _start: Instant) {}

    /// The load is over: stop watching. An error (a watcher task that failed) stops the run.
    async fn load_ended(&mut self) -> Result<()> {
        Ok(())
    }

    /// After the load, before the cleanup deletes the collections: read what the scenario
    /// reports on and build its part of the report. `totals`: every measured request together.
    async fn finish(
        self,
        _requests: &Requests,
        _totals: &OpStats,
        _notes: &mut Vec<String>,
    ) -> Option<Self::Section> {
        None
    }
}

/// The hooks of a scenario that only sets knob defaults: every default, no report part.
pub struct NoHooks;

impl ScenarioHooks for NoHooks {
    type Section = NoSection;
}

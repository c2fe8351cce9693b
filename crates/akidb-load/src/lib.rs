//! akidb-load: the AkiDB load-test tool. See README.md for usage and the report format.
//!
//! Layout, from the leaves up (imports go one way: no file imports one that imports it back):
//!
//! - Leaves: `rng`, `zipf`, `mix` (the operation mix), `schedule` (the open-loop timeline),
//!   `stats` (counters, histograms, thresholds), `dataset` (texmex files, recall), `procmon`
//!   (/proc sampling), `raw` (raw JSON requests), `section` (what a scenario's part of the report
//!   is, and the helpers it shares with the report), `tiered::split` (the tier split by rank).
//! - Settings: `scenario` (names, knob defaults), `cli` (flags resolved into a `Config`).
//! - `requests`: one request of the run, a function of the seed and its number.
//! - `hooks`: the `ScenarioHooks` trait through which a scenario plugs into the run.
//! - Scenarios with hooks, one folder each: `tiered`, `faults` (`failure-injection`), `churn`
//!   (whose `churn::log`, a leaf, the requests write into).
//! - `report`: the run report, JSON and Markdown.
//! - `run`: the entry point and the run's phases (prepare, drive, finish).

pub mod churn;
pub mod cli;
pub mod dataset;
pub mod faults;
pub mod hooks;
pub mod mix;
pub mod procmon;
pub mod raw;
pub mod report;
pub mod requests;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod schedule;
pub mod section;
pub mod stats;
pub mod tiered;
pub mod zipf;

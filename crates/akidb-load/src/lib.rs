//! akidb-load: the AkiDB load-test tool. See README.md for usage and the report format.

pub mod cli;
pub mod dataset;
pub mod faults;
pub mod mix;
pub mod procmon;
pub mod raw;
pub mod report;
pub mod rng;
pub mod runner;
pub mod scenario;
pub mod schedule;
pub mod section;
pub mod stats;
pub mod tiered;
pub mod zipf;

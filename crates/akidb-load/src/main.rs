//! `akidb-load`: load generator for the AkiDB HTTP API.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    akidb_load::run::main_with(akidb_load::cli::Args::parse())
}

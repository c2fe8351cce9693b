//! `akidb`: the AkiDB server binary.

use akidb_server::config::{Config, ServeArgs};
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "akidb",
    version,
    about = "AkiDB: a vector database for data that is mostly cold"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (zero configuration: data in ./akidb-data, listening on 127.0.0.1:8080).
    Serve(Box<ServeArgs>),
    /// Load Parquet, .npy, fvecs or JSONL files into a collection of a running server.
    Import(Box<akidb_server::import::ImportArgs>),
    /// Write every document of a collection of a running server to a Parquet file.
    Export(Box<akidb_server::export::ExportArgs>),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let mut config = Config::resolve(*args)?;
            let telemetry = akidb_server::telemetry::init(&config.log, config.otlp.as_ref())?;
            akidb_server::limits::apply(&mut config);
            let mut runtime = tokio::runtime::Builder::new_multi_thread();
            runtime
                .enable_all()
                .max_blocking_threads(config.max_blocking_threads);
            if let Some(n) = config.worker_threads {
                runtime.worker_threads(n);
            }
            let served = runtime.build()?.block_on(akidb_server::serve(config));
            telemetry.shutdown();
            served
        }
        Command::Import(args) => {
            tracing_subscriber::fmt()
                .with_env_filter(EnvFilter::from_env("RUST_LOG"))
                .with_writer(std::io::stderr)
                .init();
            akidb_server::import::run(*args)
        }
        Command::Export(args) => akidb_server::export::run(*args),
    }
}

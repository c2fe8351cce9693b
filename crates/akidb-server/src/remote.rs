//! The flags the client commands (`akidb import`, `akidb export`) share to reach a server.

use clap::Args;

/// Which server, and the API key to send it.
#[derive(Debug, Clone, Args)]
pub struct Remote {
    /// The server.
    #[arg(long, env = "AKIDB_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// An API key: the write role to import (admin with --create), the read role to export.
    #[arg(long, env = "AKIDB_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

//! Process limits, applied once at start before the runtime is built.
//!
//! - The open-file limit: the soft limit is raised to the hard limit when it is lower (a
//!   server with many collections and connections should not stop at a shell's default of
//!   1024), and `max_open_files` (WAL files open at once), unless set, becomes half of it, so
//!   that the other half stays for connections, object-store files and sockets.
//! - Client connections: `max_connections`, unless set, becomes a quarter of the open-file
//!   limit (at most [`crate::DEFAULT_MAX_CONNECTIONS`]), so that idle clients cannot take the
//!   descriptors the WALs and the object store need.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

use crate::config::Config;

/// WAL files open at once never go below this, whatever the limit.
const MIN_OPEN_FILES: usize = 16;

/// Raises the open-file limit and sizes `max_open_files` from it.
pub fn apply(config: &mut Config) {
    let limit = raise_open_files();
    if !config.max_open_files_set
        && let Some(limit) = limit
    {
        config.engine.max_open_files = (limit / 2).max(MIN_OPEN_FILES as u64) as usize;
    }
    if config.limits.max_connections.is_none()
        && let Some(limit) = limit
    {
        let quarter = usize::try_from(limit / 4).unwrap_or(usize::MAX);
        config.limits.max_connections = Some(quarter.clamp(16, crate::DEFAULT_MAX_CONNECTIONS));
    }
}

/// Raises the soft open-file limit to the hard one; returns the soft limit in force.
fn raise_open_files() -> Option<u64> {
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    let current = current?;
    let Some(maximum) = maximum else {
        return Some(current);
    };
    if maximum > current
        && setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(maximum),
                maximum: Some(maximum),
            },
        )
        .is_ok()
    {
        return Some(maximum);
    }
    Some(current)
}

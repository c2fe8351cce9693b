//! Object-store wiring: turns a configured URL into an [`ObjectStore`].
//!
//! - `file://DIR` (or a plain path): the local filesystem, with fsync on every write, so a
//!   stored manifest is durable when the put returns. The embedded default is
//!   `<data dir>/objects`.
//! - `memory://`: in RAM, for tests.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;

use crate::error::EngineError;

pub fn open_store(url: &str) -> Result<Arc<dyn ObjectStore>, EngineError> {
    if url == "memory://" || url == "memory:///" {
        return Ok(Arc::new(InMemory::new()));
    }
    let dir = url.strip_prefix("file://").unwrap_or(url);
    if dir.contains("://") {
        return Err(EngineError::InvalidConfig(format!(
            "object store url {url:?}: supported schemes are file:// and memory://"
        )));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| EngineError::InvalidConfig(format!("object store directory {dir:?}: {e}")))?;
    let fs = LocalFileSystem::new_with_prefix(dir)
        .map_err(|e| EngineError::InvalidConfig(format!("object store directory {dir:?}: {e}")))?
        .with_fsync(true)
        .with_automatic_cleanup(true);
    Ok(Arc::new(fs))
}

//! The free-space guard: writes are refused, with a clear error, while the data directory's
//! filesystem has less than `min_free_disk_bytes` free.
//!
//! A full disk must not brick anything: a write that finds the disk full is cut back out of the
//! WAL (see [`crate::wal`]), and writes succeed again once space returns. But a flush needs room
//! too (segments and local copies are written before the WAL can be truncated), so the guard
//! refuses writes *before* the disk is full, leaving that room.

use std::path::Path;

use crate::error::EngineError;

/// Bytes available to unprivileged writers on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let s = rustix::fs::statvfs(path)?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

/// Refuses a write of about `incoming` bytes when it would leave less than `min_free` bytes
/// free. `min_free` 0 turns the guard off.
pub fn check(path: &Path, min_free: u64, incoming: u64) -> Result<(), EngineError> {
    if min_free == 0 {
        return Ok(());
    }
    let free = free_bytes(path)?;
    if free < min_free.saturating_add(incoming) {
        return Err(EngineError::InsufficientStorage(format!(
            "the data directory's disk has {free} bytes free, min_free_disk_bytes is {min_free}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_free_space_and_refuses_below_the_minimum() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        assert!(free > 0);
        check(dir.path(), 0, u64::MAX).unwrap();
        check(dir.path(), 1, 0).unwrap();
        match check(dir.path(), free.saturating_mul(2), 0) {
            Err(EngineError::InsufficientStorage(m)) => assert!(m.contains("min_free_disk_bytes")),
            other => panic!("{other:?}"),
        }
    }
}

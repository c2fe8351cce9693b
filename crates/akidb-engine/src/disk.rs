//! The data directory on local disk: the lock that keeps a second server off it, and the
//! free-space guard (writes are refused, with a clear error, while the filesystem has less than
//! `min_free_disk_bytes` free).
//!
//! A full disk must not brick anything: a write that finds the disk full is cut back out of the
//! WAL (see [`crate::wal`]), and writes succeed again once space returns. But a flush needs room
//! too (segments and local copies are written before the WAL can be truncated), so the guard
//! refuses writes *before* the disk is full, leaving that room.

use std::path::Path;

use crate::error::EngineError;

/// An exclusive lock on `<data dir>/LOCK`, held while the engine runs (released by the kernel
/// when the process exits, however it exits). Two servers on one data directory would write
/// the same WALs.
pub struct DirLock {
    _file: std::fs::File,
}

impl DirLock {
    pub fn acquire(data_dir: &Path) -> Result<DirLock, EngineError> {
        use std::io::Write;
        let path = data_dir.join("LOCK");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)?;
        // An engine of this process that was just dropped may still be finishing its background
        // work: wait a moment for it, never for another process for long.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        let mut locked =
            rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive);
        while locked.is_err() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
            locked = rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive);
        }
        if locked.is_err() {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            return Err(EngineError::InvalidConfig(format!(
                "data directory {} is in use by another akidb process ({}); one server per data directory",
                data_dir.display(),
                holder.trim()
            )));
        }
        file.set_len(0)?;
        let _ = writeln!(file, "pid {}", std::process::id());
        Ok(DirLock { _file: file })
    }
}

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
    fn a_second_lock_on_one_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        let err = DirLock::acquire(dir.path()).err().unwrap();
        assert!(err.to_string().contains("in use"), "{err}");
        drop(first);
        DirLock::acquire(dir.path()).unwrap();
    }

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

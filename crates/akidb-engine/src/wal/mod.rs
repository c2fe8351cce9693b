//! The write-ahead log of one collection.
//!
//! # Format
//! A WAL is a directory of files named `<first-seq, 20 digits>.log`, each a sequence of records
//! in the format of [`record`] (a length with its own checksum, the payload, the payload's
//! checksum). Sequence numbers start at 1 and grow by one per record across files.
//!
//! # Group commit
//! [`Wal::append`] writes a record (one `write` syscall, no fsync) and returns its sequence
//! number; [`Wal::sync`] returns once an `fsync` covering that number has completed. Writers
//! that arrive while an `fsync` is in flight wait for it and are then covered together by the
//! next one, so N concurrent writers share far fewer than N fsyncs. A write is acknowledged to a
//! client only after `sync` returns.
//!
//! # Recovery
//! [`Wal::open`] reads every file. A torn tail (see [`record`]: a prefix of a record, or
//! zero-fill, at the end of the newest file) is truncated with a warning. Any other bad record
//! is corruption: `open` fails loudly and the caller fails that collection only.
//!
//! # Truncation
//! [`Wal::truncate_through`] deletes whole files whose every record is covered by a durable
//! manifest. The file being written is never deleted; [`Wal::rotate`] starts a new one.
//!
//! # Files and descriptors
//! Nothing is opened until the first append: a WAL that is only read at start, or whose
//! collection is cold, holds no descriptor. Open files are bounded across collections by the
//! [`FilePool`]; [`Wal::close_file`] closes this one when its collection leaves the hot tier.
//!
//! # Failure
//! - A failed `write` (a full disk, typically) cuts the file back to its last whole record and
//!   returns the error; the log stays usable, so writes succeed again once space returns.
//! - A failed `fsync` (or a failed cut) poisons the log: the file's state is unknown (a failed
//!   fsync may have dropped dirty pages), so every later append fails until [`Wal::recover`]
//!   re-reads the files from disk, as a restart would.

pub mod pool;
pub mod record;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;

pub use self::pool::FilePool;
pub use self::record::Record;

/// A record larger than this is treated as corrupt: the API caps a batch well below it.
pub const MAX_RECORD_BYTES: usize = record::MAX_PAYLOAD;

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("wal i/o at {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("wal corrupted in {path} at byte {offset}: {reason}")]
    Corrupted {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("wal is poisoned by an earlier fsync failure; it is being recovered from disk")]
    Poisoned,
}

impl WalError {
    /// The underlying I/O error, if this is one.
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            WalError::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }

    /// Whether this failed because the disk is full.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, WalError::Io { source, .. } if is_disk_full(source))
    }
}

/// Whether an I/O error means "no space left" (or over a quota).
pub fn is_disk_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull || e.kind() == io::ErrorKind::QuotaExceeded
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Counters shared with the metrics endpoint.
#[derive(Debug, Default)]
pub struct WalStats {
    pub appends: AtomicU64,
    pub bytes: AtomicU64,
    pub fsyncs: AtomicU64,
    /// Bytes of WAL on disk now, across every WAL sharing these stats (what the local budget
    /// limits).
    pub live_bytes: AtomicU64,
    /// Appends that failed because the disk was full (the record was cut off again).
    pub disk_full: AtomicU64,
}

struct Writer {
    /// The current file, while open.
    file: Option<Arc<File>>,
    len: u64,
    /// Sequence number the next record gets.
    next_seq: u64,
    /// First sequence numbers of the files before the current one, oldest first.
    sealed: Vec<u64>,
    current_first_seq: u64,
    /// Whether `dir` exists (it is created by the first append).
    dir_exists: bool,
}

/// The part of a WAL the [`FilePool`] may reach (to close an idle file).
pub(crate) struct Inner {
    dir: PathBuf,
    writer: Mutex<Writer>,
    /// Highest sequence number known durable.
    synced: AtomicU64,
    last_use: AtomicU64,
    pool: Arc<FilePool>,
}

impl Inner {
    fn path(&self, first_seq: u64) -> PathBuf {
        self.dir.join(file_name(first_seq))
    }

    /// Closes the file if nothing written to it waits for an fsync and nobody is writing now.
    fn try_close_idle(&self) -> bool {
        let Some(mut w) = self.writer.try_lock() else {
            return false;
        };
        if self.synced.load(Ordering::Acquire) + 1 < w.next_seq {
            return false;
        }
        w.file = None;
        true
    }
}

pub struct Wal {
    inner: Arc<Inner>,
    /// Serialises fsyncs; whoever holds it syncs on behalf of everyone waiting.
    sync_lock: Mutex<()>,
    poisoned: AtomicBool,
    stats: Arc<WalStats>,
    /// This log's share of `stats.live_bytes`.
    live_bytes: AtomicU64,
}

fn file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.log")
}

fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Creates `dir` and any missing parents, fsyncing each parent whose entries changed, so that
/// a file created in it survives a power cut once the file itself is fsynced.
fn create_dir_durably(dir: &Path) -> Result<(), WalError> {
    let mut missing = Vec::new();
    let mut at = dir;
    while !at.exists() {
        missing.push(at.to_path_buf());
        match at.parent() {
            Some(parent) => at = parent,
            None => break,
        }
    }
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    for created in missing.iter().rev() {
        if let Some(parent) = created.parent() {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// The files of a WAL directory, by first sequence number, oldest first.
fn list_files(dir: &Path) -> Result<Vec<u64>, WalError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir)(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        if let Some(seq) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|s| s.parse::<u64>().ok())
        {
            files.push(seq);
        }
    }
    files.sort_unstable();
    Ok(files)
}

/// What reading a WAL directory found.
struct DirRead {
    records: Vec<Record>,
    files: Vec<u64>,
    /// Intact length of the newest file.
    tail_len: u64,
    /// Bytes of every file, after truncating a torn tail.
    on_disk: u64,
}

/// Reads every file of `dir`, truncating a torn tail of the newest one.
fn read_dir(dir: &Path) -> Result<DirRead, WalError> {
    let files = list_files(dir)?;
    let mut records = Vec::new();
    let mut last_seq = 0u64;
    let mut tail_len = 0;
    let mut on_disk = 0;
    for (i, &first) in files.iter().enumerate() {
        let path = dir.join(file_name(first));
        let is_last = i + 1 == files.len();
        let mut data = Vec::new();
        File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut data))
            .map_err(io_err(&path))?;
        let scan = record::scan(&data, is_last).map_err(|c| WalError::Corrupted {
            path: path.clone(),
            offset: c.offset,
            reason: c.reason,
        })?;
        for r in scan.records {
            if r.seq <= last_seq {
                return Err(WalError::Corrupted {
                    path: path.clone(),
                    offset: 0,
                    reason: format!("sequence {} after {last_seq}", r.seq),
                });
            }
            last_seq = r.seq;
            records.push(r);
        }
        if let Some(reason) = scan.torn {
            tracing::warn!(path = %path.display(), valid_bytes = scan.valid_len,
                file_bytes = data.len(), %reason, "wal: truncating a torn tail left by a crash");
            let file = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io_err(&path))?;
            file.set_len(scan.valid_len).map_err(io_err(&path))?;
            file.sync_all().map_err(io_err(&path))?;
        }
        if is_last {
            tail_len = scan.valid_len;
            on_disk += scan.valid_len;
        } else {
            on_disk += data.len() as u64;
        }
    }
    Ok(DirRead {
        records,
        files,
        tail_len,
        on_disk,
    })
}

impl Writer {
    /// Where appending continues: after the newest record, and never at or below `after_seq`
    /// (what the caller's manifest covers: once those files are deleted, nothing else on disk
    /// remembers how far the numbering went).
    fn from_read(read: &DirRead, dir_exists: bool, after_seq: u64) -> Writer {
        let mut files = read.files.clone();
        let last_seq = read.records.last().map_or(0, |r| r.seq);
        let next_seq = match files.last() {
            Some(&first) => last_seq.max(first.saturating_sub(1)),
            None => last_seq,
        }
        .max(after_seq)
            + 1;
        let current_first_seq = files.pop().unwrap_or(next_seq);
        Writer {
            file: None,
            len: read.tail_len,
            next_seq,
            sealed: files,
            current_first_seq,
            dir_exists,
        }
    }
}

impl Wal {
    /// Opens the WAL in `dir` (which need not exist yet), returning it and every intact
    /// record, oldest first. New records are numbered after the newest one and after
    /// `after_seq` (the sequence number the collection's manifest covers). Opens no file for
    /// writing: the first append does.
    pub fn open(
        dir: &Path,
        after_seq: u64,
        stats: Arc<WalStats>,
        pool: Arc<FilePool>,
    ) -> Result<(Wal, Vec<Record>), WalError> {
        let read = read_dir(dir)?;
        let writer = Writer::from_read(&read, dir.exists(), after_seq);
        stats.live_bytes.fetch_add(read.on_disk, Ordering::Relaxed);
        let wal = Wal {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                synced: AtomicU64::new(writer.next_seq - 1),
                writer: Mutex::new(writer),
                last_use: AtomicU64::new(0),
                pool,
            }),
            sync_lock: Mutex::new(()),
            poisoned: AtomicBool::new(false),
            stats,
            live_bytes: AtomicU64::new(read.on_disk),
        };
        Ok((wal, read.records))
    }

    /// The current file, opened (and registered with the pool) if it is not.
    fn file(&self, w: &mut Writer) -> Result<Arc<File>, WalError> {
        self.inner
            .last_use
            .store(self.inner.pool.tick(), Ordering::Relaxed);
        if let Some(f) = &w.file {
            return Ok(f.clone());
        }
        if !w.dir_exists {
            create_dir_durably(&self.inner.dir)?;
            w.dir_exists = true;
        }
        let path = self.inner.path(w.current_first_seq);
        let existed = path.exists();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        if !existed {
            sync_dir(&self.inner.dir)?;
        }
        let file = Arc::new(file);
        w.file = Some(file.clone());
        self.inner.pool.admit(&self.inner);
        Ok(file)
    }

    /// Appends one record and returns its sequence number. Not durable until [`Wal::sync`].
    ///
    /// `on_written` runs with the log's lock still held, after the record is written: callers use
    /// it to queue the operation for applying, so the apply order is the log order.
    pub fn append(&self, body: &[u8], on_written: impl FnOnce(u64)) -> Result<u64, WalError> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(WalError::Poisoned);
        }
        let mut writer = self.inner.writer.lock();
        let seq = writer.next_seq;
        let buf = record::encode(seq, body);
        let path = self.inner.path(writer.current_first_seq);
        let file = self.file(&mut writer)?;
        if let Err(source) = (&*file).write_all(&buf) {
            // Cut off whatever part of the record reached the file, so that the log ends with
            // a whole record again and later appends (once there is space) are readable.
            if let Err(cut) = file.set_len(writer.len) {
                tracing::error!(path = %path.display(), error = %cut, "wal: could not cut off a failed append; the log is poisoned");
                self.poisoned.store(true, Ordering::Release);
            }
            if is_disk_full(&source) {
                self.stats.disk_full.fetch_add(1, Ordering::Relaxed);
            }
            return Err(WalError::Io { path, source });
        }
        let n = buf.len() as u64;
        writer.len += n;
        writer.next_seq += 1;
        self.live_bytes.fetch_add(n, Ordering::Relaxed);
        self.stats.live_bytes.fetch_add(n, Ordering::Relaxed);
        self.stats.appends.fetch_add(1, Ordering::Relaxed);
        self.stats.bytes.fetch_add(n, Ordering::Relaxed);
        on_written(seq);
        Ok(seq)
    }

    /// Returns once every record up to and including `seq` is durable.
    pub fn sync(&self, seq: u64) -> Result<(), WalError> {
        if self.inner.synced.load(Ordering::Acquire) >= seq {
            return Ok(());
        }
        let _leader = self.sync_lock.lock();
        if self.inner.synced.load(Ordering::Acquire) >= seq {
            return Ok(()); // a leader that ran while we waited covered us
        }
        if self.poisoned.load(Ordering::Acquire) {
            return Err(WalError::Poisoned);
        }
        // Everything written so far is in the current file (earlier files were synced when
        // rotated); a file with unsynced records is never closed, so it is open.
        let (file, path, upto) = {
            let w = self.inner.writer.lock();
            // A rotation or a close (both sync, under this lock) may have covered us since the
            // check above.
            if self.inner.synced.load(Ordering::Acquire) >= seq {
                return Ok(());
            }
            let path = self.inner.path(w.current_first_seq);
            let Some(file) = w.file.clone() else {
                return Err(WalError::Io {
                    path,
                    source: io::Error::other("unsynced records but no open file"),
                });
            };
            (file, path, w.next_seq - 1)
        };
        if let Err(source) = file.sync_data() {
            tracing::error!(path = %path.display(), error = %source, "wal: fsync failed; the log is poisoned until it is recovered from disk");
            self.poisoned.store(true, Ordering::Release);
            return Err(WalError::Io { path, source });
        }
        self.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        // Never backwards: a rotation or close (under the writer lock, not this one) may have
        // made more durable while this fsync ran, and a writer it covered must not find its
        // record unsynced with the file closed.
        self.inner.synced.fetch_max(upto, Ordering::AcqRel);
        Ok(())
    }

    /// Whether an fsync failure poisoned the log (see [`Wal::recover`]).
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// Re-reads the log from disk after a poisoning, exactly as [`Wal::open`] would after a
    /// restart (`after_seq` as there), and makes it usable again. Returns every intact record.
    /// The caller must rebuild whatever it derived from records that were written but not
    /// acknowledged.
    pub fn recover(&self, after_seq: u64) -> Result<Vec<Record>, WalError> {
        let _leader = self.sync_lock.lock();
        let mut w = self.inner.writer.lock();
        if w.file.take().is_some() {
            self.inner.pool.release(Arc::as_ptr(&self.inner));
        }
        let read = read_dir(&self.inner.dir)?;
        *w = Writer::from_read(&read, self.inner.dir.exists(), after_seq);
        self.inner.synced.store(w.next_seq - 1, Ordering::Release);
        let old = self.live_bytes.swap(read.on_disk, Ordering::Relaxed);
        self.stats.live_bytes.fetch_sub(old, Ordering::Relaxed);
        self.stats
            .live_bytes
            .fetch_add(read.on_disk, Ordering::Relaxed);
        self.poisoned.store(false, Ordering::Release);
        tracing::info!(dir = %self.inner.dir.display(), records = read.records.len(), "wal recovered from disk");
        Ok(read.records)
    }

    /// Highest sequence number handed out so far.
    pub fn last_seq(&self) -> u64 {
        self.inner.writer.lock().next_seq - 1
    }

    /// Closes the current file and starts a new one (created by the next append), so that what
    /// was written so far can later be deleted as a whole once a manifest covers it.
    pub fn rotate(&self) -> Result<(), WalError> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(WalError::Poisoned);
        }
        let mut w = self.inner.writer.lock();
        if w.len == 0 {
            return Ok(());
        }
        if let Some(file) = w.file.take() {
            let path = self.inner.path(w.current_first_seq);
            if let Err(e) = file.sync_all() {
                self.poisoned.store(true, Ordering::Release);
                return Err(io_err(&path)(e));
            }
            self.inner.pool.release(Arc::as_ptr(&self.inner));
        }
        // Everything written so far is durable now: writers still waiting for their fsync are
        // covered (the file they wrote to is closed, so `sync` must not look for it).
        self.inner
            .synced
            .fetch_max(w.next_seq - 1, Ordering::AcqRel);
        let first = w.next_seq;
        let old_first = std::mem::replace(&mut w.current_first_seq, first);
        w.sealed.push(old_first);
        w.len = 0;
        Ok(())
    }

    /// Deletes every sealed file all of whose records have `seq <= covered`.
    pub fn truncate_through(&self, covered: u64) -> Result<usize, WalError> {
        let doomed: Vec<PathBuf> = {
            let mut w = self.inner.writer.lock();
            let mut doomed = Vec::new();
            // File i holds [first_i, first_{i+1} - 1]; the last sealed one ends before the current.
            while !w.sealed.is_empty() {
                let next_first = if w.sealed.len() > 1 {
                    w.sealed[1]
                } else {
                    w.current_first_seq
                };
                if next_first - 1 <= covered {
                    let first = w.sealed.remove(0);
                    doomed.push(self.inner.path(first));
                } else {
                    break;
                }
            }
            doomed
        };
        for path in &doomed {
            let len = fs::metadata(path).map_or(0, |m| m.len());
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(path)(e)),
            }
            self.live_bytes.fetch_sub(len, Ordering::Relaxed);
            self.stats.live_bytes.fetch_sub(len, Ordering::Relaxed);
        }
        if !doomed.is_empty() {
            sync_dir(&self.inner.dir)?;
        }
        Ok(doomed.len())
    }

    /// Closes the current file (after an fsync if anything is unsynced), e.g. when the
    /// collection leaves the hot tier. The next append reopens it.
    pub fn close_file(&self) -> Result<(), WalError> {
        let mut w = self.inner.writer.lock();
        if let Some(file) = w.file.take() {
            if self.inner.synced.load(Ordering::Acquire) + 1 < w.next_seq {
                let path = self.inner.path(w.current_first_seq);
                if let Err(e) = file.sync_data() {
                    self.poisoned.store(true, Ordering::Release);
                    return Err(io_err(&path)(e));
                }
                self.inner
                    .synced
                    .fetch_max(w.next_seq - 1, Ordering::AcqRel);
            }
            self.inner.pool.release(Arc::as_ptr(&self.inner));
        }
        Ok(())
    }

    /// Whether this log's file is open now.
    pub fn has_open_file(&self) -> bool {
        self.inner.writer.lock().file.is_some()
    }

    /// Whether the log holds no record on disk (nothing to replay, nothing to keep).
    pub fn is_empty(&self) -> bool {
        let w = self.inner.writer.lock();
        w.sealed.is_empty() && w.len == 0
    }

    /// Bytes of this log on disk (kept up to date by append, truncation and open).
    pub fn disk_bytes(&self) -> u64 {
        self.live_bytes.load(Ordering::Relaxed)
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if self.inner.writer.lock().file.take().is_some() {
            self.inner.pool.release(Arc::as_ptr(&self.inner));
        }
        // This log no longer counts against the shared budget (its collection was closed or
        // deleted).
        self.stats
            .live_bytes
            .fetch_sub(self.live_bytes.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests;

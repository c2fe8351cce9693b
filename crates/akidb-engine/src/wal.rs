//! The write-ahead log of one collection.
//!
//! # Format
//! A WAL is a directory of files named `<first-seq, 20 digits>.log`. Each file is a sequence of
//! records:
//!
//! ```text
//! [payload length: u32 LE][CRC32C of payload: u32 LE][payload: seq u64 LE, then the operation]
//! ```
//!
//! Sequence numbers start at 1 and grow by one per record across files.
//!
//! # Group commit
//! [`Wal::append`] writes a record (one `write` syscall, no fsync) and returns its sequence
//! number; [`Wal::sync`] returns once an `fsync` covering that number has completed. Writers
//! that arrive while an `fsync` is in flight wait for it and are then covered together by the
//! next one, so N concurrent writers share far fewer than N fsyncs. A write is acknowledged to a
//! client only after `sync` returns.
//!
//! # Recovery
//! [`Wal::open`] reads every file. A record cut short or failing its checksum at the very end of
//! the last file is a torn write from a crash: it is truncated away with a warning. A bad record
//! followed by more data, or in any file but the last, is corruption: `open` fails loudly and the
//! caller fails that collection only.
//!
//! # Truncation
//! [`Wal::truncate_through`] deletes whole files whose every record is covered by a durable
//! manifest. The file being written is never deleted; [`Wal::rotate`] starts a new one.
//!
//! # Failure
//! If a write or an fsync fails, the log is poisoned: the state of the file is unknown (a failed
//! fsync may have dropped dirty pages), so every later append fails until the collection is
//! reopened, which re-reads the file from disk.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;

const HEADER_LEN: usize = 8;
/// A record larger than this is treated as corrupt: the API caps a batch well below it.
pub const MAX_RECORD_BYTES: usize = 1 << 30;

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
    #[error("wal is poisoned by an earlier write or fsync failure; reopen the collection")]
    Poisoned,
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
}

/// One record read back during recovery.
#[derive(Debug, Clone)]
pub struct Record {
    pub seq: u64,
    pub payload: Vec<u8>,
}

struct Writer {
    file: Arc<File>,
    path: PathBuf,
    len: u64,
    /// Sequence number the next record gets.
    next_seq: u64,
    /// Files before the current one: (first seq, path), oldest first.
    sealed: Vec<(u64, PathBuf)>,
    current_first_seq: u64,
}

pub struct Wal {
    dir: PathBuf,
    writer: Mutex<Writer>,
    /// Serialises fsyncs; whoever holds it syncs on behalf of everyone waiting.
    sync_lock: Mutex<()>,
    /// Highest sequence number known durable.
    synced: AtomicU64,
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

impl Wal {
    /// Opens (or creates) the WAL in `dir`, returning it and every intact record, oldest first.
    pub fn open(dir: &Path, stats: Arc<WalStats>) -> Result<(Wal, Vec<Record>), WalError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut files: Vec<(u64, PathBuf)> = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_err(dir))? {
            let entry = entry.map_err(io_err(dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(seq) = name
                .strip_suffix(".log")
                .and_then(|s| s.parse::<u64>().ok())
            {
                files.push((seq, entry.path()));
            }
        }
        files.sort();

        let mut records = Vec::new();
        let mut last_seq = 0u64;
        let file_count = files.len();
        let mut tail_len = 0u64;
        for (i, (_, path)) in files.iter().enumerate() {
            let is_last = i + 1 == file_count;
            let (file_records, valid_len) = read_file(path, is_last)?;
            for record in file_records {
                if record.seq <= last_seq {
                    return Err(WalError::Corrupted {
                        path: path.clone(),
                        offset: 0,
                        reason: format!("sequence {} after {last_seq}", record.seq),
                    });
                }
                last_seq = record.seq;
                records.push(record);
            }
            if is_last {
                tail_len = valid_len;
            }
        }

        let (current_first_seq, path, sealed) = match files.pop() {
            Some((first, path)) => (first, path, files),
            None => (1, dir.join(file_name(1)), Vec::new()),
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let actual_len = file.metadata().map_err(io_err(&path))?.len();
        if actual_len > tail_len {
            tracing::warn!(path = %path.display(), valid_bytes = tail_len, file_bytes = actual_len,
                "wal: truncating torn tail left by a crash");
            file.set_len(tail_len).map_err(io_err(&path))?;
            file.sync_all().map_err(io_err(&path))?;
        }
        sync_dir(dir)?;
        let next_seq = last_seq.max(current_first_seq.saturating_sub(1)) + 1;
        let sealed_bytes: u64 = sealed
            .iter()
            .filter_map(|(_, p)| fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        let on_disk = sealed_bytes + tail_len;
        stats.live_bytes.fetch_add(on_disk, Ordering::Relaxed);
        let wal = Wal {
            dir: dir.to_path_buf(),
            writer: Mutex::new(Writer {
                file: Arc::new(file),
                path,
                len: tail_len,
                next_seq,
                sealed,
                current_first_seq,
            }),
            sync_lock: Mutex::new(()),
            synced: AtomicU64::new(next_seq - 1),
            poisoned: AtomicBool::new(false),
            stats,
            live_bytes: AtomicU64::new(on_disk),
        };
        Ok((wal, records))
    }

    /// Appends one record and returns its sequence number. Not durable until [`Wal::sync`].
    ///
    /// `on_written` runs with the log's lock still held, after the record is written: callers use
    /// it to queue the operation for applying, so the apply order is the log order.
    pub fn append(&self, body: &[u8], on_written: impl FnOnce(u64)) -> Result<u64, WalError> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(WalError::Poisoned);
        }
        let mut writer = self.writer.lock();
        let seq = writer.next_seq;
        let payload_len = 8 + body.len();
        let mut buf = Vec::with_capacity(HEADER_LEN + payload_len);
        buf.extend_from_slice(&(payload_len as u32).to_le_bytes());
        buf.extend_from_slice(&[0; 4]);
        buf.extend_from_slice(&seq.to_le_bytes());
        buf.extend_from_slice(body);
        let crc = crc32c::crc32c(&buf[HEADER_LEN..]);
        buf[4..8].copy_from_slice(&crc.to_le_bytes());
        if let Err(source) = (&*writer.file).write_all(&buf) {
            self.poisoned.store(true, Ordering::Release);
            return Err(WalError::Io {
                path: writer.path.clone(),
                source,
            });
        }
        writer.len += buf.len() as u64;
        writer.next_seq += 1;
        self.live_bytes
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.stats
            .live_bytes
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.stats.appends.fetch_add(1, Ordering::Relaxed);
        self.stats
            .bytes
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        on_written(seq);
        Ok(seq)
    }

    /// Returns once every record up to and including `seq` is durable.
    pub fn sync(&self, seq: u64) -> Result<(), WalError> {
        if self.synced.load(Ordering::Acquire) >= seq {
            return Ok(());
        }
        let _leader = self.sync_lock.lock();
        if self.synced.load(Ordering::Acquire) >= seq {
            return Ok(()); // a leader that ran while we waited covered us
        }
        if self.poisoned.load(Ordering::Acquire) {
            return Err(WalError::Poisoned);
        }
        // Everything written so far is in `file` (earlier files were synced when rotated).
        let (file, path, upto) = {
            let w = self.writer.lock();
            (w.file.clone(), w.path.clone(), w.next_seq - 1)
        };
        if let Err(source) = file.sync_data() {
            self.poisoned.store(true, Ordering::Release);
            return Err(WalError::Io { path, source });
        }
        self.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.synced.store(upto, Ordering::Release);
        Ok(())
    }

    /// Highest sequence number handed out so far.
    pub fn last_seq(&self) -> u64 {
        self.writer.lock().next_seq - 1
    }

    /// Closes the current file and starts a new one, so that what was written so far can later
    /// be deleted as a whole once a manifest covers it.
    pub fn rotate(&self) -> Result<(), WalError> {
        let mut w = self.writer.lock();
        if w.len == 0 {
            return Ok(());
        }
        w.file.sync_all().map_err(io_err(&w.path))?;
        let first = w.next_seq;
        let path = self.dir.join(file_name(first));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        sync_dir(&self.dir)?;
        let old = std::mem::replace(&mut w.path, path);
        let old_first = std::mem::replace(&mut w.current_first_seq, first);
        w.sealed.push((old_first, old));
        w.file = Arc::new(file);
        w.len = 0;
        Ok(())
    }

    /// Deletes every sealed file all of whose records have `seq <= covered`.
    pub fn truncate_through(&self, covered: u64) -> Result<usize, WalError> {
        let doomed: Vec<PathBuf> = {
            let mut w = self.writer.lock();
            let mut doomed = Vec::new();
            // File i holds [first_i, first_{i+1} - 1]; the last sealed one ends before the current.
            while !w.sealed.is_empty() {
                let next_first = if w.sealed.len() > 1 {
                    w.sealed[1].0
                } else {
                    w.current_first_seq
                };
                if next_first - 1 <= covered {
                    doomed.push(w.sealed.remove(0).1);
                } else {
                    break;
                }
            }
            doomed
        };
        for path in &doomed {
            let len = fs::metadata(path).map_or(0, |m| m.len());
            fs::remove_file(path).map_err(io_err(path))?;
            self.live_bytes.fetch_sub(len, Ordering::Relaxed);
            self.stats.live_bytes.fetch_sub(len, Ordering::Relaxed);
        }
        if !doomed.is_empty() {
            sync_dir(&self.dir)?;
        }
        Ok(doomed.len())
    }

    /// Bytes of this log on disk (kept up to date by append, truncation and open).
    pub fn disk_bytes(&self) -> u64 {
        self.live_bytes.load(Ordering::Relaxed)
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        // This log no longer counts against the shared budget (its collection was closed or
        // deleted).
        self.stats
            .live_bytes
            .fetch_sub(self.live_bytes.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

/// Reads the intact records of one file and the length of its intact prefix.
fn read_file(path: &Path, is_last: bool) -> Result<(Vec<Record>, u64), WalError> {
    let mut file = File::open(path).map_err(io_err(path))?;
    let mut data = Vec::new();
    file.seek(SeekFrom::Start(0)).map_err(io_err(path))?;
    file.read_to_end(&mut data).map_err(io_err(path))?;
    let mut records = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        let mut record_end = data.len();
        let reason = if data.len() - pos < HEADER_LEN {
            "record header cut short"
        } else {
            let len = u32::from_le_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
            let crc = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().unwrap());
            if !(8..=MAX_RECORD_BYTES).contains(&len) {
                "impossible record length"
            } else if data.len() - pos - HEADER_LEN < len {
                "record cut short"
            } else {
                record_end = pos + HEADER_LEN + len;
                let payload = &data[pos + HEADER_LEN..record_end];
                if crc32c::crc32c(payload) != crc {
                    "checksum mismatch"
                } else {
                    let seq = u64::from_le_bytes(payload[..8].try_into().unwrap());
                    records.push(Record {
                        seq,
                        payload: payload[8..].to_vec(),
                    });
                    pos = record_end;
                    continue;
                }
            }
        };
        // A torn tail: the bad record is the last thing in the last file (or only zeros follow,
        // which some filesystems leave after a crash that extended the file).
        let rest_is_zero = data[record_end.min(data.len())..].iter().all(|&b| b == 0);
        let torn = is_last && (record_end >= data.len() || rest_is_zero);
        if torn {
            tracing::warn!(path = %path.display(), offset = pos, %reason, "wal: torn tail");
            return Ok((records, pos as u64));
        }
        return Err(WalError::Corrupted {
            path: path.to_path_buf(),
            offset: pos as u64,
            reason: reason.to_string(),
        });
    }
    Ok((records, pos as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> (Wal, Vec<Record>) {
        Wal::open(dir, Arc::default()).unwrap()
    }

    #[test]
    fn append_sync_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (wal, recs) = open(dir.path());
            assert!(recs.is_empty());
            for i in 0..10u8 {
                let seq = wal.append(&[i; 5], |_| {}).unwrap();
                wal.sync(seq).unwrap();
            }
        }
        let (wal, recs) = open(dir.path());
        assert_eq!(recs.len(), 10);
        assert_eq!(recs[3].seq, 4);
        assert_eq!(recs[3].payload, vec![3u8; 5]);
        assert_eq!(wal.append(b"x", |_| {}).unwrap(), 11);
    }

    #[test]
    fn torn_tail_is_truncated_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        let path = {
            let (wal, _) = open(dir.path());
            for _ in 0..3 {
                let seq = wal.append(b"hello world", |_| {}).unwrap();
                wal.sync(seq).unwrap();
            }
            wal.writer.lock().path.clone()
        };
        let len = fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 4)
            .unwrap();
        let (wal, recs) = open(dir.path());
        assert_eq!(recs.len(), 2);
        assert_eq!(wal.append(b"again", |_| {}).unwrap(), 3);
        drop(wal);
        let (_, recs) = open(dir.path());
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[2].payload, b"again");
    }

    #[test]
    fn corruption_in_the_middle_fails_loudly() {
        let dir = tempfile::tempdir().unwrap();
        let path = {
            let (wal, _) = open(dir.path());
            for _ in 0..3 {
                wal.append(b"hello world", |_| {}).unwrap();
            }
            wal.writer.lock().path.clone()
        };
        let mut data = fs::read(&path).unwrap();
        data[HEADER_LEN + 9] ^= 0xff; // flip a byte in the first record's payload
        fs::write(&path, data).unwrap();
        assert!(matches!(
            Wal::open(dir.path(), Arc::default()),
            Err(WalError::Corrupted { .. })
        ));
    }

    #[test]
    fn live_bytes_follow_appends_truncation_and_drop() {
        let dir = tempfile::tempdir().unwrap();
        let stats = Arc::new(WalStats::default());
        let (wal, _) = Wal::open(dir.path(), stats.clone()).unwrap();
        wal.append(&[1; 100], |_| {}).unwrap();
        wal.rotate().unwrap();
        wal.append(&[2; 100], |_| {}).unwrap();
        let record = (HEADER_LEN + 8 + 100) as u64;
        assert_eq!(stats.live_bytes.load(Ordering::Relaxed), 2 * record);
        wal.truncate_through(1).unwrap();
        assert_eq!(stats.live_bytes.load(Ordering::Relaxed), record);
        drop(wal);
        assert_eq!(stats.live_bytes.load(Ordering::Relaxed), 0);
        let (_wal, _) = Wal::open(dir.path(), stats.clone()).unwrap();
        assert_eq!(
            stats.live_bytes.load(Ordering::Relaxed),
            record,
            "reopening counts what is on disk"
        );
    }

    #[test]
    fn rotate_and_truncate() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = open(dir.path());
        for _ in 0..3 {
            wal.append(b"a", |_| {}).unwrap();
        }
        wal.rotate().unwrap(); // file 1 holds 1..=3
        for _ in 0..3 {
            wal.append(b"b", |_| {}).unwrap();
        }
        wal.rotate().unwrap(); // file 4 holds 4..=6
        wal.append(b"c", |_| {}).unwrap(); // current file 7
        assert_eq!(wal.truncate_through(2).unwrap(), 0);
        assert_eq!(wal.truncate_through(5).unwrap(), 1);
        assert_eq!(wal.truncate_through(100).unwrap(), 1);
        drop(wal);
        let (wal, recs) = open(dir.path());
        assert_eq!(recs.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![7]);
        assert_eq!(wal.append(b"d", |_| {}).unwrap(), 8);
    }

    #[test]
    fn concurrent_appends_are_all_synced_and_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let stats = Arc::new(WalStats::default());
        let (wal, _) = Wal::open(dir.path(), stats.clone()).unwrap();
        let wal = Arc::new(wal);
        std::thread::scope(|s| {
            for t in 0..8 {
                let wal = wal.clone();
                s.spawn(move || {
                    for _ in 0..50 {
                        let seq = wal.append(&[t; 64], |_| {}).unwrap();
                        wal.sync(seq).unwrap();
                        assert!(wal.synced.load(Ordering::Acquire) >= seq);
                    }
                });
            }
        });
        assert_eq!(stats.appends.load(Ordering::Relaxed), 400);
        drop(wal);
        let (_, recs) = open(dir.path());
        assert_eq!(recs.len(), 400);
    }
}

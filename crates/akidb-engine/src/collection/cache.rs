//! A collection's local copies (the warm tier) and loading: objects are read from the local
//! copy when it is intact (size and CRC32C as the manifest says), else fetched from the object
//! store (once more if the fetched bytes are damaged) and kept locally; a state is built by
//! replaying the segments' rows in order, installing the saved graph, then the WAL records
//! past the manifest.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use tokio::io::AsyncWriteExt;

use super::Collection;
use super::state::State;
use crate::doc::Operation;
use crate::error::EngineError;
use crate::manifest::{CollectionDef, Manifest, ObjectRef};
use crate::segment;
use crate::upload::retry::RetryError;
use crate::wal::Record;

/// How many objects are fetched at once when a collection is loaded. High enough that a
/// collection's segments come in one parallel round.
const FETCH_CONCURRENCY: usize = 32;

/// Objects downloaded at once for a move to warm (each streams to disk, so RAM stays small).
const DOWNLOAD_CONCURRENCY: usize = 8;

/// Whether the file at `path` has `bytes` bytes with CRC32C `crc32c` (read in chunks).
fn local_copy_intact(path: &std::path::Path, bytes: u64, crc32c: Option<u32>) -> bool {
    use std::io::Read;
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    if file.metadata().map(|m| m.len()).ok() != Some(bytes) {
        return false;
    }
    let Some(expected) = crc32c else {
        return true;
    };
    let (mut crc, mut buf) = (0u32, vec![0u8; 8 << 20]);
    loop {
        match file.read(&mut buf) {
            Ok(0) => return crc == expected,
            Ok(n) => crc = crc32c::crc32c_append(crc, &buf[..n]),
            Err(_) => return false,
        }
    }
}

/// Applies WAL records (those past the manifest) to a loaded state, in order.
pub(super) fn replay_wal(
    state: &mut State,
    def: &CollectionDef,
    records: &[Record],
) -> Result<(), EngineError> {
    for record in records {
        let op = Operation::decode(&record.payload).map_err(|e| {
            EngineError::Corrupted(format!("wal record {} of {:?}: {e}", record.seq, def.name))
        })?;
        state.apply(record.seq, op);
    }
    if !records.is_empty() {
        tracing::info!(collection = %def.name, replayed = records.len(), "replayed wal records");
    }
    Ok(())
}

/// `m`'s objects (path, size, CRC), owned, so that a stream's closure over them borrows nothing
/// with a lifetime of its own (the future must be `Send` for any lifetime when spawned).
fn owned_objects(m: &Manifest) -> Vec<(String, u64, Option<u32>)> {
    m.objects()
        .map(|o| (o.path.to_string(), o.bytes, o.crc32c))
        .collect()
}

/// A failed read of an object the manifest names: missing is damage (`Corrupted`), anything
/// else is the store being unavailable.
pub(super) fn read_error(path: &str, e: RetryError) -> EngineError {
    match e {
        RetryError::Permanent {
            source: object_store::Error::NotFound { .. },
            ..
        } => EngineError::Corrupted(format!(
            "{path}, named by the manifest, is missing from the object store"
        )),
        e => EngineError::Unavailable(e.to_string()),
    }
}

impl Collection {
    /// Stores an object and keeps a local copy (uploads of compaction and base builds).
    pub(super) async fn store_object(
        &self,
        path: &ObjectPath,
        data: &Bytes,
    ) -> Result<(), EngineError> {
        self.uploader()
            .put_object(path, data.clone())
            .await
            .map_err(|e| EngineError::Unavailable(e.to_string()))?;
        self.write_local(path.as_ref(), data).await;
        Ok(())
    }

    /// Where the local copy of an object lives.
    pub(super) fn local_path(&self, object: &str) -> PathBuf {
        let name = object.rsplit('/').next().unwrap_or(object);
        self.dir.join("segments").join(name)
    }

    /// Recounts the local copies of `m`'s objects (by size; their checksums are verified when
    /// they are read); returns whether all of them are present.
    pub(super) fn refresh_cache_bytes(&self, m: &Manifest) -> bool {
        let mut all = true;
        let mut bytes = 0;
        for object in m.objects() {
            match std::fs::metadata(self.local_path(object.path)) {
                Ok(meta) if meta.len() == object.bytes => bytes += object.bytes,
                _ => all = false,
            }
        }
        self.cache_bytes.store(bytes, Ordering::Relaxed);
        all
    }

    /// Writes a local copy (a cache: no fsync; a damaged copy is fetched again).
    pub(super) async fn write_local(&self, object: &str, data: &Bytes) {
        let path = self.local_path(object);
        let tmp = path.with_extension("tmp");
        let result = async {
            tokio::fs::create_dir_all(path.parent().expect("has a parent")).await?;
            tokio::fs::write(&tmp, data).await?;
            tokio::fs::rename(&tmp, &path).await
        }
        .await;
        if let Err(e) = result {
            // A full disk, typically: the copy is a cache, the object store has the data.
            let _ = tokio::fs::remove_file(&tmp).await;
            tracing::warn!(path = %path.display(), error = %e, "could not keep a local copy");
        }
    }

    /// An object's bytes, verified against the manifest (size and checksum): the local copy
    /// when it is intact, else fetched (once more if the fetched bytes are damaged) and kept
    /// locally. Damage that a refetch does not cure is `Corrupted`, never served.
    pub(super) async fn fetch(&self, object: ObjectRef<'_>) -> Result<Bytes, EngineError> {
        let local = self.local_path(object.path);
        if let Ok(data) = tokio::fs::read(&local).await {
            match object.verify(&data) {
                Ok(()) => return Ok(Bytes::from(data)),
                Err(why) => {
                    tracing::warn!(collection = %self.def.name, %why, "local copy damaged; fetching the object again");
                    let _ = tokio::fs::remove_file(&local).await;
                }
            }
        }
        // Retried like uploads (a transient failure must not fail a cold read).
        let path = ObjectPath::from(object.path);
        let mut last_damage = String::new();
        for _ in 0..2 {
            let data = self
                .uploader()
                .get(&path)
                .await
                .map_err(|e| read_error(object.path, e))?;
            match object.verify(&data) {
                Ok(()) => {
                    self.write_local(object.path, &data).await;
                    return Ok(data);
                }
                Err(why) => {
                    tracing::warn!(collection = %self.def.name, %why, "object store returned damaged bytes");
                    last_damage = why;
                }
            }
        }
        Err(EngineError::Corrupted(format!(
            "damaged in the object store: {last_damage}"
        )))
    }

    /// Makes the local copy of every object `m` names intact (the warm tier), streaming what
    /// is missing or damaged from the object store to disk: the collection never passes through
    /// RAM, however large.
    #[tracing::instrument(name = "download", skip_all, fields(collection = %self.def.name))]
    pub(super) async fn download_all(&self, m: &Manifest) -> Result<(), EngineError> {
        futures::stream::iter(owned_objects(m))
            .map(|(path, bytes, crc32c)| async move {
                self.download(ObjectRef {
                    path: &path,
                    bytes,
                    crc32c,
                })
                .await
            })
            .buffer_unordered(DOWNLOAD_CONCURRENCY)
            .try_collect::<()>()
            .await
    }

    /// See [`Collection::download_all`]: one object, checked by size and CRC32C as it streams
    /// (once more if the store's bytes are damaged or the stream breaks).
    async fn download(&self, object: ObjectRef<'_>) -> Result<(), EngineError> {
        let local = self.local_path(object.path);
        let (path, bytes, crc32c) = (local.clone(), object.bytes, object.crc32c);
        let intact = tokio::task::spawn_blocking(move || local_copy_intact(&path, bytes, crc32c))
            .await
            .expect("check task panicked");
        if intact {
            return Ok(());
        }
        tokio::fs::create_dir_all(local.parent().expect("has a parent")).await?;
        let tmp = local.with_extension("download");
        let source = ObjectPath::from(object.path);
        let mut last = String::new();
        for _ in 0..2 {
            let mut stream = self
                .uploader()
                .get_stream(&source)
                .await
                .map_err(|e| read_error(object.path, e))?;
            let mut file = tokio::fs::File::create(&tmp).await?;
            let (mut len, mut crc, mut broken) = (0u64, 0u32, None);
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(chunk) => {
                        crc = crc32c::crc32c_append(crc, &chunk);
                        len += chunk.len() as u64;
                        file.write_all(&chunk).await?;
                    }
                    Err(e) => {
                        broken = Some(e);
                        break;
                    }
                }
            }
            file.flush().await?;
            drop(file);
            if let Some(e) = broken {
                last = format!("{}: the download broke off: {e}", object.path);
            } else if len != object.bytes || object.crc32c.is_some_and(|c| c != crc) {
                last = format!(
                    "damaged in the object store: {}: {len} bytes with checksum {crc:08x}, the manifest says {} and {:?}",
                    object.path, object.bytes, object.crc32c
                );
            } else {
                tokio::fs::rename(&tmp, &local).await?;
                return Ok(());
            }
            tracing::warn!(collection = %self.def.name, why = %last, "download failed; trying once more");
        }
        let _ = tokio::fs::remove_file(&tmp).await;
        Err(if last.starts_with("damaged") {
            EngineError::Corrupted(last)
        } else {
            EngineError::Unavailable(last)
        })
    }

    /// Every object `m` names, in order, fetched in one parallel round.
    pub(super) async fn fetch_all(&self, m: &Manifest) -> Result<Vec<Bytes>, EngineError> {
        futures::stream::iter(owned_objects(m))
            .map(|(path, bytes, crc32c)| async move {
                self.fetch(ObjectRef {
                    path: &path,
                    bytes,
                    crc32c,
                })
                .await
            })
            .buffered(FETCH_CONCURRENCY)
            .try_collect()
            .await
    }

    /// Builds the in-memory state from `m`'s objects (one parallel round of fetches) and then
    /// `replay`; a state that is to become hot (`to_hot`) is also quantized as the collection
    /// asks, off the locks (a transient one, read once and dropped, is not).
    #[tracing::instrument(name = "load", skip_all, fields(collection = %self.def.name, bytes = m.object_bytes()))]
    pub(super) async fn load_state(
        &self,
        m: &Manifest,
        replay: Arc<Vec<Record>>,
        to_hot: bool,
    ) -> Result<State, EngineError> {
        let mut objects: Vec<Bytes> = self.fetch_all(m).await?;
        let graph = m.graph.as_ref().and_then(|_| objects.pop());
        let base = m.base.clone().map(|b| (b, objects.remove(0)));
        let def = CollectionDef {
            payload_indexes: m.collection.payload_indexes.clone(),
            ..(*self.def).clone()
        };
        let wal_seq = m.wal_seq;
        let threads = self.env.index_threads;
        let (want, dir) = (self.quantization(), self.dir.clone());
        let (state, converted) = tokio::task::spawn_blocking(move || {
            let mut state = State::new(&def, wal_seq);
            state.set_build_threads(threads);
            if let Some((base, data)) = base {
                super::base::load_base(&mut state, def.dimension, &base, data).map_err(|e| {
                    EngineError::Corrupted(format!("partitioned base {}: {e}", base.path))
                })?;
            }
            for data in objects {
                for row in segment::decode(def.dimension, data)? {
                    state.load_row(row);
                }
            }
            state.mark_all_flushed();
            if let Some(graph) = graph
                && let Err(e) = state.install_graph(&graph)
            {
                tracing::warn!(collection = %def.name, error = %e, "saved graph unusable; rebuilding it");
            }
            replay_wal(&mut state, &def, &replay)?;
            let converted = !to_hot || super::quantize_state(&mut state, want, &def, &dir);
            Ok::<_, EngineError>((state, converted))
        })
        .await
        .expect("load task panicked")?;
        if !converted {
            self.defer_quantization();
        }
        Ok(state)
    }
}

//! The partitioned base of a collection (see [`crate::partitioned`]): when it is due, building
//! it from the hot state, and loading it back.
//!
//! A build runs like a compaction (see [`super::compaction`]): with the tier lock held shared
//! (the collection stays hot, requests go on) and the manifest lock held (no other commit),
//! it flushes, notes the sealed slots `0..n`, and copies them out of the state a chunk at a
//! time under brief read locks. Slot numbers do not change, so the saved graph stays valid.
//! The base marks the slots dead *at copy time*: a document replaced or deleted after the
//! flush is already dead in the base, and the operation that killed it is in the WAL (and, once
//! flushed, in a later segment), so every state that includes the base applies it too. The new
//! manifest names the base and no segment (all of them are below `n`); the old objects are
//! deleted after the commit.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::Collection;
use super::seal::COPY_CHUNK;
use super::state::State;
use crate::doc::Document;
use crate::error::EngineError;
use crate::manifest::{BaseRef, HeaderRef, base_path};
use crate::partitioned::{self, BuildParams, Header, Partition, PartitionWriter, Source};
use crate::tier::Tier;

/// Clears `rewriting` however the build ends.
struct Rewriting<'a>(&'a Collection);

impl Drop for Rewriting<'_> {
    fn drop(&mut self) {
        self.0.rewriting.store(false, Ordering::Release);
    }
}

/// A build stops (like one whose collection was unloaded) when a quantized collection's
/// vector file cannot be read.
fn read_vectors(r: std::io::Result<()>) -> Option<()> {
    r.inspect_err(
        |e| tracing::warn!(error = %e, "base build could not read the vectors; not building"),
    )
    .ok()
}

/// The hot state as a build's source: each call under a brief read lock.
struct StateSource<'a>(&'a Collection);

impl Source for StateSource<'_> {
    fn vectors(&mut self, slots: &[u32], out: &mut Vec<f32>) -> Option<()> {
        let state = self.0.state.read();
        read_vectors(state.as_ref()?.copy_vectors(slots, out))
    }

    fn rows(
        &mut self,
        slots: &[u32],
        out: &mut PartitionWriter,
        dead: &mut Vec<u32>,
    ) -> Option<()> {
        // A partition can be large: a bounded chunk per read lock, so writers never wait long.
        for chunk in slots.chunks(COPY_CHUNK) {
            let state = self.0.state.read();
            read_vectors(state.as_ref()?.copy_base_rows(chunk, out, dead))?;
        }
        Some(())
    }
}

impl Collection {
    /// Whether a (new) base is due: at least `min_rows` sealed slots, and the rows sealed
    /// after the current base at least `tail_fraction` of them.
    pub fn base_due(&self) -> bool {
        let cfg = &self.env.partitions;
        // A hot collection's unflushed slots count too: a build flushes first.
        let hot = self.state.read().as_ref().map_or(0, |s| s.slots().1) as u64;
        let sealed = self.sealed_slots.load(Ordering::Relaxed).max(hot);
        let base = self.base_slots.load(Ordering::Relaxed);
        sealed >= cfg.min_rows as u64 && (sealed - base) as f64 >= cfg.tail_fraction * sealed as f64
    }

    /// Builds a partitioned base of every sealed slot of a hot collection and commits it (see
    /// the module docs). Returns false when the collection is not hot or holds nothing sealed.
    pub async fn build_base(self: &Arc<Self>) -> Result<bool, EngineError> {
        let _tier = self.tier_lock.clone().read_owned().await;
        self.check_live()?;
        if self.tier() != Tier::Hot {
            return Ok(false);
        }
        let mut manifest = self.manifest.lock().await;
        self.flush_locked(&mut manifest).await?;
        let slots = match self.state.read().as_ref() {
            Some(state) if state.flushed_slots() > 0 => state.flushed_slots(),
            _ => return Ok(false),
        };
        self.rewriting.store(true, Ordering::Release);
        let _rewriting = Rewriting(self);
        let started = std::time::Instant::now();
        let id = uuid::Uuid::now_v7().simple().to_string();
        let path = base_path(&self.def.id, &id);
        // Built into the file that becomes the local copy, so the object is never whole in RAM
        // (the hot state is, at this moment); mapped to be checked and uploaded.
        let local = self.local_path(path.as_ref());
        let building = local.with_extension("building");
        let c = self.clone();
        let file_path = building.clone();
        let written = tokio::task::spawn_blocking(move || {
            let fail = |e: String| EngineError::Io(std::io::Error::other(e));
            std::fs::create_dir_all(file_path.parent().expect("has a parent"))?;
            let file = std::fs::OpenOptions::new()
                .read(true) // mapped below
                .write(true)
                .create(true)
                .truncate(true)
                .open(&file_path)?;
            let mut out = std::io::BufWriter::with_capacity(8 << 20, file);
            let params = BuildParams::for_slots(slots, c.env.partitions.threads);
            let built = partitioned::build(
                c.def.dimension,
                c.def.metric,
                slots,
                params,
                &mut StateSource(&c),
                &mut out,
            )
            .map_err(|e| fail(format!("building the partitioned base: {e}")))?;
            let Some(built) = built else {
                return Ok(None); // unloaded meanwhile (cannot happen under the tier lock)
            };
            let file = out.into_inner().map_err(|e| e.into_error())?;
            // SAFETY: the file was just written by this task and nothing else writes it; it is
            // only read through this map until it is renamed into place or removed.
            let map = unsafe { memmap2::Mmap::map(&file)? };
            let data = Bytes::from_owner(map);
            partitioned::verify(c.def.dimension, &data, built.header.clone())
                .map_err(|e| fail(format!("the partitioned base: {e}")))?;
            let crc = crc32c::crc32c(&data);
            Ok::<_, EngineError>(Some((built, data, crc)))
        })
        .await
        .expect("base build task panicked");
        let (built, data, crc) = match written {
            Ok(Some(w)) => w,
            other => {
                let _ = tokio::fs::remove_file(&building).await;
                return other.map(|_| false);
            }
        };
        if let Err(e) = self.uploader().put_object(&path, data.clone()).await {
            let _ = tokio::fs::remove_file(&building).await;
            return Err(EngineError::Unavailable(e.to_string()));
        }
        drop(data);
        if let Err(e) = tokio::fs::rename(&building, &local).await {
            tracing::warn!(path = %local.display(), error = %e, "could not keep the local copy of the base");
        }
        let base = BaseRef {
            id,
            path: path.to_string(),
            bytes: built.bytes,
            crc32c: crc,
            slots: built.slots,
            partitions: built.partitions as u32,
            header: HeaderRef {
                offset: built.header.start,
                len: built.header.end - built.header.start,
                crc32c: built.header_crc,
            },
        };
        let old = self
            .commit(&mut manifest, |next| {
                next.base = Some(base);
                next.segments.clear();
            })
            .await
            .map_err(|e| EngineError::Unavailable(e.to_string()))?;
        drop(manifest);
        let stale: Vec<String> = old
            .segments
            .iter()
            .map(|s| s.path.clone())
            .chain(old.base.iter().map(|b| b.path.clone()))
            .collect();
        self.delete_objects(&stale).await;
        tracing::info!(
            collection = %self.def.name,
            slots,
            partitions = built.partitions,
            dead = built.dead,
            bytes = built.bytes,
            secs = started.elapsed().as_secs_f64(),
            "built the partitioned base"
        );
        Ok(true)
    }
}

/// Loads a base's rows into a fresh `state` (slots in order, then the dead ones killed).
/// `data` is the whole object, already checked against the manifest.
pub(super) fn load_base(
    state: &mut State,
    dim: usize,
    base: &BaseRef,
    data: Bytes,
) -> Result<(), String> {
    let h = base.header;
    let header_bytes = data
        .get(h.offset as usize..(h.offset + h.len) as usize)
        .ok_or("the header is outside the object")?;
    let header = Header::decode(header_bytes)?;
    if header.slots != base.slots || header.dim != dim {
        return Err(format!(
            "the header holds {} slots of dimension {}, the manifest says {} of {dim}",
            header.slots, header.dim, base.slots
        ));
    }
    let mut partitions = Vec::with_capacity(header.partitions.len());
    for entry in &header.partitions {
        let r = entry.range(true);
        let bytes = data
            .get(r.start as usize..r.end as usize)
            .ok_or("a partition is outside the object")?;
        partitions.push(Partition::decode(dim, entry, data.slice_ref(bytes))?);
    }
    let mut at = vec![(u32::MAX, 0u32); header.slots as usize];
    for (p, part) in partitions.iter().enumerate() {
        for (row, &slot) in part.slots.iter().enumerate() {
            let place = at
                .get_mut(slot as usize)
                .ok_or_else(|| format!("slot {slot} is past the base's {}", header.slots))?;
            if place.0 != u32::MAX {
                return Err(format!("slot {slot} is in two partitions"));
            }
            *place = (p as u32, row as u32);
        }
    }
    for (slot, &(p, row)) in at.iter().enumerate() {
        // Every place is filled: the header's rows add up to its slots, each slot at most once.
        let part = &partitions[p as usize];
        let row = row as usize;
        state.load_base_row(
            slot as u32,
            Document {
                id: part.id(row).to_string(),
                vector: part.vector(row).to_vec(),
                metadata: part.metadata(row),
            },
        );
    }
    for slot in 0..header.slots as u32 {
        if header.is_dead(slot) {
            state.load_dead(slot);
        }
    }
    Ok(())
}

//! Searching a warm or cold collection that has a partitioned base, without loading it: the
//! base's header (read once per manifest version and kept in [`View`]), the tail segments (read
//! whole: they are small), then only the partitions nearest the query, from the local copy of
//! the base when there is one (warm), else from the block cache or with ranged GETs (cold; what
//! is fetched is kept in the block cache). RAM holds the header, the tail, and one batch of
//! partitions at a time.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path as ObjectPath;

use super::Collection;
use super::cache::read_error;
use super::info::{Hit, SearchRequest};
use crate::blockcache::block_path;
use crate::buffers;
use crate::doc::{Document, Metadata};
use crate::error::EngineError;
use crate::manifest::{BaseRef, Manifest, ObjectRef};
use crate::partitioned::ids::id_hash;
use crate::partitioned::{Header, Partition, TopK, default_probes, probe_order};
use crate::segment::{self, Row};
use crate::tier::Tier;

/// Partitions a search reads at a time, and bytes (the first partition of a batch is read
/// whatever its size): RAM per query stays bounded however large the base or skewed its
/// partitions.
const BATCH_PARTITIONS: usize = 64;
const BATCH_BYTES: u64 = 128 << 20;

/// What a partial read keeps between queries of one manifest version.
pub(crate) struct View {
    version: u64,
    base: BaseRef,
    header: Header,
    /// Live documents sealed after the base, with their slots.
    tail: Vec<(u32, Document)>,
    /// Ids written or deleted after the base: their base rows are dead.
    overridden: HashSet<String>,
}

/// Which tier answered a query and what it read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadReport {
    pub tier: Option<Tier>,
    /// Bytes read from local copies.
    pub bytes_local: u64,
    /// Bytes fetched from the object store, and in how many GET requests.
    pub bytes_object_store: u64,
    pub object_store_gets: u64,
    /// Partitions of the base scanned (0 without a base).
    pub partitions: usize,
}

/// A hit before its score: where its row came from, owned (partitions are dropped batch by
/// batch).
struct Found {
    id: String,
    vector: Option<Vec<f32>>,
    metadata: Option<Metadata>,
}

impl Collection {
    /// Answers `req` from the base and the tail of `manifest` (which must have a base).
    #[tracing::instrument(name = "partial_read", skip_all, fields(collection = %self.def.name))]
    pub(super) async fn search_partial(
        &self,
        manifest: &Manifest,
        req: SearchRequest,
    ) -> Result<(Vec<Hit>, ReadReport), EngineError> {
        let mut report = ReadReport::default();
        let req = Arc::new(req);
        let view = self.view(manifest, &mut report).await?;
        let order = probe_order(&view.header, &req.vector);
        let all = order.len();
        let mut probes = if req.exact {
            all
        } else {
            req.nprobe
                .unwrap_or_else(|| default_probes(all))
                .clamp(1, all)
        };
        let with_metadata = req.filter.is_some() || req.include_metadata;
        let distance = akidb_core::distance::kernels().distance_fn(self.def.metric);
        let mut top: TopK<Found> = TopK::new(req.k);
        let found = |doc: &Document, with_vector: bool| Found {
            id: doc.id.clone(),
            vector: with_vector.then(|| doc.vector.clone()),
            metadata: if req.include_metadata {
                doc.metadata.clone()
            } else {
                None
            },
        };
        for (slot, doc) in &view.tail {
            if req
                .filter
                .as_ref()
                .is_none_or(|f| f.matches(doc.metadata.as_ref()))
            {
                let d = distance.eval(&req.vector, &doc.vector);
                if top.admits(d, *slot) {
                    top.push(d, *slot, found(doc, req.include_vector));
                }
            }
        }
        let mut done = 0;
        while done < probes {
            if req.deadline.as_ref().is_some_and(|d| d.passed()) {
                return Err(EngineError::DeadlineExceeded(self.def.name.clone()));
            }
            let mut bytes = 0;
            let batch: Vec<u32> = order[done..probes.min(done + BATCH_PARTITIONS)]
                .iter()
                .copied()
                .take_while(|&p| {
                    let r = view.header.partitions[p as usize].range(with_metadata);
                    bytes += r.end - r.start;
                    bytes <= BATCH_BYTES || bytes == r.end - r.start
                })
                .collect();
            done += batch.len();
            let parts = self
                .read_partitions(&view, &batch, with_metadata, &mut report)
                .await?;
            report.partitions += parts.len();
            let (v, r, k) = (view.clone(), req.clone(), req.k);
            let scanned = on_all_cores(parts, move |parts| {
                let mut kept = TopK::new(k);
                for part in &parts {
                    scan(&v, &r, part, distance, &mut kept);
                }
                kept
            })
            .await;
            for kept in scanned {
                top.merge(kept);
            }
            // Fewer than k rows found in the probed partitions (a selective filter, or dead and
            // replaced rows): probe as many again, until k are found or every partition is read.
            if done == probes && top.len() < req.k && probes < all {
                probes = (probes * 2).min(all);
            }
        }
        let hits = top
            .into_sorted()
            .into_iter()
            .map(|(d, _, f)| Hit {
                id: f.id,
                score: self.def.metric.score(d),
                vector: f.vector,
                metadata: f.metadata,
            })
            .collect();
        report.tier = Some(self.tier());
        Ok((hits, report))
    }

    /// The document `id` from the base and tail of `manifest` (which must have a base): the
    /// tail, else the id index's block for its hash and the partition holding it.
    pub(super) async fn get_partial(
        &self,
        manifest: &Manifest,
        id: &str,
    ) -> Result<Option<Document>, EngineError> {
        let mut report = ReadReport::default();
        let view = self.view(manifest, &mut report).await?;
        if let Some((_, doc)) = view.tail.iter().find(|(_, d)| d.id == id) {
            return Ok(Some(doc.clone()));
        }
        if view.overridden.contains(id) {
            return Ok(None); // deleted after the base
        }
        let index = &view.header.ids;
        let hash = id_hash(id);
        let blocks: Vec<usize> = index.blocks_for(hash).collect();
        let ranges: Vec<_> = blocks.iter().map(|&b| index.block_range(b)).collect();
        let candidates: Vec<(u32, u32)> = self
            .read_checked(&view.base, &ranges, &mut report, |i, bytes| {
                index.find(blocks[i], &bytes, hash)
            })
            .await?
            .into_iter()
            .flatten()
            .collect();
        // The same id can be in the base twice (a replaced row, dead, and its live successor).
        for (p, row) in candidates {
            let parts = self.read_partitions(&view, &[p], true, &mut report).await?;
            let (part, row) = (&parts[0], row as usize);
            if row < part.len() && part.id(row) == id && !view.header.is_dead(part.slots[row]) {
                return Ok(Some(Document {
                    id: id.to_string(),
                    vector: part.vector(row).to_vec(),
                    metadata: part.metadata(row),
                }));
            }
        }
        Ok(None)
    }

    /// The view of `manifest`: kept from an earlier query of the same version, or read now.
    async fn view(
        &self,
        manifest: &Manifest,
        report: &mut ReadReport,
    ) -> Result<Arc<View>, EngineError> {
        if let Some(v) = self.view.lock().as_ref()
            && v.version == manifest.version
        {
            return Ok(v.clone());
        }
        // One reader builds it; the others wait and take it.
        let _building = self.view_building.lock().await;
        if let Some(v) = self.view.lock().as_ref()
            && v.version == manifest.version
        {
            return Ok(v.clone());
        }
        let base = manifest.base.clone().expect("a partial read needs a base");
        let h = base.header;
        let range = h.offset..h.offset + h.len;
        let header = self
            .read_checked(&base, std::slice::from_ref(&range), report, |_, data| {
                let crc = crc32c::crc32c(&data);
                if crc != h.crc32c {
                    return Err(format!(
                        "header checksum {crc:08x}, the manifest says {:08x}",
                        h.crc32c
                    ));
                }
                Header::decode(&data)
            })
            .await?
            .pop()
            .expect("one range, one header");
        let mut next_slot = base.slots as u32;
        let mut overridden = HashSet::new();
        let mut live: HashMap<String, (u32, Document)> = HashMap::new();
        for s in &manifest.segments {
            let object = ObjectRef {
                path: &s.path,
                bytes: s.bytes,
                crc32c: s.crc32c,
            };
            let data = self.fetch(object).await?;
            report.bytes_local += data.len() as u64;
            let rows = segment::decode(self.def.dimension, data)
                .map_err(|e| EngineError::Corrupted(format!("{}: {e}", s.path)))?;
            for row in rows {
                match row {
                    Row::Put(doc) => {
                        overridden.insert(doc.id.clone());
                        live.insert(doc.id.clone(), (next_slot, doc));
                        next_slot += 1;
                    }
                    Row::Tombstone(id) => {
                        live.remove(&id);
                        overridden.insert(id);
                    }
                }
            }
        }
        let mut tail: Vec<(u32, Document)> = live.into_values().collect();
        tail.sort_unstable_by_key(|(slot, _)| *slot);
        let view = Arc::new(View {
            version: manifest.version,
            base,
            header,
            tail,
            overridden,
        });
        *self.view.lock() = Some(view.clone());
        Ok(view)
    }

    /// Partitions `which` of the view's base, with their metadata parts if asked, checked.
    async fn read_partitions(
        &self,
        view: &View,
        which: &[u32],
        metadata: bool,
        report: &mut ReadReport,
    ) -> Result<Vec<Partition>, EngineError> {
        let dim = self.def.dimension;
        let entries: Vec<_> = which
            .iter()
            .map(|&p| view.header.partitions[p as usize])
            .collect();
        let ranges: Vec<_> = entries.iter().map(|e| e.range(metadata)).collect();
        self.read_checked(&view.base, &ranges, report, |i, bytes| {
            Partition::decode(dim, &entries[i], bytes)
        })
        .await
    }

    /// `ranges` of the base, each turned into a `T` by `check` (which verifies its checksum).
    /// A range that fails, read from a local copy or the block cache, is read again from the
    /// object store (and replaces its block); it is `Corrupted` only if the store's bytes fail
    /// too. Local copies are caches: their damage must never make a collection unavailable.
    async fn read_checked<T>(
        &self,
        base: &BaseRef,
        ranges: &[std::ops::Range<u64>],
        report: &mut ReadReport,
        check: impl Fn(usize, Bytes) -> Result<T, String>,
    ) -> Result<Vec<T>, EngineError> {
        let data = self.read_ranges(base, ranges, report).await?;
        let mut out = Vec::with_capacity(data.len());
        for (i, bytes) in data.into_iter().enumerate() {
            match check(i, bytes) {
                Ok(v) => out.push(v),
                Err(why) => {
                    tracing::warn!(collection = %self.def.name, %why, "damaged local copy of a base range; reading it from the object store");
                    let range = &ranges[i];
                    let fresh = self
                        .get_ranges(base, std::slice::from_ref(range), report)
                        .await?
                        .pop()
                        .expect("one range, one answer");
                    let v = check(i, fresh.clone())
                        .map_err(|e| EngineError::Corrupted(format!("{}: {e}", base.path)))?;
                    let (blocks, path) = (
                        self.env.blocks.clone(),
                        block_path(&self.dir, &base.id, range),
                    );
                    tokio::task::spawn_blocking(move || blocks.put(&path, &fresh))
                        .await
                        .expect("cache task panicked");
                    out.push(v);
                }
            }
        }
        Ok(out)
    }

    /// `ranges` of the base: from its local copy when there is a whole one, else from the
    /// object store.
    async fn read_ranges(
        &self,
        base: &BaseRef,
        ranges: &[std::ops::Range<u64>],
        report: &mut ReadReport,
    ) -> Result<Vec<Bytes>, EngineError> {
        let local = self.local_path(&base.path);
        let whole = std::fs::metadata(&local).is_ok_and(|m| m.len() == base.bytes);
        if whole {
            let read: std::io::Result<Vec<Bytes>> = on_all_cores(ranges.to_vec(), move |ranges| {
                let file = std::fs::File::open(&local)?;
                ranges
                    .iter()
                    .map(|r| {
                        let len = (r.end - r.start) as usize;
                        let mut buf = buffers::take(len);
                        if let Err(e) = file.read_exact_at(&mut buf[..len], r.start) {
                            buffers::give_back(buf);
                            return Err(e);
                        }
                        Ok(buffers::freeze(buf, len))
                    })
                    .collect::<std::io::Result<Vec<Bytes>>>()
            })
            .await
            .into_iter()
            .try_fold(Vec::new(), |mut all, part| {
                all.extend(part?);
                Ok(all)
            });
            match read {
                Ok(data) => {
                    report.bytes_local += data.iter().map(|d| d.len() as u64).sum::<u64>();
                    return Ok(data);
                }
                Err(e) => {
                    tracing::warn!(collection = %self.def.name, error = %e, "local copy of the base unreadable; reading the object store");
                }
            }
        }
        // Cold: the block cache, then the object store for what it does not hold.
        let blocks = self.env.blocks.clone();
        let paths: Vec<PathBuf> = ranges
            .iter()
            .map(|r| block_path(&self.dir, &base.id, r))
            .collect();
        let b = blocks.clone();
        let mut out: Vec<Option<Bytes>> = on_all_cores(paths.clone(), move |paths| {
            paths.iter().map(|p| b.get(p)).collect::<Vec<_>>()
        })
        .await
        .into_iter()
        .flatten()
        .collect();
        report.bytes_local += out.iter().flatten().map(|d| d.len() as u64).sum::<u64>();
        let missing: Vec<usize> = (0..out.len()).filter(|&i| out[i].is_none()).collect();
        if !missing.is_empty() {
            let wanted: Vec<_> = missing.iter().map(|&i| ranges[i].clone()).collect();
            let fetched = self.get_ranges(base, &wanted, report).await?;
            let keep: Vec<(PathBuf, Bytes)> = missing
                .iter()
                .zip(&fetched)
                .map(|(&i, d)| (paths[i].clone(), d.clone()))
                .collect();
            tokio::task::spawn_blocking(move || {
                for (path, data) in keep {
                    blocks.put(&path, &data);
                }
            })
            .await
            .expect("cache task panicked");
            for (i, d) in missing.into_iter().zip(fetched) {
                out[i] = Some(d);
            }
        }
        Ok(out.into_iter().map(|d| d.expect("filled")).collect())
    }

    async fn get_ranges(
        &self,
        base: &BaseRef,
        ranges: &[std::ops::Range<u64>],
        report: &mut ReadReport,
    ) -> Result<Vec<Bytes>, EngineError> {
        let data = self
            .uploader()
            .get_ranges(&ObjectPath::from(base.path.as_str()), ranges)
            .await
            .map_err(|e| read_error(&base.path, e))?;
        report.object_store_gets += data.len() as u64;
        report.bytes_object_store += data.iter().map(|d| d.len() as u64).sum::<u64>();
        Ok(data)
    }
}

/// Runs `f` on `items` split into one contiguous chunk per core, each on a blocking thread, all
/// at once (reading and scanning partitions use both cores of a small machine); the results
/// come back in the order of the chunks.
async fn on_all_cores<I, O, F>(items: Vec<I>, f: F) -> Vec<O>
where
    I: Send + 'static,
    O: Send + 'static,
    F: Fn(Vec<I>) -> O + Send + Sync + 'static,
{
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = items.len().div_ceil(cores).max(1);
    let f = Arc::new(f);
    let mut items = items.into_iter();
    let mut tasks = Vec::new();
    loop {
        let chunk: Vec<I> = items.by_ref().take(per).collect();
        if chunk.is_empty() {
            break;
        }
        let f = f.clone();
        tasks.push(tokio::task::spawn_blocking(move || f(chunk)));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.expect("partition task panicked"));
    }
    out
}

/// Scores the admitted rows of `part` into `top`: live in the base, not overridden by the
/// tail, matching the filter.
fn scan(
    view: &View,
    req: &SearchRequest,
    part: &Partition,
    distance: akidb_core::distance::DistanceFn,
    top: &mut TopK<Found>,
) {
    for row in 0..part.len() {
        let slot = part.slots[row];
        if view.header.is_dead(slot) {
            continue;
        }
        let d = distance.eval(&req.vector, part.vector(row));
        if !top.admits(d, slot) {
            continue;
        }
        let id = part.id(row);
        if view.overridden.contains(id) {
            continue;
        }
        let metadata = if req.filter.is_some() || req.include_metadata {
            part.metadata(row)
        } else {
            None
        };
        if let Some(f) = &req.filter
            && !f.matches(metadata.as_ref())
        {
            continue;
        }
        top.push(
            d,
            slot,
            Found {
                id: id.to_string(),
                vector: req.include_vector.then(|| part.vector(row).to_vec()),
                metadata: if req.include_metadata { metadata } else { None },
            },
        );
    }
}

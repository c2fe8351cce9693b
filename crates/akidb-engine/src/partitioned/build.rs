//! Building a partitioned base from slots `0..n` of a collection: k-means on a sample, every
//! slot assigned to its nearest centroid, the partitions written in centroid order, then the
//! header. Pure: the rows come from a [`Source`] (the engine copies them from the hot state a
//! chunk at a time, under brief read locks).

use std::ops::Range;

use akidb_core::Metric;
use akidb_core::kmeans::KMeans;

use super::format::{Header, Partition, PartitionWriter, Sink};
use super::ids::IdIndex;

/// Slots whose vectors are copied and assigned at a time.
const ASSIGN_CHUNK: usize = 16_384;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BuildParams {
    pub partitions: usize,
    /// Rows sampled per partition to train on (faiss uses 39 to 256).
    pub sample_per_partition: usize,
    pub iterations: usize,
    pub seed: u64,
    pub threads: usize,
}

impl BuildParams {
    /// The defaults for `n` slots: about √n partitions (1,000 at a million, ~1,000 rows each).
    pub fn for_slots(n: usize, threads: usize) -> BuildParams {
        BuildParams {
            partitions: ((n as f64).sqrt().round() as usize).clamp(1, 65_536),
            sample_per_partition: 64,
            iterations: 10,
            seed: 0x5eed,
            threads: threads.max(1),
        }
    }
}

/// Where a build's rows come from. Each call returns None when the source is gone (the
/// collection was unloaded), which ends the build.
pub trait Source {
    /// Appends the vectors of `slots` to `out`, row-major.
    fn vectors(&mut self, slots: &[u32], out: &mut Vec<f32>) -> Option<()>;
    /// Appends the rows of `slots` (in this order) to `out`, and the dead ones among them to
    /// `dead`.
    fn rows(&mut self, slots: &[u32], out: &mut PartitionWriter, dead: &mut Vec<u32>)
    -> Option<()>;
}

/// What a build wrote, and what its manifest reference records.
pub struct Built {
    /// Bytes written.
    pub bytes: u64,
    pub header: Range<u64>,
    pub header_crc: u32,
    pub partitions: usize,
    pub slots: u64,
    pub dead: u64,
}

/// Builds the base of slots `0..slots` into `out` (a file: the object is never whole in RAM):
/// None when the source went away, an error when the data does not fit the format or `out`
/// fails. Check what was written with [`verify`] before storing it.
pub fn build<W: std::io::Write>(
    dim: usize,
    metric: Metric,
    slots: usize,
    params: BuildParams,
    source: &mut impl Source,
    out: &mut W,
) -> Result<Option<Built>, String> {
    let io = |e: std::io::Error| format!("writing the base: {e}");
    let mut out = Sink::new(out);
    let k = params.partitions.min(slots).max(1);
    let sample_rows = (k * params.sample_per_partition).min(slots);
    let sample: Vec<u32> = (0..sample_rows)
        .map(|i| (i as u64 * slots as u64 / sample_rows.max(1) as u64) as u32)
        .collect();
    let mut vectors = Vec::with_capacity(sample.len() * dim);
    let Some(()) = source.vectors(&sample, &mut vectors) else {
        return Ok(None);
    };
    let kmeans = KMeans {
        k,
        iterations: params.iterations,
        seed: params.seed,
        threads: params.threads,
    };
    let centroids = kmeans.train(&vectors, dim, metric);

    let mut members: Vec<Vec<u32>> = vec![Vec::new(); centroids.k()];
    let mut start = 0;
    while start < slots {
        let end = (start + ASSIGN_CHUNK).min(slots);
        let chunk: Vec<u32> = (start as u32..end as u32).collect();
        vectors.clear();
        let Some(()) = source.vectors(&chunk, &mut vectors) else {
            return Ok(None);
        };
        for (slot, p) in chunk
            .into_iter()
            .zip(centroids.assign(&vectors, params.threads))
        {
            members[p as usize].push(slot);
        }
        start = end;
    }
    drop(vectors);

    let mut entries = Vec::with_capacity(members.len());
    let mut dead_slots = Vec::new();
    let mut ids = Vec::with_capacity(slots);
    for (p, slots_of) in members.iter().enumerate() {
        let mut writer = PartitionWriter::new(dim);
        let Some(()) = source.rows(slots_of, &mut writer, &mut dead_slots) else {
            return Ok(None);
        };
        if writer.overflowed() {
            return Err(format!(
                "partition {p} holds more than 4 GiB of ids or metadata ({} rows)",
                slots_of.len()
            ));
        }
        let hashes = writer.take_hashes();
        ids.extend(
            hashes
                .into_iter()
                .enumerate()
                .map(|(row, h)| (h, p as u32, row as u32)),
        );
        entries.push(writer.finish_into(&mut out).map_err(io)?);
    }
    let ids = IdIndex::write(ids, &mut out).map_err(io)?;
    let mut dead = vec![0u64; slots.div_ceil(64)];
    for &s in &dead_slots {
        dead[s as usize / 64] |= 1 << (s % 64);
    }
    let header = Header::new(dim, metric, slots as u64, centroids, entries, dead, ids);
    let dead = header.dead_count();
    let encoded = header.encode();
    let at = out.len();
    out.put(&encoded).map_err(io)?;
    out.flush().map_err(io)?;
    Ok(Some(Built {
        bytes: at + encoded.len() as u64,
        header: at..at + encoded.len() as u64,
        header_crc: crc32c::crc32c(&encoded),
        partitions: header.partitions.len(),
        slots: slots as u64,
        dead,
    }))
}

/// Decodes a written base again, header and every partition (checksums included): once
/// committed it is the only copy of its rows, so it is checked before it is stored.
pub fn verify(dim: usize, data: &bytes::Bytes, header: Range<u64>) -> Result<(), String> {
    let h = data
        .get(header.start as usize..header.end as usize)
        .ok_or("the header is outside the object")?;
    let header = Header::decode(h)?;
    for entry in &header.partitions {
        let r = entry.range(true);
        if r.end > data.len() as u64 {
            return Err("a partition is outside the object".into());
        }
        Partition::decode(dim, entry, data.slice(r.start as usize..r.end as usize))
            .map_err(|e| format!("the built base does not read back: {e}"))?;
    }
    Ok(())
}

//! The bytes of a partitioned base object (see the module docs of [`super`] for the layout):
//! encoding and decoding of the header and of one partition, every read checked for length so
//! that damaged bytes are an error, never a panic.

use std::ops::Range;

use akidb_core::Metric;
use akidb_core::kmeans::Centroids;
use bytes::{BufMut, Bytes};

use super::ids::{BLOCK_ENTRIES, IdIndex};
use crate::doc::Metadata;

const MAGIC: &[u8; 4] = b"AKP1";
/// Bytes of one partition's entry in the header.
const ENTRY_BYTES: usize = 4 + 8 + 8 + 4 + 8 + 4;

/// Where one partition's rows are and what they must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionEntry {
    pub rows: u32,
    /// Offset of the partition's body in the object; its metadata part follows the body.
    pub offset: u64,
    pub body_len: u64,
    pub body_crc: u32,
    pub meta_len: u64,
    pub meta_crc: u32,
}

impl PartitionEntry {
    /// The body's bytes, and with `metadata` the metadata part too (one range either way).
    pub fn range(&self, metadata: bool) -> Range<u64> {
        let len = self.body_len + if metadata { self.meta_len } else { 0 };
        self.offset..self.offset + len
    }
}

/// What a query reads first: the centroids, where each partition is, and which slots are dead.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub dim: usize,
    pub metric: Metric,
    /// The base holds slots `0..slots`, dead ones included (they are the graph's waypoints).
    pub slots: u64,
    pub centroids: Centroids,
    pub partitions: Vec<PartitionEntry>,
    /// One bit per slot: set when the slot's document was replaced or deleted.
    dead: Vec<u64>,
    /// Which partition and row hold each id.
    pub ids: IdIndex,
}

impl Header {
    pub fn new(
        dim: usize,
        metric: Metric,
        slots: u64,
        centroids: Centroids,
        partitions: Vec<PartitionEntry>,
        dead: Vec<u64>,
        ids: IdIndex,
    ) -> Header {
        Header {
            dim,
            metric,
            slots,
            centroids,
            partitions,
            dead,
            ids,
        }
    }

    pub fn is_dead(&self, slot: u32) -> bool {
        self.dead
            .get(slot as usize / 64)
            .is_some_and(|w| w >> (slot % 64) & 1 == 1)
    }

    pub fn dead_count(&self) -> u64 {
        self.dead.iter().map(|w| w.count_ones() as u64).sum()
    }

    pub fn encode(&self) -> Vec<u8> {
        let k = self.partitions.len();
        let mut out = Vec::with_capacity(
            32 + self.centroids.as_slice().len() * 4 + k * ENTRY_BYTES + self.dead.len() * 8,
        );
        out.put_slice(MAGIC);
        out.put_u32_le(self.dim as u32);
        out.put_u8(metric_code(self.metric));
        out.put_u64_le(self.slots);
        out.put_u32_le(k as u32);
        for x in self.centroids.as_slice() {
            out.put_f32_le(*x);
        }
        for p in &self.partitions {
            out.put_u32_le(p.rows);
            out.put_u64_le(p.offset);
            out.put_u64_le(p.body_len);
            out.put_u32_le(p.body_crc);
            out.put_u64_le(p.meta_len);
            out.put_u32_le(p.meta_crc);
        }
        out.put_u32_le(self.dead.len() as u32);
        for w in &self.dead {
            out.put_u64_le(*w);
        }
        out.put_u64_le(self.ids.offset);
        out.put_u64_le(self.ids.entries);
        for &(first, crc) in &self.ids.blocks {
            out.put_u32_le(first);
            out.put_u32_le(crc);
        }
        out
    }

    pub fn decode(data: &[u8]) -> Result<Header, String> {
        let mut r = Reader::new(data, "header");
        if r.take(4)? != MAGIC {
            return Err("header: not a partitioned base (bad magic)".into());
        }
        let dim = r.u32()? as usize;
        let metric = match r.take(1)?[0] {
            0 => Metric::Cosine,
            1 => Metric::L2,
            2 => Metric::Dot,
            other => return Err(format!("header: unknown metric {other}")),
        };
        let slots = r.u64()?;
        let k = r.u32()? as usize;
        if dim == 0 || k == 0 {
            return Err(format!("header: dimension {dim}, {k} partitions"));
        }
        let centroids = r.f32s(k.checked_mul(dim).ok_or("header: too many centroids")?)?;
        let centroids =
            Centroids::from_rows(dim, metric, centroids).ok_or("header: malformed centroids")?;
        let mut partitions = Vec::with_capacity(k.min(r.remaining() / ENTRY_BYTES));
        for _ in 0..k {
            let entry = PartitionEntry {
                rows: r.u32()?,
                offset: r.u64()?,
                body_len: r.u64()?,
                body_crc: r.u32()?,
                meta_len: r.u64()?,
                meta_crc: r.u32()?,
            };
            // `range` adds these up: they must not overflow.
            entry
                .offset
                .checked_add(entry.body_len)
                .and_then(|end| end.checked_add(entry.meta_len))
                .ok_or("header: a partition's range overflows")?;
            partitions.push(entry);
        }
        let words = r.u32()? as usize;
        if words as u64 != slots.div_ceil(64) {
            return Err(format!(
                "header: {words} words of dead bits for {slots} slots"
            ));
        }
        let mut dead = Vec::with_capacity(words.min(r.remaining() / 8));
        for _ in 0..words {
            dead.push(r.u64()?);
        }
        let (offset, entries) = (r.u64()?, r.u64()?);
        if entries != slots {
            return Err(format!("header: {entries} ids for {slots} slots"));
        }
        let n = entries.div_ceil(BLOCK_ENTRIES as u64) as usize;
        let mut blocks = Vec::with_capacity(n.min(r.remaining() / 8));
        for _ in 0..n {
            blocks.push((r.u32()?, r.u32()?));
        }
        let ids = IdIndex {
            offset,
            entries,
            blocks,
        };
        // `block_range` adds up within it: it must not overflow.
        ids.end().ok_or("header: the id index's range overflows")?;
        r.end()?;
        let rows: u64 = partitions.iter().map(|p| p.rows as u64).sum();
        if rows != slots {
            return Err(format!(
                "header: partitions hold {rows} rows, the base {slots} slots"
            ));
        }
        Ok(Header {
            dim,
            metric,
            slots,
            centroids,
            partitions,
            dead,
            ids,
        })
    }
}

fn metric_code(metric: Metric) -> u8 {
    match metric {
        Metric::Cosine => 0,
        Metric::L2 => 1,
        Metric::Dot => 2,
    }
}

/// One partition's rows, decoded: vectors, slots and ids, and metadata when it was read.
#[derive(Debug, Clone, PartialEq)]
pub struct Partition {
    pub dim: usize,
    vectors: Vectors,
    pub slots: Vec<u32>,
    ids: Strings,
    metadata: Option<Strings>,
}

/// The vectors of a partition: read in place from the bytes that were read (no copy) when
/// they are 4-byte aligned in memory, as buffers from `pread` and most GETs are; copied
/// otherwise.
#[derive(Debug, Clone, PartialEq)]
enum Vectors {
    InPlace(Bytes),
    Copied(Vec<f32>),
}

impl Vectors {
    fn read(bytes: Bytes) -> Vectors {
        if cfg!(target_endian = "little") && bytemuck::try_cast_slice::<u8, f32>(&bytes).is_ok() {
            Vectors::InPlace(bytes)
        } else {
            Vectors::Copied(
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().expect("4")))
                    .collect(),
            )
        }
    }

    fn as_slice(&self) -> &[f32] {
        match self {
            Vectors::InPlace(b) => bytemuck::cast_slice(b),
            Vectors::Copied(v) => v,
        }
    }
}

/// Strings stored end to end, with each one's end offset.
#[derive(Debug, Clone, PartialEq, Default)]
struct Strings {
    ends: Vec<u32>,
    bytes: Bytes,
}

impl Strings {
    fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.bytes[start..self.ends[i] as usize]
    }

    fn read(r: &mut Reader<'_>, rows: usize, data: &Bytes) -> Result<Strings, String> {
        let ends = r.u32s(rows)?;
        let mut prev = 0;
        for &e in &ends {
            if e < prev {
                return Err(format!("{}: string offsets go backwards", r.what));
            }
            prev = e;
        }
        let start = r.pos;
        r.take(prev as usize)?;
        Ok(Strings {
            ends,
            bytes: data.slice(start..start + prev as usize),
        })
    }
}

impl Partition {
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn vector(&self, row: usize) -> &[f32] {
        &self.vectors.as_slice()[row * self.dim..(row + 1) * self.dim]
    }

    pub fn id(&self, row: usize) -> &str {
        // Checked UTF-8 at decode.
        std::str::from_utf8(self.ids.get(row)).unwrap_or_default()
    }

    /// Whether the metadata part was read.
    pub fn has_metadata(&self) -> bool {
        self.metadata.is_some()
    }

    /// The row's metadata (None when it has none, or when the metadata part was not read).
    pub fn metadata(&self, row: usize) -> Option<Metadata> {
        let json = self.metadata.as_ref()?.get(row);
        // The checksum vouches for bytes this server wrote as JSON objects.
        (!json.is_empty())
            .then(|| serde_json::from_slice(json).ok())
            .flatten()
    }

    /// Decodes a partition from the bytes of [`PartitionEntry::range`], checking both parts'
    /// checksums.
    pub fn decode(dim: usize, entry: &PartitionEntry, data: Bytes) -> Result<Partition, String> {
        let body_len = entry.body_len as usize;
        if data.len() < body_len {
            return Err(format!(
                "partition at {}: {} bytes, the body alone is {body_len}",
                entry.offset,
                data.len()
            ));
        }
        let crc = crc32c::crc32c(&data[..body_len]);
        if crc != entry.body_crc {
            return Err(format!(
                "partition at {}: checksum {crc:08x}, the header says {:08x}",
                entry.offset, entry.body_crc
            ));
        }
        let rows = entry.rows as usize;
        let body = data.slice(..body_len);
        let mut r = Reader::new(&body, "partition");
        let vector_bytes = rows
            .checked_mul(dim * 4)
            .ok_or("partition: too many rows")?;
        r.take(vector_bytes)?;
        let vectors = Vectors::read(body.slice(..vector_bytes));
        let slots = r.u32s(rows)?;
        let ids = Strings::read(&mut r, rows, &body)?;
        r.end()?;
        for i in 0..rows {
            std::str::from_utf8(ids.get(i))
                .map_err(|_| format!("partition at {}: an id is not UTF-8", entry.offset))?;
        }
        let metadata = if data.len() > body_len {
            let meta = data.slice(body_len..);
            let crc = crc32c::crc32c(&meta);
            if meta.len() as u64 != entry.meta_len || crc != entry.meta_crc {
                return Err(format!(
                    "metadata of the partition at {}: {} bytes with checksum {crc:08x}, the header says {} and {:08x}",
                    entry.offset,
                    meta.len(),
                    entry.meta_len,
                    entry.meta_crc
                ));
            }
            let mut r = Reader::new(&meta, "metadata");
            let strings = Strings::read(&mut r, rows, &meta)?;
            r.end()?;
            Some(strings)
        } else {
            None
        };
        Ok(Partition {
            dim,
            vectors,
            slots,
            ids,
            metadata,
        })
    }
}

/// Writes one partition's body and metadata part (see [`Partition::decode`]).
pub struct PartitionWriter {
    dim: usize,
    vectors: Vec<u8>,
    slots: Vec<u8>,
    id_ends: Vec<u8>,
    ids: Vec<u8>,
    meta_ends: Vec<u8>,
    meta: Vec<u8>,
    rows: u32,
    /// `id_hash` of each row's id, for the id index.
    hashes: Vec<u32>,
    /// Set when the ids or the metadata outgrow the 32-bit offsets (4 GiB in one partition).
    overflowed: bool,
}

impl PartitionWriter {
    pub fn new(dim: usize) -> PartitionWriter {
        PartitionWriter {
            dim,
            vectors: Vec::new(),
            slots: Vec::new(),
            id_ends: Vec::new(),
            ids: Vec::new(),
            meta_ends: Vec::new(),
            meta: Vec::new(),
            rows: 0,
            hashes: Vec::new(),
            overflowed: false,
        }
    }

    pub fn push(&mut self, slot: u32, id: &str, vector: &[f32], metadata: Option<&Metadata>) {
        assert_eq!(vector.len(), self.dim, "partition row: dimension mismatch");
        for x in vector {
            self.vectors.put_f32_le(*x);
        }
        self.slots.put_u32_le(slot);
        self.ids.put_slice(id.as_bytes());
        self.hashes.push(super::ids::id_hash(id));
        self.id_ends.put_u32_le(self.ids.len() as u32);
        if let Some(m) = metadata {
            serde_json::to_writer(&mut self.meta, m).expect("metadata serializes");
        }
        self.meta_ends.put_u32_le(self.meta.len() as u32);
        self.rows += 1;
        self.overflowed |=
            u32::try_from(self.ids.len().max(self.meta.len())).is_err() || self.rows == u32::MAX;
    }

    /// Whether this partition outgrew the format (its offsets would wrap): the build must fail.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// The id hashes of the rows pushed, in order (taken once, before [`Self::finish_into`]).
    pub fn take_hashes(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.hashes)
    }

    /// Appends the partition to `out` and returns its entry.
    pub fn finish_into<W: std::io::Write>(
        self,
        out: &mut Sink<W>,
    ) -> std::io::Result<PartitionEntry> {
        // Partitions start 8-byte aligned in the object, so that vectors sliced out of a whole
        // object in memory are aligned too (see `Vectors`).
        out.pad_to(8)?;
        let offset = out.len();
        let (mut body_crc, mut meta_crc) = (0, 0);
        for part in [&self.vectors, &self.slots, &self.id_ends, &self.ids] {
            body_crc = crc32c::crc32c_append(body_crc, part);
            out.put(part)?;
        }
        let body_len = out.len() - offset;
        for part in [&self.meta_ends, &self.meta] {
            meta_crc = crc32c::crc32c_append(meta_crc, part);
            out.put(part)?;
        }
        Ok(PartitionEntry {
            rows: self.rows,
            offset,
            body_len,
            body_crc,
            meta_len: out.len() - offset - body_len,
            meta_crc,
        })
    }
}

/// Where a base is written (a file, or a `Vec` in tests), counting the bytes.
pub struct Sink<W> {
    inner: W,
    len: u64,
}

impl<W: std::io::Write> Sink<W> {
    pub fn new(inner: W) -> Sink<W> {
        Sink { inner, len: 0 }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.inner.write_all(bytes)?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    fn pad_to(&mut self, align: u64) -> std::io::Result<()> {
        let pad = self.len.next_multiple_of(align) - self.len;
        self.put(&[0u8; 8][..pad as usize])
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }

    pub fn into_inner(self) -> W {
        self.inner
    }
}

/// Little-endian reads that fail, naming `what`, instead of running past the end.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8], what: &'static str) -> Reader<'a> {
        Reader { data, pos: 0, what }
    }

    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.remaining() {
            return Err(format!(
                "{}: truncated ({n} bytes wanted at {}, {} left)",
                self.what,
                self.pos,
                self.remaining()
            ));
        }
        let out = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }

    fn u32s(&mut self, n: usize) -> Result<Vec<u32>, String> {
        let bytes = self.take(n.checked_mul(4).ok_or("too many values")?)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4")))
            .collect())
    }

    fn f32s(&mut self, n: usize) -> Result<Vec<f32>, String> {
        let bytes = self.take(n.checked_mul(4).ok_or("too many values")?)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4")))
            .collect())
    }

    fn end(&self) -> Result<(), String> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(format!("{}: {n} unexpected bytes at the end", self.what)),
        }
    }
}

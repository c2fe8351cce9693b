//! The id index of a partitioned base: which partition and row hold a document id, so that a
//! warm or cold `get` reads one small block and one partition instead of the whole base.
//!
//! Entries `(crc32c(id), partition, row)`, 12 bytes each, sorted, in blocks of
//! [`BLOCK_ENTRIES`] after the partitions; the header keeps each block's first hash and CRC32C.
//! Different ids can share a hash: every candidate's id is checked in its partition.

use std::ops::Range;

use bytes::BufMut;

use super::format::Sink;

/// Entries per block (12 KiB).
pub const BLOCK_ENTRIES: usize = 1024;
const ENTRY_BYTES: usize = 12;

pub fn id_hash(id: &str) -> u32 {
    crc32c::crc32c(id.as_bytes())
}

/// Where the index is and what its blocks start with.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IdIndex {
    pub offset: u64,
    pub entries: u64,
    /// Per block: its first hash and its CRC32C.
    pub blocks: Vec<(u32, u32)>,
}

impl IdIndex {
    /// Sorts `entries` (hash, partition, row) and appends them to `out`.
    pub fn write<W: std::io::Write>(
        mut entries: Vec<(u32, u32, u32)>,
        out: &mut Sink<W>,
    ) -> std::io::Result<IdIndex> {
        entries.sort_unstable();
        let offset = out.len();
        let mut blocks = Vec::with_capacity(entries.len().div_ceil(BLOCK_ENTRIES));
        let mut buf = Vec::with_capacity(BLOCK_ENTRIES * ENTRY_BYTES);
        for block in entries.chunks(BLOCK_ENTRIES) {
            buf.clear();
            for &(hash, partition, row) in block {
                buf.put_u32_le(hash);
                buf.put_u32_le(partition);
                buf.put_u32_le(row);
            }
            blocks.push((block[0].0, crc32c::crc32c(&buf)));
            out.put(&buf)?;
        }
        Ok(IdIndex {
            offset,
            entries: entries.len() as u64,
            blocks,
        })
    }

    /// The blocks that can hold `hash` (usually one; more when equal hashes span blocks).
    pub fn blocks_for(&self, hash: u32) -> Range<usize> {
        // Blocks starting after `hash` cannot hold it; of the others, only the last one whose
        // first hash is below `hash`, and those starting at `hash`.
        let end = self.blocks.partition_point(|&(first, _)| first <= hash);
        let start = self.blocks[..end]
            .iter()
            .rposition(|&(first, _)| first < hash)
            .unwrap_or(0);
        start..end
    }

    /// Where the index ends in the object; `None` when that overflows (a damaged header).
    pub fn end(&self) -> Option<u64> {
        let len = self.entries.checked_mul(ENTRY_BYTES as u64)?;
        self.offset.checked_add(len)
    }

    /// The bytes of block `b` in the object.
    pub fn block_range(&self, b: usize) -> Range<u64> {
        let first = (b * BLOCK_ENTRIES) as u64;
        let len = (self.entries - first).min(BLOCK_ENTRIES as u64);
        let start = self.offset + first * ENTRY_BYTES as u64;
        start..start + len * ENTRY_BYTES as u64
    }

    /// The (partition, row) of every entry of block `b` with `hash`, the block checked.
    pub fn find(&self, b: usize, data: &[u8], hash: u32) -> Result<Vec<(u32, u32)>, String> {
        let r = self.block_range(b);
        if data.len() as u64 != r.end - r.start {
            return Err(format!(
                "id block {b}: {} bytes, expected {}",
                data.len(),
                r.end - r.start
            ));
        }
        let crc = crc32c::crc32c(data);
        if crc != self.blocks[b].1 {
            return Err(format!(
                "id block {b}: checksum {crc:08x}, the header says {:08x}",
                self.blocks[b].1
            ));
        }
        let word =
            |e: &[u8], i: usize| u32::from_le_bytes(e[4 * i..4 * i + 4].try_into().expect("4"));
        Ok(data
            .chunks_exact(ENTRY_BYTES)
            .filter(|e| word(e, 0) == hash)
            .map(|e| (word(e, 1), word(e, 2)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_is_found_in_the_blocks_for_its_hash() {
        // Many equal hashes, so that runs of one hash span blocks.
        let entries: Vec<(u32, u32, u32)> = (0..5000u32)
            .map(|i| (i % 7 * 1000 + (i % 3), i / 100, i))
            .collect();
        let mut sink = Sink::new(Vec::new());
        sink.put(&[0; 5]).unwrap();
        let index = IdIndex::write(entries.clone(), &mut sink).unwrap();
        let out = sink.into_inner();
        assert_eq!(index.blocks.len(), 5);
        for &(hash, partition, row) in &entries {
            let found: Vec<(u32, u32)> = index
                .blocks_for(hash)
                .flat_map(|b| {
                    let r = index.block_range(b);
                    index
                        .find(b, &out[r.start as usize..r.end as usize], hash)
                        .unwrap()
                })
                .collect();
            assert!(
                found.contains(&(partition, row)),
                "{hash} {partition} {row}"
            );
        }
        assert!(index.blocks_for(1).is_empty() || index.blocks_for(1).len() == 1);
        let r = index.block_range(2);
        let mut bad = out[r.start as usize..r.end as usize].to_vec();
        bad[7] ^= 1;
        assert!(index.find(2, &bad, 0).unwrap_err().contains("checksum"));
    }
}

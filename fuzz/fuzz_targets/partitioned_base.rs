//! The partitioned base (`.akp`) decoders: `Header::decode`, `Partition::decode` and the id
//! index, used as a load and a cold read use them. Input: the header's length (u32 LE), then the
//! object, whose last that many bytes are the header (as a build lays it out). Each partition
//! the header names is decoded twice: as stored (its checksums must match) and with the
//! checksums fixed up to match, so that the fuzzer reaches the partition decoder past the CRC.
//! `partitioned::verify` reads the whole object. Errors are fine; panics, overflows and runaway
//! allocations are not.
#![no_main]

use akidb_engine::partitioned::{self, Header, Partition, PartitionEntry, probe_order};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((len, object)) = data.split_first_chunk::<4>() else {
        return;
    };
    let header_len = (u32::from_le_bytes(*len) as usize).min(object.len());
    let at = object.len() - header_len;
    let object = Bytes::copy_from_slice(object);
    let Ok(header) = Header::decode(&object[at..]) else {
        return;
    };
    let _ = partitioned::verify(header.dim, &object, at as u64..object.len() as u64);
    let _ = header.dead_count();
    for slot in 0..header.slots.min(4096) as u32 {
        let _ = header.is_dead(slot);
    }
    let order = probe_order(&header, &vec![0.5; header.dim]);
    assert_eq!(order.len(), header.partitions.len());
    for entry in &header.partitions {
        read_partition(&header, entry, &object, false);
        read_partition(&header, entry, &object, true);
    }
});

/// Reads one partition as a load does (body and metadata), `fixed`: with checksums that match.
fn read_partition(header: &Header, entry: &PartitionEntry, object: &Bytes, fixed: bool) {
    let range = entry.range(true);
    let Some(bytes) = object.get(range.start as usize..range.end as usize) else {
        return;
    };
    let mut entry = *entry;
    if fixed {
        let body = (entry.body_len as usize).min(bytes.len());
        entry.body_crc = crc32c::crc32c(&bytes[..body]);
        entry.meta_crc = crc32c::crc32c(&bytes[body..]);
        entry.meta_len = (bytes.len() - body) as u64;
    }
    let Ok(part) = Partition::decode(header.dim, &entry, object.slice_ref(bytes)) else {
        return;
    };
    assert_eq!(part.len(), entry.rows as usize);
    for row in 0..part.len() {
        assert_eq!(part.vector(row).len(), header.dim);
        let id = part.id(row);
        let _ = part.metadata(row);
        // The id index, as a cold `get` of this id uses it.
        let hash = partitioned::ids::id_hash(id);
        for b in header.ids.blocks_for(hash) {
            let r = header.ids.block_range(b);
            if let Some(block) = object.get(r.start as usize..r.end as usize) {
                let _ = header.ids.find(b, block, hash);
            }
        }
        if row >= 64 {
            break;
        }
    }
}

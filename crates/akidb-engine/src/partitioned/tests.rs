use akidb_core::Metric;
use akidb_core::distance::kernels;
use bytes::Bytes;

use super::*;
use crate::doc::Metadata;

/// Rows of a test collection: slot `i` has id `d{i}`, a seeded vector, metadata `{"i": i}`
/// on even slots, and every seventh slot is dead.
struct Rows {
    dim: usize,
    vectors: Vec<f32>,
}

impl Rows {
    fn new(n: usize, dim: usize) -> Rows {
        let mut s = 0x9e37_79b9_u64;
        let mut vectors = Vec::with_capacity(n * dim);
        for i in 0..n {
            let centre = (i % 5) as f32;
            let mut v: Vec<f32> = (0..dim)
                .map(|_| {
                    s = s
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    centre + ((s >> 33) as f32 / (1u64 << 31) as f32 - 0.5)
                })
                .collect();
            akidb_core::distance::normalize(&mut v);
            vectors.extend(v);
        }
        Rows { dim, vectors }
    }

    fn metadata(i: u32) -> Option<Metadata> {
        i.is_multiple_of(2).then(|| {
            let mut m = Metadata::new();
            m.insert("i".into(), i.into());
            m
        })
    }
}

impl Source for Rows {
    fn vectors(&mut self, slots: &[u32], out: &mut Vec<f32>) -> Option<()> {
        for &s in slots {
            let s = s as usize;
            out.extend_from_slice(&self.vectors[s * self.dim..(s + 1) * self.dim]);
        }
        Some(())
    }

    fn rows(
        &mut self,
        slots: &[u32],
        out: &mut PartitionWriter,
        dead: &mut Vec<u32>,
    ) -> Option<()> {
        for &s in slots {
            let i = s as usize;
            out.push(
                s,
                &format!("d{s}"),
                &self.vectors[i * self.dim..(i + 1) * self.dim],
                Rows::metadata(s).as_ref(),
            );
            if s.is_multiple_of(7) {
                dead.push(s);
            }
        }
        Some(())
    }
}

/// A base of `n` rows: what the build reported, and its bytes (checked by `verify`).
struct Written {
    built: Built,
    data: Bytes,
}

fn built(n: usize) -> (Rows, Written) {
    let mut rows = Rows::new(n, 8);
    let params = BuildParams::for_slots(n, 2);
    let mut data = Vec::new();
    let built = build(8, Metric::Cosine, n, params, &mut rows, &mut data)
        .expect("valid")
        .expect("built");
    let data = Bytes::from(data);
    assert_eq!(built.bytes, data.len() as u64);
    super::build::verify(8, &data, built.header.clone()).expect("reads back");
    (rows, Written { built, data })
}

fn header(b: &Written) -> Header {
    let r = b.built.header.start as usize..b.built.header.end as usize;
    assert_eq!(crc32c::crc32c(&b.data[r.clone()]), b.built.header_crc);
    Header::decode(&b.data[r]).expect("header decodes")
}

#[test]
fn every_slot_is_in_exactly_one_partition_with_its_row() {
    let (rows, b) = built(500);
    let h = header(&b);
    assert_eq!(h.partitions.len(), 22); // √500
    assert_eq!(h.slots, 500);
    assert_eq!(b.built.dead, 500u64.div_ceil(7));
    let mut seen = vec![false; 500];
    let data = b.data.clone();
    for entry in &h.partitions {
        let r = entry.range(true);
        let p = Partition::decode(8, entry, data.slice(r.start as usize..r.end as usize))
            .expect("partition decodes");
        assert!(p.has_metadata());
        for row in 0..p.len() {
            let s = p.slots[row];
            assert!(
                !std::mem::replace(&mut seen[s as usize], true),
                "slot {s} twice"
            );
            assert_eq!(p.id(row), format!("d{s}"));
            assert_eq!(
                p.vector(row),
                &rows.vectors[s as usize * 8..(s as usize + 1) * 8]
            );
            assert_eq!(p.metadata(row), Rows::metadata(s));
            assert_eq!(h.is_dead(s), s.is_multiple_of(7));
        }
        // The body alone: no metadata.
        let r = entry.range(false);
        let p = Partition::decode(8, entry, data.slice(r.start as usize..r.end as usize)).unwrap();
        assert!(!p.has_metadata() && p.metadata(0).is_none());
    }
    assert!(seen.iter().all(|s| *s));
}

#[test]
fn rows_join_the_partition_of_their_nearest_centroid() {
    let (_, b) = built(400);
    let h = header(&b);
    let data = b.data.clone();
    for (i, entry) in h.partitions.iter().enumerate() {
        let r = entry.range(false);
        let p = Partition::decode(8, entry, data.slice(r.start as usize..r.end as usize)).unwrap();
        for row in 0..p.len() {
            assert_eq!(h.centroids.nearest(p.vector(row)), i as u32);
        }
    }
}

#[test]
fn any_flipped_byte_of_the_header_or_a_partition_is_reported() {
    let (_, b) = built(60);
    let h = header(&b);
    let r = b.built.header.start as usize..b.built.header.end as usize;
    let encoded = &b.data[r];
    // The header is checked by the manifest's CRC; decode alone must never panic on damage.
    for i in 0..encoded.len() {
        let mut bad = encoded.to_vec();
        bad[i] ^= 0x10;
        let _ = Header::decode(&bad);
        assert!(Header::decode(&encoded[..i]).is_err(), "truncated at {i}");
    }
    let entry = h.partitions[0];
    let range = entry.range(true);
    let good = &b.data[range.start as usize..range.end as usize];
    for i in 0..good.len() {
        let mut bad = good.to_vec();
        bad[i] ^= 0x01;
        let err = Partition::decode(8, &entry, Bytes::from(bad)).unwrap_err();
        assert!(err.contains("checksum"), "{err}");
    }
}

#[test]
fn probing_every_partition_finds_the_exact_answer() {
    let (rows, b) = built(300);
    let h = header(&b);
    let data = b.data.clone();
    let q = &rows.vectors[8 * 17..8 * 18];
    let dist = kernels().distance_fn(Metric::Cosine);
    let parts: Vec<Partition> = h
        .partitions
        .iter()
        .map(|e| {
            let r = e.range(false);
            Partition::decode(8, e, data.slice(r.start as usize..r.end as usize)).unwrap()
        })
        .collect();
    let mut top = TopK::new(10);
    for &p in &probe_order(&h, q) {
        let part = &parts[p as usize];
        for row in 0..part.len() {
            if !h.is_dead(part.slots[row]) {
                top.push(dist.eval(q, part.vector(row)), part.slots[row], ());
            }
        }
    }
    let got: Vec<u32> = top.into_sorted().into_iter().map(|(_, s, _)| s).collect();
    let mut want: Vec<(f32, u32)> = (0..300u32)
        .filter(|s| s % 7 != 0)
        .map(|s| {
            (
                dist.eval(q, &rows.vectors[s as usize * 8..(s as usize + 1) * 8]),
                s,
            )
        })
        .collect();
    want.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let want: Vec<u32> = want.into_iter().take(10).map(|(_, s)| s).collect();
    assert_eq!(got, want);
    assert_eq!(got[0], 17);
}

#[test]
fn every_id_is_found_through_the_id_index() {
    let (_, b) = built(3000);
    let h = header(&b);
    let data = b.data.clone();
    for s in (0..3000u32).step_by(7) {
        let id = format!("d{s}");
        let hash = super::ids::id_hash(&id);
        let mut rows = vec![];
        for block in h.ids.blocks_for(hash) {
            let r = h.ids.block_range(block);
            rows.extend(
                h.ids
                    .find(block, &data[r.start as usize..r.end as usize], hash)
                    .unwrap(),
            );
        }
        let hit = rows.iter().find(|&&(p, row)| {
            let e = &h.partitions[p as usize];
            let r = e.range(false);
            let part =
                Partition::decode(8, e, data.slice(r.start as usize..r.end as usize)).unwrap();
            part.id(row as usize) == id
        });
        assert!(hit.is_some(), "{id} not found");
    }
}

/// A partition whose offset and lengths overflow: the header is refused, where `range` (a load,
/// a cold read) used to panic on the overflow (found by the `partitioned_base` fuzz target).
#[test]
fn a_partition_range_that_overflows_is_refused() {
    let (_, b) = built(20);
    let good = header(&b);
    for (offset, body_len, meta_len) in [
        (u64::MAX - 3, 10, 0),
        (0, u64::MAX, 1),
        (5, u64::MAX / 2, u64::MAX / 2),
    ] {
        let mut bad = good.clone();
        bad.partitions[0].offset = offset;
        bad.partitions[0].body_len = body_len;
        bad.partitions[0].meta_len = meta_len;
        match Header::decode(&bad.encode()) {
            Ok(h) => panic!("accepted, range {:?}", h.partitions[0].range(true)),
            Err(e) => assert!(e.contains("overflows"), "{e}"),
        }
    }
}

/// An id index whose offset and size overflow: the header is refused, where `block_range` (a
/// cold `get`) used to panic on the overflow (found by the `partitioned_base` fuzz target).
#[test]
fn an_id_index_range_that_overflows_is_refused() {
    let (_, b) = built(2000);
    let mut bad = header(&b);
    bad.ids.offset = u64::MAX - 100;
    match Header::decode(&bad.encode()) {
        Ok(h) => panic!(
            "accepted, last block {:?}",
            h.ids.block_range(h.ids.blocks.len() - 1)
        ),
        Err(e) => assert!(e.contains("overflows"), "{e}"),
    }
}

/// A header claiming 2^32 - 1 words of dead bits (for as many slots) but holding none: an
/// error, after allocating only what the bytes can hold (it reserved the claimed 32 GiB, which
/// aborts the process where that much memory cannot be had). Found by review of the decoder.
#[test]
fn a_huge_dead_bitmap_claim_allocates_nothing() {
    let mut h = Vec::new();
    h.extend_from_slice(b"AKP1");
    h.extend_from_slice(&1u32.to_le_bytes()); // dim
    h.push(1); // L2
    h.extend_from_slice(&(64 * u64::from(u32::MAX)).to_le_bytes()); // slots
    h.extend_from_slice(&1u32.to_le_bytes()); // k
    h.extend_from_slice(&0f32.to_le_bytes()); // the centroid
    h.extend_from_slice(&[0; 36]); // the partition entry
    h.extend_from_slice(&u32::MAX.to_le_bytes()); // words of dead bits, and then nothing
    let err = Header::decode(&h).unwrap_err();
    assert!(err.contains("truncated"), "{err}");
}

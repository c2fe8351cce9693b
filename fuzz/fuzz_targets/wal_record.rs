//! The WAL read path: `wal::record::scan` over arbitrary file bytes (as the newest file, where
//! a torn tail is allowed, and as a sealed one), and `Operation::decode` (what a replay applies)
//! over arbitrary payloads: the input itself, and the payload of each record the scan found.
//! The input is also wrapped in a well-formed record, so that the decoder is reached past the
//! record's checksums. Errors are fine; a panic, an overflow or a runaway allocation is not.
#![no_main]

use akidb_engine::fuzzing::Operation;
use akidb_engine::wal::record::{self, Scan};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for is_last in [true, false] {
        match record::scan(data, is_last) {
            Ok(scan) => {
                check_scan(data, is_last, &scan);
                for r in &scan.records {
                    decode(&r.payload);
                }
            }
            Err(c) => assert!(c.offset < data.len() as u64, "corruption past the end"),
        }
    }
    decode(data);
    // The input as the operation of one intact record: it must scan back unchanged.
    let file = record::encode(7, data);
    assert_eq!(file.len(), record::encoded_len(data.len()));
    let scan = record::scan(&file, false).expect("an encoded record scans");
    assert_eq!(scan.valid_len, file.len() as u64);
    assert_eq!(scan.records.len(), 1);
    assert_eq!(
        (scan.records[0].seq, &scan.records[0].payload[..]),
        (7, data)
    );
});

/// The intact prefix re-encodes to exactly the bytes it was read from.
fn check_scan(data: &[u8], is_last: bool, scan: &Scan) {
    let valid = usize::try_from(scan.valid_len).expect("fits");
    assert!(valid <= data.len());
    match scan.torn {
        None => assert_eq!(valid, data.len(), "no torn tail, yet bytes left over"),
        Some(_) => assert!(
            is_last && valid < data.len(),
            "a torn tail where none can be"
        ),
    }
    let again: Vec<u8> = scan
        .records
        .iter()
        .flat_map(|r| record::encode(r.seq, &r.payload))
        .collect();
    assert!(
        again == data[..valid],
        "records do not re-encode to their bytes"
    );
}

/// Decodes an operation; one that decodes re-encodes to an operation that decodes the same
/// (ids, vectors bit for bit, which documents have metadata).
fn decode(payload: &[u8]) {
    let Ok(op) = Operation::decode(payload) else {
        return;
    };
    let encoded = op.encode();
    let again = Operation::decode(&encoded).expect("a re-encoded operation decodes");
    match (&op, &again) {
        (Operation::Upsert(a), Operation::Upsert(b)) => {
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(b) {
                assert_eq!(x.id, y.id);
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&x.vector), bits(&y.vector));
                assert_eq!(x.metadata.is_some(), y.metadata.is_some());
            }
        }
        (Operation::Delete(a), Operation::Delete(b)) => assert_eq!(a, b),
        _ => panic!("the operation changed kind: {op:?} / {again:?}"),
    }
}

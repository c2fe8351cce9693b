//! The Parquet segment decoder, `segment::decode`: the first input byte is the collection's
//! dimension (0 read as 1), the rest the segment object. Rows that decode must have that
//! dimension and survive a re-encoding. Errors are fine; a panic escaping the decoder, an
//! overflow or a runaway allocation is not.
//!
//! `segment::decode` catches the parquet crate's own panics on malformed pages and reports them
//! as `Malformed` (see its docs), but libfuzzer-sys's panic hook aborts before anything unwinds.
//! So this target's hook only records the message, and a panic that escapes (from the decoder
//! or from the checks here) is reported with it and aborts below.
#![no_main]

use std::panic;
use std::sync::{Mutex, Once};

use akidb_engine::segment::{self, Row};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

static HOOK: Once = Once::new();
static LAST_PANIC: Mutex<String> = Mutex::new(String::new());

fuzz_target!(|data: &[u8]| {
    HOOK.call_once(|| {
        panic::set_hook(Box::new(|info| {
            *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = info.to_string();
        }))
    });
    if panic::catch_unwind(|| check(data)).is_err() {
        let message = LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()).clone();
        eprintln!("a panic escaped segment::decode or the checks: {message}");
        std::process::abort();
    }
});

fn check(data: &[u8]) {
    let Some((&dim, object)) = data.split_first() else {
        return;
    };
    let dim = usize::from(dim).max(1);
    let Ok(rows) = segment::decode(dim, Bytes::copy_from_slice(object)) else {
        return;
    };
    for row in &rows {
        if let Row::Put(doc) = row {
            assert_eq!(doc.vector.len(), dim, "a row of the wrong dimension");
        }
    }
    let encoded = segment::encode(dim, &rows).expect("decoded rows encode");
    let again = segment::decode(dim, encoded).expect("a re-encoded segment decodes");
    assert_eq!(again.len(), rows.len());
    for (a, b) in rows.iter().zip(&again) {
        match (a, b) {
            (Row::Put(x), Row::Put(y)) => {
                assert_eq!(x.id, y.id);
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&x.vector), bits(&y.vector));
                assert_eq!(x.metadata.is_some(), y.metadata.is_some());
            }
            (Row::Tombstone(x), Row::Tombstone(y)) => assert_eq!(x, y),
            _ => panic!("a row changed kind: {a:?} / {b:?}"),
        }
    }
}

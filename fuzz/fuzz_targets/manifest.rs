//! Manifest decoding: `Manifest::parse` (the checksummed envelope of format 2 and 3, and the
//! bare JSON of format 1) over arbitrary bytes, and over the input sealed in an envelope with
//! the right checksum, so that the manifest inside is reached past the CRC. A manifest that
//! parses is used as the engine uses a loaded one (its objects, their byte total) and must
//! survive its own encoding. The generic envelope reader (catalog checkpoints use it too) is
//! run on the raw input as well. Errors are fine; panics are not.
#![no_main]

use akidb_engine::fuzzing::open_envelope;
use akidb_engine::manifest::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    parse(data);
    // The envelope's checksum covers the exact bytes of the value (JSON trims whitespace).
    let body = data.trim_ascii();
    let mut sealed = format!(
        "{{\"crc32c\":{},\"format\":2,\"manifest\":",
        crc32c::crc32c(body)
    )
    .into_bytes();
    sealed.extend_from_slice(body);
    sealed.push(b'}');
    parse(&sealed);
    for (kind, max_format) in [("checkpoint", 1), ("manifest", 3)] {
        if let Some(Ok((format, _))) = open_envelope::<serde_json::Value>(kind, max_format, data) {
            assert!(format <= max_format);
        }
    }
});

fn parse(data: &[u8]) {
    let Ok(m) = Manifest::parse("fuzz", data) else {
        return;
    };
    let count = m.objects().count();
    assert_eq!(
        count,
        m.segments.len() + usize::from(m.graph.is_some()) + usize::from(m.base.is_some())
    );
    let _ = m.object_bytes();
    let _ = m.required_format();
    for object in m.objects() {
        let _ = object.verify(data);
    }
    let again = Manifest::parse("re-encoded", &m.encode()).expect("an encoded manifest parses");
    assert_eq!(again, m, "a manifest changed through its own encoding");
}

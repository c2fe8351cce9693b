//! Checksummed JSON objects: `{"format": F, "crc32c": N, "<kind>": {...}}`, where the checksum
//! covers the exact bytes of the `<kind>` value. Manifests and catalog checkpoints are stored
//! this way, so that a flipped byte is reported instead of parsed into a different value (a
//! digit of `wal_seq`, say).

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

/// Serialises `value` inside a checksummed envelope (`pretty` for small objects that people read
/// in the bucket, such as manifests; compact for large ones).
pub fn seal(kind: &str, format: u32, value: &impl Serialize, pretty: bool) -> Bytes {
    let inner = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    }
    .expect("value serializes");
    let crc = crc32c::crc32c(inner.as_bytes());
    let raw = RawValue::from_string(inner).expect("valid json");
    let mut envelope: BTreeMap<&str, &RawValue> = BTreeMap::new();
    let format = RawValue::from_string(format.to_string()).expect("a number");
    let crc = RawValue::from_string(crc.to_string()).expect("a number");
    envelope.insert("format", &format);
    envelope.insert("crc32c", &crc);
    envelope.insert(kind, &raw);
    Bytes::from(serde_json::to_vec(&envelope).expect("envelope serializes"))
}

/// What an envelope holds, or `None` when `data` is not an envelope of `kind` at all (a legacy
/// object stored without one).
pub fn open<T: DeserializeOwned>(
    kind: &str,
    max_format: u32,
    data: &[u8],
) -> Option<Result<(u32, T), String>> {
    let fields: HashMap<String, &RawValue> = match serde_json::from_slice(data) {
        Ok(fields) => fields,
        // Not even a JSON object: an envelope damaged beyond reading, unless it never was one.
        Err(e) => {
            let looks_sealed = data.windows(kind.len() + 3).any(|w| {
                w.len() == kind.len() + 3
                    && w[0] == b'"'
                    && &w[1..=kind.len()] == kind.as_bytes()
                    && w[kind.len() + 1..] == *b"\":"
            });
            return looks_sealed.then(|| Err(e.to_string()));
        }
    };
    let Some(body) = fields.get(kind) else {
        // An envelope whose `kind` key is damaged; a legacy object has no checksum field.
        return fields
            .contains_key("crc32c")
            .then(|| Err(format!("the envelope has no {kind}")));
    };
    Some((|| {
        let number = |name: &str| -> Result<u64, String> {
            let raw = fields
                .get(name)
                .ok_or_else(|| format!("the envelope has no {name}"))?;
            raw.get().parse::<u64>().map_err(|e| format!("{name}: {e}"))
        };
        let format = u32::try_from(number("format")?).map_err(|e| e.to_string())?;
        if format > max_format {
            return Err(format!(
                "format {format}, this server reads up to {max_format}"
            ));
        }
        let expected = number("crc32c")?;
        let actual = crc32c::crc32c(body.get().as_bytes());
        if u64::from(actual) != expected {
            return Err(format!(
                "checksum {actual:08x}, the envelope says {expected:08x}"
            ));
        }
        let value = serde_json::from_str(body.get()).map_err(|e| e.to_string())?;
        Ok((format, value))
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_flip_is_caught_or_harmless() {
        let value = serde_json::json!({"a": 12345, "b": ["x", "y"], "c": {"d": true}});
        let data = seal("thing", 3, &value, true).to_vec();
        let (format, back): (u32, serde_json::Value) = open("thing", 3, &data).unwrap().unwrap();
        assert_eq!((format, &back), (3, &value));
        for pos in 0..data.len() {
            let mut bad = data.clone();
            bad[pos] ^= 0x01;
            match open::<serde_json::Value>("thing", 3, &bad) {
                Some(Ok((_, v))) => assert_eq!(v, value, "flip at {pos} changed the value"),
                Some(Err(_)) => {}
                // Not recognised as an envelope: only when the JSON itself is broken, so that
                // reading it as a legacy object fails too.
                None => assert!(
                    serde_json::from_slice::<serde_json::Value>(&bad).is_err(),
                    "flip at {pos}: a valid object no longer recognised as an envelope"
                ),
            }
        }
        assert!(
            open::<serde_json::Value>("thing", 2, &data)
                .unwrap()
                .is_err()
        );
        assert!(open::<serde_json::Value>("thing", 3, br#"{"a": 1}"#).is_none());
    }
}

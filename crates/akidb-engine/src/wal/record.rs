//! The WAL record format and the scan that reads it back: pure functions over bytes.
//!
//! ```text
//! [payload length: u32 LE][CRC32C of the length bytes: u32 LE][payload][CRC32C of payload: u32 LE]
//! payload = [sequence number: u64 LE][operation]
//! ```
//!
//! The length has its own checksum so that a damaged length is *known* to be damaged: without
//! it, one flipped bit in a length mid-file reads as "the record runs past the end of the file",
//! which looks exactly like a torn tail and would silently drop every later record.
//!
//! # What is a torn tail
//! A crash during an append leaves a *prefix* of the record at the end of the last file (or, on
//! some filesystems, the file extended with zeros). Such a record was never acknowledged: writes
//! are acknowledged only after the fsync that covers the whole record. So [`scan`] truncates a
//! bad record only when it is in the last file and looks like that:
//! - fewer bytes than a header remain, or the length's checksum fails and only zeros follow;
//! - the header is intact but the file ends before the record does;
//! - the record is complete but its payload checksum fails and its checksum field and
//!   everything after it are zeros (zero-fill).
//!
//! Anything else (a bad length followed by data, a complete record whose payload checksum fails,
//! any bad record in a sealed file) is corruption of data that may have been acknowledged: it is
//! reported, never truncated.

/// Bytes before the payload: length and its checksum.
pub const HEADER_LEN: usize = 8;
/// Bytes after the payload: its checksum.
pub const FOOTER_LEN: usize = 4;
/// Smallest payload: the sequence number.
pub const MIN_PAYLOAD: usize = 8;
/// A record larger than this is treated as corrupt: the API caps a batch well below it.
pub const MAX_PAYLOAD: usize = 1 << 30;

/// One record read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub seq: u64,
    pub payload: Vec<u8>,
}

/// The bytes of one record (sequence number `seq`, operation bytes `body`).
pub fn encode(seq: u64, body: &[u8]) -> Vec<u8> {
    let payload_len = MIN_PAYLOAD + body.len();
    let mut buf = Vec::with_capacity(HEADER_LEN + payload_len + FOOTER_LEN);
    let len = (payload_len as u32).to_le_bytes();
    buf.extend_from_slice(&len);
    buf.extend_from_slice(&crc32c::crc32c(&len).to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(body);
    let crc = crc32c::crc32c(&buf[HEADER_LEN..]);
    buf.extend_from_slice(&crc.to_le_bytes());
    buf
}

/// Bytes a record with a `body_len`-byte operation takes in the file.
pub fn encoded_len(body_len: usize) -> usize {
    HEADER_LEN + MIN_PAYLOAD + body_len + FOOTER_LEN
}

/// What [`scan`] found in one file.
#[derive(Debug, PartialEq)]
pub struct Scan {
    /// Every intact record, in file order.
    pub records: Vec<Record>,
    /// Length of the intact prefix (where appending continues).
    pub valid_len: u64,
    /// Set when a torn tail follows `valid_len` (why it was judged torn).
    pub torn: Option<&'static str>,
}

/// A bad record that is not a torn tail.
#[derive(Debug, Clone, PartialEq)]
pub struct Corruption {
    pub offset: u64,
    pub reason: String,
}

fn u32_at(data: &[u8], pos: usize) -> u32 {
    u32::from_le_bytes(data[pos..pos + 4].try_into().expect("4 bytes"))
}

fn all_zero(data: &[u8]) -> bool {
    data.iter().all(|&b| b == 0)
}

/// Reads the records of one file's bytes. `is_last`: the file is the newest of its WAL, the only
/// one where a torn tail can be.
pub fn scan(data: &[u8], is_last: bool) -> Result<Scan, Corruption> {
    let mut records = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        let rest = &data[pos..];
        let torn_or = |torn: bool, reason: &'static str, records: Vec<Record>| {
            if is_last && torn {
                Ok(Scan {
                    records,
                    valid_len: pos as u64,
                    torn: Some(reason),
                })
            } else {
                Err(Corruption {
                    offset: pos as u64,
                    reason: if is_last {
                        reason.to_string()
                    } else {
                        format!("{reason} in a sealed file (not the newest)")
                    },
                })
            }
        };
        if rest.len() < HEADER_LEN {
            return torn_or(true, "record header cut short", records);
        }
        let len_bytes = &rest[..4];
        if crc32c::crc32c(len_bytes) != u32_at(rest, 4) {
            return torn_or(all_zero(rest), "record length fails its checksum", records);
        }
        let len = u32_at(rest, 0) as usize;
        if !(MIN_PAYLOAD..=MAX_PAYLOAD).contains(&len) {
            return torn_or(false, "impossible record length", records);
        }
        let total = HEADER_LEN + len + FOOTER_LEN;
        if rest.len() < total {
            return torn_or(true, "record cut short", records);
        }
        let payload = &rest[HEADER_LEN..HEADER_LEN + len];
        if crc32c::crc32c(payload) != u32_at(rest, HEADER_LEN + len) {
            let zero_filled = all_zero(&rest[HEADER_LEN + len..]);
            return torn_or(zero_filled, "record payload fails its checksum", records);
        }
        records.push(Record {
            seq: u64::from_le_bytes(payload[..8].try_into().expect("8 bytes")),
            payload: payload[8..].to_vec(),
        });
        pos += total;
    }
    Ok(Scan {
        records,
        valid_len: pos as u64,
        torn: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(n: u64) -> Vec<u8> {
        (1..=n)
            .flat_map(|seq| encode(seq, format!("operation {seq}").as_bytes()))
            .collect()
    }

    fn seqs(s: &Scan) -> Vec<u64> {
        s.records.iter().map(|r| r.seq).collect()
    }

    #[test]
    fn round_trip() {
        let data = file(5);
        let s = scan(&data, true).unwrap();
        assert_eq!(seqs(&s), vec![1, 2, 3, 4, 5]);
        assert_eq!(s.records[2].payload, b"operation 3");
        assert_eq!(s.valid_len, data.len() as u64);
        assert_eq!(s.torn, None);
        assert_eq!(encoded_len(11), encode(1, b"operation 1").len());
    }

    #[test]
    fn every_prefix_of_the_last_record_is_a_torn_tail() {
        let data = file(3);
        let start = data.len() - encode(3, b"operation 3").len();
        for cut in start..data.len() {
            let s = scan(&data[..cut], true).unwrap();
            assert_eq!(seqs(&s), vec![1, 2], "cut at {cut}");
            assert_eq!(s.valid_len, start as u64);
            assert_eq!(s.torn.is_some(), cut > start);
            // The same bytes in a sealed file are corruption.
            if cut > start {
                assert!(scan(&data[..cut], false).is_err());
            }
        }
    }

    #[test]
    fn zero_fill_after_a_crash_is_a_torn_tail() {
        let mut data = file(3);
        let start = data.len() - encode(3, b"operation 3").len();
        // The filesystem extended the file but never wrote the last record's blocks.
        for b in &mut data[start..] {
            *b = 0;
        }
        data.extend_from_slice(&[0; 100]);
        let s = scan(&data, true).unwrap();
        assert_eq!(seqs(&s), vec![1, 2]);
        // Zeros only from the payload checksum on: still torn.
        let mut data = file(3);
        let n = data.len();
        data[n - 4..].fill(0);
        assert_eq!(seqs(&scan(&data, true).unwrap()), vec![1, 2]);
    }

    /// The bug this format fixes: one flipped bit in a length mid-file used to read as a torn
    /// tail and drop every later record.
    #[test]
    fn a_flipped_length_mid_file_is_corruption_not_a_tail() {
        let data = file(50);
        let second = encode(1, b"operation 1").len();
        for bit in 0..32 {
            let mut bad = data.clone();
            bad[second + bit / 8] ^= 1 << (bit % 8);
            let err = scan(&bad, true).unwrap_err();
            assert_eq!(err.offset, second as u64, "bit {bit}");
            assert!(err.reason.contains("length"), "{}", err.reason);
        }
    }

    #[test]
    fn any_flipped_byte_of_a_complete_record_is_corruption_even_at_the_tail() {
        let data = file(4);
        let last = data.len() - encode(4, b"operation 4").len();
        for pos in 0..data.len() {
            let mut bad = data.clone();
            bad[pos] ^= 0x5a;
            let err = scan(&bad, true).expect_err(&format!("byte {pos}"));
            let record_start = if pos >= last {
                last
            } else {
                let one = encode(1, b"operation 1").len();
                pos / one * one
            };
            assert_eq!(err.offset, record_start as u64, "byte {pos}");
        }
    }

    #[test]
    fn impossible_lengths_are_corruption() {
        let mut data = Vec::new();
        let len = 4u32.to_le_bytes();
        data.extend_from_slice(&len);
        data.extend_from_slice(&crc32c::crc32c(&len).to_le_bytes());
        data.extend_from_slice(&[1; 32]);
        assert!(scan(&data, true).is_err());
    }
}

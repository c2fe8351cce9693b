//! Documents and the operations the WAL records.
//!
//! The WAL payload of an operation is a compact binary encoding (vectors as raw little-endian
//! f32, metadata as its JSON text) so that a batch of 1,000 384-d vectors costs one memcpy-sized
//! write rather than a JSON round trip.

use serde_json::{Map, Value};

pub type Metadata = Map<String, Value>;

/// Bytes the allocator takes for a request of `n` bytes (glibc: 8 bytes of header, rounded up
/// to 16, at least 32). Used to count what a collection holds in RAM.
pub fn heap_block(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (n + 8).div_ceil(16).max(2) * 16
    }
}

/// Heap bytes held by a parsed metadata object (not counting its own `Map` header): the B-tree
/// nodes (a leaf holds up to 11 entries of a 24-byte `String` key and a 32-byte `Value`, and is
/// allocated whole even for one entry), key and string bytes, arrays and nested objects.
pub fn metadata_heap_bytes(map: &Metadata) -> usize {
    use std::mem::size_of;
    const CAPACITY: usize = 11;
    let leaf = heap_block(16 + CAPACITY * (size_of::<String>() + size_of::<Value>()));
    let internal = leaf + (CAPACITY + 1) * size_of::<usize>();
    fn string(s: &str) -> usize {
        heap_block(s.len())
    }
    fn value(v: &Value) -> usize {
        match v {
            Value::String(s) => string(s),
            Value::Array(a) => {
                heap_block(a.len() * size_of::<Value>()) + a.iter().map(value).sum::<usize>()
            }
            Value::Object(m) => metadata_heap_bytes(m),
            Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        }
    }
    let n = map.len();
    let nodes = if n == 0 {
        0
    } else if n <= CAPACITY {
        leaf
    } else {
        // Nodes split half full and fill as they grow: about 2/3 full on average.
        let leaves = (n * 3).div_ceil(CAPACITY * 2);
        leaves * leaf + leaves.div_ceil(CAPACITY * 2 / 3) * internal
    };
    nodes + map.iter().map(|(k, v)| string(k) + value(v)).sum::<usize>()
}

/// A document as stored: the vector is already validated (and unit length for cosine).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub id: String,
    pub vector: Vec<f32>,
    pub metadata: Option<Metadata>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    Upsert(Vec<Document>),
    Delete(Vec<String>),
}

#[derive(Debug, thiserror::Error)]
#[error("malformed operation record: {0}")]
pub struct DecodeError(String);

const UPSERT: u8 = 1;
const DELETE: u8 = 2;

impl Operation {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Operation::Upsert(docs) => {
                let dim = docs.first().map_or(0, |d| d.vector.len());
                out.reserve(docs.len() * (dim * 4 + 64));
                out.push(UPSERT);
                put_u32(&mut out, docs.len() as u32);
                for doc in docs {
                    put_bytes(&mut out, doc.id.as_bytes());
                    put_u32(&mut out, doc.vector.len() as u32);
                    for x in &doc.vector {
                        out.extend_from_slice(&x.to_le_bytes());
                    }
                    match &doc.metadata {
                        Some(m) => put_bytes(&mut out, &serde_json::to_vec(m).expect("json map")),
                        None => put_u32(&mut out, u32::MAX),
                    }
                }
            }
            Operation::Delete(ids) => {
                out.push(DELETE);
                put_u32(&mut out, ids.len() as u32);
                for id in ids {
                    put_bytes(&mut out, id.as_bytes());
                }
            }
        }
        out
    }

    pub fn decode(data: &[u8]) -> Result<Operation, DecodeError> {
        let mut r = Reader { data, pos: 0 };
        let kind = r.take(1)?[0];
        let count = r.u32()? as usize;
        match kind {
            UPSERT => {
                let mut docs = Vec::with_capacity(count.min(100_000));
                for _ in 0..count {
                    let id = r.string()?;
                    let dim = r.u32()? as usize;
                    let raw = r.take(dim * 4)?;
                    let vector = raw
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                        .collect();
                    let metadata = match r.u32()? {
                        u32::MAX => None,
                        len => Some(
                            serde_json::from_slice(r.take(len as usize)?)
                                .map_err(|e| DecodeError(format!("metadata: {e}")))?,
                        ),
                    };
                    docs.push(Document {
                        id,
                        vector,
                        metadata,
                    });
                }
                Ok(Operation::Upsert(docs))
            }
            DELETE => {
                let ids = (0..count).map(|_| r.string()).collect::<Result<_, _>>()?;
                Ok(Operation::Delete(ids))
            }
            other => Err(DecodeError(format!("unknown operation kind {other}"))),
        }
    }
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u32(out, b.len() as u32);
    out.extend_from_slice(b);
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or_else(|| DecodeError(format!("truncated at byte {}", self.pos)))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn string(&mut self) -> Result<String, DecodeError> {
        let len = self.u32()? as usize;
        String::from_utf8(self.take(len)?.to_vec()).map_err(|e| DecodeError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut meta = Metadata::new();
        meta.insert("lang".into(), Value::from("en"));
        let ops = [
            Operation::Upsert(vec![
                Document {
                    id: "a".into(),
                    vector: vec![1.0, -2.5, 3.25],
                    metadata: Some(meta),
                },
                Document {
                    id: "b/ü".into(),
                    vector: vec![0.0, 0.0, 1.0],
                    metadata: None,
                },
            ]),
            Operation::Delete(vec!["a".into(), "zz".into()]),
            Operation::Upsert(vec![]),
        ];
        for op in ops {
            assert_eq!(Operation::decode(&op.encode()).unwrap(), op);
        }
        assert!(Operation::decode(&[1, 5, 0, 0, 0]).is_err());
        assert!(Operation::decode(&[9, 0, 0, 0, 0]).is_err());
    }
}

//! Documents and the operations the WAL records.
//!
//! The WAL payload of an operation is a compact binary encoding (vectors as raw little-endian
//! f32, metadata as its JSON text) so that a batch of 1,000 384-d vectors costs one memcpy-sized
//! write rather than a JSON round trip.

use serde_json::{Map, Value};

pub type Metadata = Map<String, Value>;

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

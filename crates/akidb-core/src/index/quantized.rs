//! A quantized index's vectors: 8-bit codes in RAM for the graph, full-precision vectors in a
//! [`FullVectors`] store (the engine's is a local file) for re-ranking and for exact answers.
//!
//! Vectors not yet in the graph stay in RAM as f32 (they are what their slots are queried by
//! while being inserted); the indexer writes them out once inserted
//! ([`Quantized::write_pending`]), the only I/O, so a push never fails.
//!
//! **Exact search over codes** ([`Quantized::exact_scan`]) stays exact thanks to the per-vector
//! bound of [`crate::sq8`]: one pass over the codes keeps the k smallest *upper* bounds (the
//! k-th is a distance the answer cannot be worse than) and, as candidates, the slots whose
//! *lower* bound is within it; then their full vectors are read, nearest lower bound first,
//! until the next lower bound is worse than the k-th exact distance found.

use std::borrow::Cow;
use std::collections::BinaryHeap;
use std::io;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::flat::push_bounded;
use super::scratch::Item;
use super::space::Sq8Space;
use crate::distance::DistanceFn;
use crate::metric::Metric;
use crate::sq8::{Sq8, Sq8Meta, Sq8Query};

/// How the index holds its vectors in RAM.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quantization {
    /// f32 vectors in RAM (4 bytes per coordinate).
    #[default]
    None,
    /// 8-bit codes in RAM (1 byte per coordinate), f32 vectors in a [`FullVectors`] store for
    /// re-ranking; see [`VectorIndex::quantize`].
    Sq8,
}

impl Quantization {
    pub fn as_str(self) -> &'static str {
        match self {
            Quantization::None => "none",
            Quantization::Sq8 => "sq8",
        }
    }
}

impl std::str::FromStr for Quantization {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Quantization::None),
            "sq8" => Ok(Quantization::Sq8),
            other => Err(format!(
                "unknown quantization {other:?}: expected none or sq8"
            )),
        }
    }
}

/// Vectors sampled (strided over the slots) to train the quantizer.
pub const TRAINING_SAMPLE: usize = 100_000;

/// Where a quantized index keeps its full-precision vectors, by slot.
pub trait FullVectors: Send + Sync {
    /// Appends the vectors of the next slots (`vectors.len()` is a multiple of the dimension);
    /// on error nothing counts as appended (the caller retries the same vectors later).
    fn append(&mut self, vectors: &[f32]) -> io::Result<()>;
    /// Reads slot `slot`'s vector into `out` (one dimension's worth of floats).
    fn read(&self, slot: u32, out: &mut [f32]) -> io::Result<()>;
}

/// [`FullVectors`] in RAM: for tests, and for a caller with no disk to spare.
#[derive(Debug, Default)]
pub struct VectorsInRam {
    vectors: Vec<f32>,
    dim: usize,
}

impl VectorsInRam {
    pub fn new(dim: usize) -> Self {
        VectorsInRam {
            vectors: Vec::new(),
            dim,
        }
    }
}

impl FullVectors for VectorsInRam {
    fn append(&mut self, vectors: &[f32]) -> io::Result<()> {
        self.vectors.extend_from_slice(vectors);
        Ok(())
    }

    fn read(&self, slot: u32, out: &mut [f32]) -> io::Result<()> {
        let s = slot as usize * self.dim;
        let v = self.vectors.get(s..s + self.dim).ok_or_else(|| {
            io::Error::new(io::ErrorKind::UnexpectedEof, format!("no slot {slot}"))
        })?;
        out.copy_from_slice(v);
        Ok(())
    }
}

pub(crate) struct Quantized {
    pub sq: Sq8,
    pub codes: Vec<u8>,
    pub meta: Vec<Sq8Meta>,
    /// f32 vectors of slots `[pending_base, len)`; those from `written` on are not yet in
    /// `full` (the written prefix is dropped once it is half of the buffer, so that writing
    /// out a little at a time never moves a large backlog).
    pending: Vec<f32>,
    pending_base: usize,
    pub written: usize,
    full: Box<dyn FullVectors>,
    /// Full vectors that could not be read (the estimate was used instead).
    pub read_errors: AtomicU64,
}

impl Quantized {
    /// Trains on up to [`TRAINING_SAMPLE`] of `vectors` (strided), encodes them all, writes the
    /// first `indexed` (the slots in the graph) to `full` and keeps the others pending.
    pub fn build(
        vectors: &[f32],
        dim: usize,
        indexed: usize,
        mut full: Box<dyn FullVectors>,
    ) -> io::Result<Self> {
        let n = vectors.len() / dim.max(1);
        let step = n.div_ceil(TRAINING_SAMPLE).max(1);
        let sq = Sq8::train(
            dim,
            (0..n)
                .step_by(step)
                .map(|i| &vectors[i * dim..(i + 1) * dim]),
        );
        let mut codes = vec![0u8; n * dim];
        let meta = (0..n)
            .map(|i| {
                sq.encode(
                    &vectors[i * dim..(i + 1) * dim],
                    &mut codes[i * dim..(i + 1) * dim],
                )
            })
            .collect();
        let indexed = indexed.min(n);
        for chunk in vectors[..indexed * dim].chunks(dim.max(1) * 65_536) {
            full.append(chunk)?;
        }
        Ok(Quantized {
            sq,
            codes,
            meta,
            pending: vectors[indexed * dim..].to_vec(),
            pending_base: indexed,
            written: indexed,
            full,
            read_errors: AtomicU64::new(0),
        })
    }

    pub fn push(&mut self, v: &[f32]) {
        let dim = v.len();
        let at = self.codes.len();
        super::graph::reserve_growth(&mut self.codes, dim.max(1) * 8);
        self.codes.resize(at + dim, 0);
        let meta = self.sq.encode(v, &mut self.codes[at..]);
        super::graph::reserve_growth(&mut self.meta, 8);
        self.meta.push(meta);
        super::graph::reserve_growth(&mut self.pending, dim.max(1) * 8);
        self.pending.extend_from_slice(v);
    }

    pub fn space(&self, metric: Metric, dim: usize, dist: DistanceFn) -> Sq8Space<'_> {
        Sq8Space {
            sq: &self.sq,
            metric,
            codes: &self.codes,
            meta: &self.meta,
            dim,
            exact: self.unwritten(dim),
            exact_from: self.written,
            dist,
        }
    }

    /// f32 vectors of slots `[written, len)`.
    fn unwritten(&self, dim: usize) -> &[f32] {
        &self.pending[(self.written - self.pending_base) * dim..]
    }

    /// Writes the pending vectors of slots below `upto` to the full-vector store.
    pub fn write_pending(&mut self, dim: usize, upto: usize) -> io::Result<()> {
        let n = upto
            .saturating_sub(self.written)
            .min(self.unwritten(dim).len() / dim.max(1));
        if n == 0 {
            return Ok(());
        }
        let from = (self.written - self.pending_base) * dim;
        self.full.append(&self.pending[from..from + n * dim])?;
        self.written += n;
        let done = self.written - self.pending_base;
        if 2 * done * dim >= self.pending.len() {
            self.pending.drain(..done * dim);
            self.pending_base = self.written;
            if self.pending.capacity() > 2 * self.pending.len() + 4096 {
                self.pending.shrink_to_fit();
            }
        }
        Ok(())
    }

    /// Slot `slot`'s full-precision vector.
    pub fn vector(&self, slot: u32, dim: usize) -> io::Result<Cow<'_, [f32]>> {
        if let Some(i) = (slot as usize).checked_sub(self.written) {
            return Ok(Cow::Borrowed(&self.unwritten(dim)[i * dim..(i + 1) * dim]));
        }
        let mut out = vec![0.0; dim];
        self.full.read(slot, &mut out)?;
        Ok(Cow::Owned(out))
    }

    /// The exact distance of `slot` to `q`; its estimate `fallback` if the vector cannot be
    /// read (counted in `read_errors`).
    fn exact(&self, dist: DistanceFn, q: &[f32], slot: u32, fallback: f32, buf: &mut [f32]) -> f32 {
        let dim = q.len();
        if let Some(i) = (slot as usize).checked_sub(self.written) {
            return dist.eval(q, &self.unwritten(dim)[i * dim..(i + 1) * dim]);
        }
        match self.full.read(slot, buf) {
            Ok(()) => dist.eval(q, buf),
            Err(_) => {
                self.read_errors.fetch_add(1, Ordering::Relaxed);
                fallback
            }
        }
    }

    /// The best `k` of `items` by exact distance, into `heap` (merged with what it holds):
    /// the same as reading every item's full vector, but only those whose lower bound can
    /// still beat the k-th exact distance found are read (a search's `ef` candidates mostly
    /// cannot).
    pub fn rerank(
        &self,
        dist: DistanceFn,
        sq_query: &Sq8Query,
        q: &[f32],
        items: impl Iterator<Item = Item>,
        k: usize,
        heap: &mut BinaryHeap<Item>,
    ) {
        let dim = q.len();
        let bounded = items
            .map(|it| {
                let slot = it.id as usize;
                let (est, b) =
                    sq_query.distance(&self.codes[slot * dim..(slot + 1) * dim], self.meta[slot]);
                (it.id, est, b)
            })
            .collect();
        self.refine(dist, q, bounded, k, heap);
    }

    /// Reads the full vectors of `(slot, estimate, bound)` candidates nearest lower bound first,
    /// until the next lower bound cannot beat the k-th exact distance in `heap`.
    fn refine(
        &self,
        dist: DistanceFn,
        q: &[f32],
        mut cands: Vec<(u32, f32, f32)>,
        k: usize,
        heap: &mut BinaryHeap<Item>,
    ) {
        cands.sort_unstable_by(|a, b| (a.1 - a.2).total_cmp(&(b.1 - b.2)).then(a.0.cmp(&b.0)));
        let mut buf = vec![0.0; q.len()];
        for (id, est, b) in cands {
            if heap.len() >= k && heap.peek().is_some_and(|t| est - b > t.d) {
                break;
            }
            let d = self.exact(dist, q, id, est, &mut buf);
            push_bounded(heap, k, Item { d, id });
        }
    }

    /// Exact k nearest admitted slots of `range` into `heap` (merged with what it holds), from
    /// the codes and as few full vectors as the bounds allow (see the module docs).
    #[allow(clippy::too_many_arguments)]
    pub fn exact_scan<A: Fn(u32) -> bool>(
        &self,
        dist: DistanceFn,
        sq_query: &Sq8Query,
        q: &[f32],
        k: usize,
        range: Range<usize>,
        admit: A,
        heap: &mut BinaryHeap<Item>,
    ) {
        if k == 0 || range.is_empty() {
            return;
        }
        let dim = q.len();
        let coded_end = range.end.min(self.written);
        // The k smallest upper bounds so far (exact distances count as their own bounds): the
        // k-th is a distance the answer cannot be worse than, and it only falls as the scan goes.
        let mut upper: BinaryHeap<Item> = heap.iter().copied().collect();
        let limit = |upper: &BinaryHeap<Item>| match upper.peek() {
            Some(t) if upper.len() >= k => t.d,
            _ => f32::INFINITY,
        };
        // Pending slots first: exact, and they tighten the limit for the codes.
        for slot in range.start.max(self.written)..range.end {
            let id = slot as u32;
            if admit(id) {
                let i = slot - self.written;
                let d = dist.eval(q, &self.unwritten(dim)[i * dim..(i + 1) * dim]);
                push_bounded(&mut upper, k, Item { d, id });
                push_bounded(heap, k, Item { d, id });
            }
        }
        // One pass over the codes: a slot is a candidate while its lower bound is within the
        // limit at its turn; those beyond the final limit are dropped before any read.
        let mut cands = Vec::new();
        for slot in range.start..coded_end {
            let id = slot as u32;
            if admit(id) {
                let (est, b) =
                    sq_query.distance(&self.codes[slot * dim..(slot + 1) * dim], self.meta[slot]);
                push_bounded(&mut upper, k, Item { d: est + b, id });
                if est - b <= limit(&upper) {
                    cands.push((id, est, b));
                }
            }
        }
        let last = limit(&upper);
        cands.retain(|&(_, est, b)| est - b <= last);
        self.refine(dist, q, cands, k, heap);
    }

    /// Reads every full vector back (undoing the quantization).
    pub fn full_vectors(&self, len: usize, dim: usize) -> io::Result<Vec<f32>> {
        let mut out = vec![0.0; len * dim];
        for slot in 0..len {
            let v = self.vector(slot as u32, dim)?;
            out[slot * dim..(slot + 1) * dim].copy_from_slice(&v);
        }
        Ok(out)
    }

    pub fn memory_bytes(&self) -> usize {
        self.codes.capacity()
            + self.meta.capacity() * std::mem::size_of::<Sq8Meta>()
            + self.pending.capacity() * 4
            + self.sq.dim() * 8
    }

    pub fn shrink_to_fit(&mut self) {
        self.codes.shrink_to_fit();
        self.meta.shrink_to_fit();
        self.pending.shrink_to_fit();
    }
}

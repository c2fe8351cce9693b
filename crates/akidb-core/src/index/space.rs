//! What a graph search measures distances in: full-precision vectors ([`F32Space`]) or 8-bit
//! codes ([`Sq8Space`]). The HNSW code is generic over [`Space`], so each is compiled into
//! its own search loop (no dispatch per distance).

use crate::distance::DistanceFn;
use crate::metric::Metric;
use crate::sq8::{Sq8, Sq8Meta, Sq8Query};

#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetch is a hint; it never faults, even on an invalid address.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(p as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Distances from a prepared query to stored slots.
pub(crate) trait Space: Copy + Sync {
    /// A query prepared for this space.
    type Query<'q>: Sync
    where
        Self: 'q;
    /// Prepares a caller's vector (already normalised for cosine).
    fn prepare<'q>(&self, q: &'q [f32]) -> Self::Query<'q>;
    /// A stored slot as a query (building the graph).
    fn node_query(&self, id: u32) -> Self::Query<'_>;
    /// Distance (lower is better) from `q` to slot `id`; an estimate in a quantized space.
    fn d(&self, q: &Self::Query<'_>, id: u32) -> f32;
    /// Where slot `id`'s stored form starts, and how many bytes it has (for prefetching).
    fn location(&self, id: u32) -> (*const u8, usize);
    /// Slot `id` as f32 (decoded in a quantized space), for distances between stored nodes.
    type Decoded<'a>: std::ops::Deref<Target = [f32]>
    where
        Self: 'a;
    fn decoded(&self, id: u32) -> Self::Decoded<'_>;
    /// The f32 kernel for distances between decoded nodes.
    fn kernel(&self) -> DistanceFn;

    /// Prefetches the cache lines of `id` after the first.
    #[inline(always)]
    fn prefetch_rest(&self, id: u32) {
        let (p, len) = self.location(id);
        let mut off = 64;
        while off < len {
            prefetch(p.wrapping_add(off));
            off += 64;
        }
    }
}

/// Full-precision vectors, contiguous by slot.
#[derive(Clone, Copy)]
pub(crate) struct F32Space<'a> {
    pub vectors: &'a [f32],
    pub dim: usize,
    pub dist: DistanceFn,
}

impl<'a> F32Space<'a> {
    #[inline(always)]
    pub fn vector(&self, id: u32) -> &'a [f32] {
        let s = id as usize * self.dim;
        &self.vectors[s..s + self.dim]
    }
}

impl Space for F32Space<'_> {
    type Query<'q>
        = &'q [f32]
    where
        Self: 'q;

    #[inline(always)]
    fn prepare<'q>(&self, q: &'q [f32]) -> &'q [f32] {
        q
    }

    #[inline(always)]
    fn node_query(&self, id: u32) -> &[f32] {
        self.vector(id)
    }

    #[inline(always)]
    fn d(&self, q: &&[f32], id: u32) -> f32 {
        self.dist.eval(q, self.vector(id))
    }

    #[inline(always)]
    fn location(&self, id: u32) -> (*const u8, usize) {
        (
            self.vectors.as_ptr().wrapping_add(id as usize * self.dim) as *const u8,
            self.dim * 4,
        )
    }

    type Decoded<'a>
        = &'a [f32]
    where
        Self: 'a;

    #[inline(always)]
    fn decoded(&self, id: u32) -> &[f32] {
        self.vector(id)
    }

    #[inline(always)]
    fn kernel(&self) -> DistanceFn {
        self.dist
    }
}

/// 8-bit codes by slot; slots from `exact_from` on also have their f32 vector in `exact`
/// (pushed, not yet written out), which is what they are queried by while being inserted.
#[derive(Clone, Copy)]
pub(crate) struct Sq8Space<'a> {
    pub sq: &'a Sq8,
    pub metric: Metric,
    pub codes: &'a [u8],
    pub meta: &'a [Sq8Meta],
    pub dim: usize,
    pub exact: &'a [f32],
    pub exact_from: usize,
    pub dist: DistanceFn,
}

impl<'a> Sq8Space<'a> {
    #[inline(always)]
    pub fn code(&self, id: u32) -> &'a [u8] {
        let s = id as usize * self.dim;
        &self.codes[s..s + self.dim]
    }

    /// Slot `id`'s f32 vector, when it is still held in RAM.
    #[inline(always)]
    pub fn exact(&self, id: u32) -> Option<&'a [f32]> {
        let i = (id as usize).checked_sub(self.exact_from)?;
        self.exact.get(i * self.dim..(i + 1) * self.dim)
    }
}

impl Space for Sq8Space<'_> {
    type Query<'q>
        = Sq8Query
    where
        Self: 'q;

    fn prepare(&self, q: &[f32]) -> Sq8Query {
        self.sq.query(self.metric, q)
    }

    fn node_query(&self, id: u32) -> Sq8Query {
        match self.exact(id) {
            Some(v) => self.sq.query(self.metric, v),
            None => self.sq.query(self.metric, &self.sq.decode(self.code(id))),
        }
    }

    #[inline(always)]
    fn d(&self, q: &Sq8Query, id: u32) -> f32 {
        q.estimate(self.code(id), self.meta[id as usize])
    }

    #[inline(always)]
    fn location(&self, id: u32) -> (*const u8, usize) {
        (
            self.codes.as_ptr().wrapping_add(id as usize * self.dim),
            self.dim,
        )
    }

    type Decoded<'a>
        = std::borrow::Cow<'a, [f32]>
    where
        Self: 'a;

    fn decoded(&self, id: u32) -> std::borrow::Cow<'_, [f32]> {
        match self.exact(id) {
            Some(v) => std::borrow::Cow::Borrowed(v),
            None => std::borrow::Cow::Owned(self.sq.decode(self.code(id))),
        }
    }

    fn kernel(&self) -> DistanceFn {
        self.dist
    }
}

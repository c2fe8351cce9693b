//! HNSW graph storage (hnswlib-style layout).
//!
//! - **Level 0**: one flat `Vec<u32>`, node-major, fixed stride `1 + 2M`: `[count, n_0, …,
//!   n_{2M-1}]`. Node `i`'s list starts at `i * stride0`; no pointer chasing, no per-node
//!   allocation.
//! - **Upper levels** (only ~1/M of the nodes have any): `upper_offset[i]` is either
//!   [`NO_UPPER`] or the start, in the flat `upper` vector, of `level(i)` consecutive blocks of
//!   stride `1 + M` (block `l - 1` holds level `l`). Blocks are appended when the node is
//!   inserted and never move, since a node's level is fixed.
//! - `levels[i]` is node `i`'s top level. Node ids are slots; nodes `[0, len)` are in the graph.
//!
//! Invariants: every stored link points to a node `< len`; counts never exceed the capacity
//! (2M on level 0, M above); a node never links to itself; links are not duplicated.

pub(crate) const NO_UPPER: u32 = u32::MAX;

#[derive(Clone, Debug)]
pub(crate) struct Graph {
    /// Max links on upper levels.
    pub m: usize,
    /// Max links on level 0 (2M).
    pub m0: usize,
    stride0: usize,
    stride_up: usize,
    level0: Vec<u32>,
    levels: Vec<u8>,
    upper_offset: Vec<u32>,
    upper: Vec<u32>,
    /// Entry point and its level (None while empty).
    pub entry: Option<(u32, usize)>,
}

/// Grows `v` so it can take `additional` more elements, by at least 25% of its length (so
/// amortised O(1), but at most ~25% slack instead of Vec's 100%).
pub(crate) fn reserve_growth<T>(v: &mut Vec<T>, additional: usize) {
    let need = v.len() + additional;
    if need > v.capacity() {
        let target = need.max(v.len() + v.len() / 4);
        v.reserve_exact(target - v.len());
    }
}

impl Graph {
    pub fn new(m: usize) -> Self {
        Graph {
            m,
            m0: 2 * m,
            stride0: 1 + 2 * m,
            stride_up: 1 + m,
            level0: Vec::new(),
            levels: Vec::new(),
            upper_offset: Vec::new(),
            upper: Vec::new(),
            entry: None,
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    #[inline]
    pub fn level(&self, node: u32) -> usize {
        self.levels[node as usize] as usize
    }

    /// Reserves room for `n` more nodes (with the bounded-slack growth policy).
    pub fn reserve(&mut self, n: usize) {
        reserve_growth(&mut self.level0, n * self.stride0);
        reserve_growth(&mut self.levels, n);
        reserve_growth(&mut self.upper_offset, n);
    }

    /// Appends a node with empty link lists on levels `0..=level`; returns its id.
    pub fn add_node(&mut self, level: usize) -> u32 {
        let id = self.levels.len();
        assert!(id < u32::MAX as usize, "too many nodes");
        reserve_growth(&mut self.level0, self.stride0);
        self.level0.resize(self.level0.len() + self.stride0, 0);
        self.levels.push(level as u8);
        if level == 0 {
            self.upper_offset.push(NO_UPPER);
        } else {
            let off = self.upper.len();
            assert!(off < NO_UPPER as usize, "upper-level storage overflow");
            reserve_growth(&mut self.upper, level * self.stride_up);
            self.upper.resize(off + level * self.stride_up, 0);
            self.upper_offset.push(off as u32);
        }
        id as u32
    }

    #[inline(always)]
    fn block(&self, node: u32, level: usize) -> usize {
        if level == 0 {
            node as usize * self.stride0
        } else {
            let off = self.upper_offset[node as usize];
            debug_assert!(off != NO_UPPER && level <= self.level(node));
            off as usize + (level - 1) * self.stride_up
        }
    }

    /// The links of `node` on `level` (which must be `<= level(node)`).
    #[inline(always)]
    pub fn neighbors(&self, node: u32, level: usize) -> &[u32] {
        let b = self.block(node, level);
        let n = self.level0_or_upper(level)[b] as usize;
        &self.level0_or_upper(level)[b + 1..b + 1 + n]
    }

    #[inline(always)]
    fn level0_or_upper(&self, level: usize) -> &[u32] {
        if level == 0 {
            &self.level0
        } else {
            &self.upper
        }
    }

    /// Level-0 links of `node` (the hot path: no level branch).
    #[inline(always)]
    pub fn neighbors0(&self, node: u32) -> &[u32] {
        let b = node as usize * self.stride0;
        let n = self.level0[b] as usize;
        &self.level0[b + 1..b + 1 + n]
    }

    /// Address of `node`'s level-0 list (for prefetching).
    #[inline(always)]
    pub fn neighbors0_ptr(&self, node: u32) -> *const u32 {
        self.level0
            .as_ptr()
            .wrapping_add(node as usize * self.stride0)
    }

    /// Replaces the links of `node` on `level`.
    pub fn set_neighbors(
        &mut self,
        node: u32,
        level: usize,
        links: impl ExactSizeIterator<Item = u32>,
    ) {
        let cap = self.capacity(level);
        let n = links.len();
        assert!(n <= cap, "link list over capacity");
        let b = self.block(node, level);
        let store = if level == 0 {
            &mut self.level0
        } else {
            &mut self.upper
        };
        store[b] = n as u32;
        for (dst, l) in store[b + 1..b + 1 + n].iter_mut().zip(links) {
            *dst = l;
        }
    }

    /// Appends one link if there is room; returns false if the list is full.
    pub fn try_push_neighbor(&mut self, node: u32, level: usize, link: u32) -> bool {
        let cap = self.capacity(level);
        let b = self.block(node, level);
        let store = if level == 0 {
            &mut self.level0
        } else {
            &mut self.upper
        };
        let n = store[b] as usize;
        if n >= cap {
            return false;
        }
        store[b + 1 + n] = link;
        store[b] = n as u32 + 1;
        true
    }

    #[inline]
    pub fn capacity(&self, level: usize) -> usize {
        if level == 0 { self.m0 } else { self.m }
    }

    pub fn shrink_to_fit(&mut self) {
        self.level0.shrink_to_fit();
        self.levels.shrink_to_fit();
        self.upper_offset.shrink_to_fit();
        self.upper.shrink_to_fit();
    }

    /// Bytes held by the graph (capacities, not just lengths).
    pub fn memory_bytes(&self) -> usize {
        self.level0.capacity() * 4
            + self.levels.capacity()
            + self.upper_offset.capacity() * 4
            + self.upper.capacity() * 4
    }
}

/// Leading bytes of an encoded graph (format version 1).
const MAGIC: &[u8; 8] = b"AKHNSW01";

impl Graph {
    /// Encodes the graph, little-endian: magic, `m`, node count, entry (node, level; node
    /// `u32::MAX` when empty), then `levels`, the level-0 blocks, `upper_offset`, and the
    /// length-prefixed `upper` blocks. The layout is the in-memory one, so decoding is a copy.
    pub fn encode(&self) -> Vec<u8> {
        let words = self.level0.len() + self.upper_offset.len() + self.upper.len();
        let mut out = Vec::with_capacity(40 + self.levels.len() + 4 * words);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.m as u32).to_le_bytes());
        out.extend_from_slice(&(self.len() as u64).to_le_bytes());
        let (entry, entry_level) = self.entry.map_or((u32::MAX, 0), |(n, l)| (n, l as u32));
        out.extend_from_slice(&entry.to_le_bytes());
        out.extend_from_slice(&entry_level.to_le_bytes());
        out.extend_from_slice(&self.levels);
        let u32s =
            |out: &mut Vec<u8>, v: &[u32]| v.iter().for_each(|x| out.extend(x.to_le_bytes()));
        u32s(&mut out, &self.level0);
        u32s(&mut out, &self.upper_offset);
        out.extend_from_slice(&(self.upper.len() as u64).to_le_bytes());
        u32s(&mut out, &self.upper);
        out
    }

    /// Decodes [`Graph::encode`]'s output and checks every invariant (counts within capacity,
    /// links to existing nodes, upper blocks in bounds, the entry point at its level), so a
    /// damaged object is an error, never a panic or an out-of-bounds read later.
    pub fn decode(bytes: &[u8]) -> Result<Graph, String> {
        let mut r = Reader { bytes, pos: 0 };
        if r.take(8)? != MAGIC {
            return Err("not an AkiDB graph (bad magic)".into());
        }
        let m = r.u32()? as usize;
        if !(2..=1 << 15).contains(&m) {
            return Err(format!("graph m {m} out of range"));
        }
        let mut g = Graph::new(m);
        let nodes = usize::try_from(r.u64()?).map_err(|_| "node count overflows")?;
        if nodes >= u32::MAX as usize {
            return Err("too many nodes".into());
        }
        let (entry, entry_level) = (r.u32()?, r.u32()? as usize);
        g.levels = r.take(nodes)?.to_vec();
        g.level0 = r.u32s(nodes.checked_mul(g.stride0).ok_or("graph too large")?)?;
        g.upper_offset = r.u32s(nodes)?;
        let upper_len = usize::try_from(r.u64()?).map_err(|_| "upper length overflows")?;
        g.upper = r.u32s(upper_len)?;
        if r.pos != bytes.len() {
            return Err("trailing bytes after the graph".into());
        }
        g.entry = match entry {
            u32::MAX if nodes == 0 => None,
            e if (e as usize) < nodes && g.level(e) == entry_level => Some((e, entry_level)),
            _ => return Err("bad entry point".into()),
        };
        // Where the previous node's upper blocks end: each node's come after it, as `add_node`
        // lays them out. Overlapping blocks would pass every other check, but an insertion
        // linking one node would then overwrite another's links or link count.
        let mut upper_end = 0;
        for node in 0..nodes {
            let level = g.levels[node] as usize;
            let off = g.upper_offset[node];
            if (level == 0) != (off == NO_UPPER)
                || (level > 0 && (off as usize) < upper_end)
                || (level > 0 && off as usize + level * g.stride_up > g.upper.len())
            {
                return Err(format!("node {node}: bad upper-level block"));
            }
            if level > 0 {
                upper_end = off as usize + level * g.stride_up;
            }
            for l in 0..=level {
                let b = g.block(node as u32, l);
                let n = g.level0_or_upper(l)[b] as usize;
                if n > g.capacity(l) {
                    return Err(format!("node {node} level {l}: too many links"));
                }
                if g.level0_or_upper(l)[b + 1..b + 1 + n]
                    .iter()
                    .any(|&x| x as usize >= nodes || g.level(x) < l)
                {
                    return Err(format!("node {node} level {l}: link to a missing node"));
                }
            }
        }
        Ok(g)
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or("graph truncated")?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn u32s(&mut self, n: usize) -> Result<Vec<u32>, String> {
        let raw = self.take(n.checked_mul(4).ok_or("graph too large")?)?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect())
    }
}

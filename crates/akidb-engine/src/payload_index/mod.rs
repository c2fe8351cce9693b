//! Payload indexes: per-field indexes over documents' metadata, which turn a filter into the
//! set of slots that can match it (as Qdrant's payload indexes do), and the planner that then
//! chooses between scanning those slots and walking the HNSW graph with the filter.
//!
//! Pure and synchronous (no I/O, no locks), like the collection state that will hold it.
//!
//! # Indexes
//!
//! An index is declared on a field path (dots go into nested objects, as in filters) with an
//! [`IndexType`]; a path may carry several indexes of different types. Each reads the values at
//! its path with the filter's semantics (an array contributes each element, a path crosses
//! arrays of objects: see [`field_values`]) and keeps, per value of its own kind, the sorted
//! list of slots holding it:
//! - `keyword`: strings (equality, `$in`, and ranges by bytes, as the filter compares strings);
//! - `integer`: numbers that are integers, i.e. JSON numbers serde_json holds as an `i64`
//!   (`2` is one, `2.0` and integers above `i64::MAX` are not);
//! - `float`: every number;
//! - `bool`: `true` and `false`;
//! - `text`: strings, for full-text search by BM25 ([`TextIndex`], through tantivy). A text
//!   index answers `"text"` searches, never filter clauses.
//!
//! Slots arrive in increasing order ([`PayloadIndexes::insert`]), so lists stay sorted by
//! pushing. Deletes are not applied: a dead slot stays in the lists until the state is rebuilt
//! (compaction), and the caller drops dead candidates with its own liveness check
//! ([`Candidates::retain_live`]): the state drops a dead slot's metadata, so a dead slot would
//! otherwise match `$ne` and friends.
//!
//! # Which clauses an index answers (mixed kinds)
//!
//! An index answers a clause only with the exact set of slots whose values satisfy it; when it
//! cannot know that set, it declines (`None`) and the clause is left to the full filter. Every
//! index records which kinds of scalars it has seen at its path (strings, numbers, booleans),
//! in every slot ever inserted (dead ones too), and whether it skipped a value of its own kind
//! (an integer index skips non-integer numbers). For a clause value (the `$eq` value, each
//! `$in` value, a range bound):
//! 1. **`null`**: declined (a missing field equals `null`, and an index does not list missing
//!    fields). So are `$exists`, `$ne`, `$nin` and `$not` (negations: they match documents
//!    that are not listed).
//! 2. **Its own kind** (a string for `keyword`, a number for `integer`/`float`, a boolean for
//!    `bool`): answered from the index, unless it skipped a value of that kind (an integer
//!    index that saw `2.5` declines every number clause).
//! 3. **Another kind never seen at the path**: the empty set. The filter only matches a value
//!    of the same kind (`{"f": 5}` matches the number 5, never the string `"5"`; a range never
//!    matches a boolean), so when no value of that kind exists nothing can match.
//! 4. **Another kind that was seen**: declined. A keyword index on a field where some documents
//!    hold the number 5 cannot answer `{"f": 5}`.
//!
//! Objects and nested arrays are never equal to a filter value nor ordered with one, so they
//! are ignored, as are `null` elements (rule 1 already declines every clause they affect).
//! `$in` is answered when every listed value is; a field's several operators (`{"$gte": 1,
//! "$lt": 5}`) by the intersection of those answered.
//!
//! Numbers compare as the filter does: two `i64` exactly, anything else as `f64` (so `1 ==
//! 1.0`, and `2^53 + 1` equals `2^53` as a float). Number keys are ordered by their `f64`
//! value, then their `i64`: every key the filter could match lies in the `f64` range of the
//! clause, and the keys sharing the bound's `f64` value are checked one by one with the
//! filter's own comparison, so answers stay exact past 2^53.
//!
//! # Filters
//!
//! [`PayloadIndexes::candidates`] bounds a whole filter: a field clause by the intersection of
//! what the path's indexes answer; `$and` by the intersection of its parts that have a set (the
//! others are left to the full filter); `$or` by the union when every part has one; `$not` never.
//! The result is always a superset of the matching live slots (exact when every clause was
//! answered), so the caller still evaluates the full filter on each candidate.

mod field;
mod planner;
#[cfg(test)]
mod tests;
mod text;

use serde::{Deserialize, Serialize};

use crate::doc::Metadata;
use crate::filter::Filter;
pub(crate) use field::FieldIndex;
// Unused until wired in (as the `dead_code` allowance above).
#[allow(unused_imports)]
pub(crate) use field::field_values;
pub(crate) use planner::{Plan, plan};
pub(crate) use text::TextIndex;

/// Most payload indexes one collection may declare.
pub const MAX_INDEXES: usize = 32;

/// A payload index as declared (kept in the collection's manifest; the index itself is built
/// from the documents whenever a state is built or loaded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayloadIndexDef {
    pub field: String,
    #[serde(rename = "type")]
    pub kind: IndexType,
}

/// The type of a payload index (`"keyword"`, `"integer"`, `"float"`, `"bool"`, `"text"` in
/// JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IndexType {
    Keyword,
    Integer,
    Float,
    Bool,
    Text,
}

impl IndexType {
    pub fn as_str(self) -> &'static str {
        match self {
            IndexType::Keyword => "keyword",
            IndexType::Integer => "integer",
            IndexType::Float => "float",
            IndexType::Bool => "bool",
            IndexType::Text => "text",
        }
    }
}

/// Slots that can match a filter: sorted, distinct, possibly dead (see
/// [`Candidates::retain_live`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Candidates {
    slots: Vec<u32>,
}

impl Candidates {
    /// From sorted, distinct slots.
    fn from_sorted(slots: Vec<u32>) -> Candidates {
        debug_assert!(slots.windows(2).all(|w| w[0] < w[1]));
        Candidates { slots }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn as_slice(&self) -> &[u32] {
        &self.slots
    }

    #[cfg(test)]
    pub fn contains(&self, slot: u32) -> bool {
        self.slots.binary_search(&slot).is_ok()
    }

    /// Keeps the slots `live` accepts (the caller's tombstone check).
    pub fn retain_live(&mut self, mut live: impl FnMut(u32) -> bool) {
        self.slots.retain(|&s| live(s));
    }

    pub fn into_vec(self) -> Vec<u32> {
        self.slots
    }
}

/// The payload indexes of a collection.
#[derive(Debug, Default)]
pub(crate) struct PayloadIndexes {
    fields: Vec<FieldIndex>,
    texts: Vec<TextIndex>,
}

/// True for a path a filter can name: names joined by dots, none empty.
pub(crate) fn valid_path(path: &str) -> bool {
    path.split('.').all(|p| !p.is_empty())
}

impl PayloadIndexes {
    pub fn new() -> PayloadIndexes {
        PayloadIndexes::default()
    }

    /// Adds an index of type `ty` on `path` (a dotted path, see [`valid_path`]), filled from
    /// `existing` (every slot so far, in increasing order, dead ones included or not). False
    /// (and nothing done) when that index already exists.
    pub fn create<'a>(
        &mut self,
        path: &str,
        ty: IndexType,
        existing: impl IntoIterator<Item = (u32, Option<&'a Metadata>)>,
    ) -> bool {
        debug_assert!(valid_path(path), "invalid index path {path:?}");
        if ty == IndexType::Text {
            if self.text(path).is_some() {
                return false;
            }
            // Filled lazily, at the first text search (see `TextIndex`).
            match TextIndex::new(path) {
                Ok(index) => self.texts.push(index),
                // Only if threads cannot be started; a text search on the field then says
                // there is no index, and the next load tries again.
                Err(e) => tracing::error!(field = path, error = %e, "could not build a text index"),
            }
            return true;
        }
        if self.get(path, ty).is_some() {
            return false;
        }
        let mut index = FieldIndex::new(path, ty);
        for (slot, metadata) in existing {
            index.insert(slot, metadata);
        }
        self.fields.push(index);
        true
    }

    /// Drops the index of type `ty` on `path`; false when there is none.
    #[cfg(test)]
    pub fn remove(&mut self, path: &str, ty: IndexType) -> bool {
        let before = self.fields.len();
        self.fields
            .retain(|f| !(f.path_str() == path && f.index_type() == ty));
        self.fields.len() != before
    }

    /// The text index on `path`.
    pub fn text(&self, path: &str) -> Option<&TextIndex> {
        self.texts.iter().find(|t| t.path_str() == path)
    }

    pub fn get(&self, path: &str, ty: IndexType) -> Option<&FieldIndex> {
        self.fields
            .iter()
            .find(|f| f.path_str() == path && f.index_type() == ty)
    }

    /// Every index, in creation order.
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = &FieldIndex> {
        self.fields.iter()
    }

    /// True without filter indexes (text indexes read the state's metadata when searched).
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Records the metadata of a new slot (slots arrive in increasing order).
    pub fn insert(&mut self, slot: u32, metadata: Option<&Metadata>) {
        for f in &mut self.fields {
            f.insert(slot, metadata);
        }
    }

    /// A slot died: text indexes forget it (the others keep dead slots, see the module docs).
    pub fn kill(&self, slot: u32) {
        for t in &self.texts {
            t.kill(slot);
        }
    }

    /// Heap and inline bytes of every index (an estimate, as for the rest of the state).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<PayloadIndexes>()
            + self.fields.capacity() * std::mem::size_of::<FieldIndex>()
            + self
                .fields
                .iter()
                .map(|f| f.memory_bytes() - std::mem::size_of::<FieldIndex>())
                .sum::<usize>()
            + self
                .texts
                .iter()
                .map(TextIndex::memory_bytes)
                .sum::<usize>()
    }

    /// A superset of the slots matching `filter` (exact when the indexes answered every
    /// clause; dead slots included), or None when the indexes cannot bound it (see the module
    /// docs).
    pub fn candidates(&self, filter: &Filter) -> Option<Candidates> {
        if self.fields.is_empty() {
            return None;
        }
        self.bound(filter).map(Candidates::from_sorted)
    }

    fn bound(&self, filter: &Filter) -> Option<Vec<u32>> {
        match filter {
            Filter::And(parts) => intersect_all(parts.iter().filter_map(|p| self.bound(p))),
            Filter::Or(parts) => {
                let sets = parts
                    .iter()
                    .map(|p| self.bound(p))
                    .collect::<Option<Vec<_>>>()?;
                Some(union_all(sets))
            }
            Filter::Not(_) => None,
            Filter::Field { path, cond } => intersect_all(
                self.fields
                    .iter()
                    .filter(|f| f.path() == path.as_slice())
                    .filter_map(|f| f.answer(cond)),
            ),
        }
    }
}

/// The intersection of sorted, distinct lists; None when there are none.
pub(super) fn intersect_all(sets: impl Iterator<Item = Vec<u32>>) -> Option<Vec<u32>> {
    let mut sets: Vec<Vec<u32>> = sets.collect();
    sets.sort_by_key(Vec::len);
    let mut sets = sets.into_iter();
    let mut acc = sets.next()?;
    for s in sets {
        if acc.is_empty() {
            break;
        }
        acc = intersect(&acc, &s);
    }
    Some(acc)
}

/// Intersection of two sorted, distinct lists (`a` the shorter): binary searches when `b` is
/// much longer, a merge otherwise.
fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    if a.len() * 16 < b.len() {
        return a
            .iter()
            .copied()
            .filter(|x| b.binary_search(x).is_ok())
            .collect();
    }
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// The union of sorted lists, sorted and distinct.
pub(super) fn union_all(sets: Vec<Vec<u32>>) -> Vec<u32> {
    let mut sets = sets.into_iter().filter(|s| !s.is_empty());
    let Some(first) = sets.next() else {
        return Vec::new();
    };
    let mut out = first;
    let mut merged = false;
    for s in sets {
        out.extend_from_slice(&s);
        merged = true;
    }
    if merged {
        out.sort_unstable();
        out.dedup();
    }
    out
}

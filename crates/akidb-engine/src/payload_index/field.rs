//! One payload index: the slots holding each value of one kind at one field path (see the
//! parent module for the rules on which clauses it answers).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Bound;

use serde_json::{Number, Value};

use super::{IndexType, intersect_all, union_all};
use crate::doc::{Metadata, heap_block};
use crate::filter::{CmpOp, Cond};

/// The values at `path` in `m`, with the filter's semantics (the one implementation: the
/// filter's own path lookup).
pub(crate) use crate::filter::resolve as field_values;

/// Kinds of scalars seen at a path (bit set).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Kinds(u8);

impl Kinds {
    const STRING: u8 = 1;
    const NUMBER: u8 = 2;
    const BOOL: u8 = 4;

    fn has(self, kind: u8) -> bool {
        self.0 & kind != 0
    }
}

/// The kind bit of a scalar; None for `null`, arrays and objects (which no clause value
/// equals or orders with, but `null`, which rule 1 declines).
fn kind_of(v: &Value) -> Option<u8> {
    match v {
        Value::String(_) => Some(Kinds::STRING),
        Value::Number(_) => Some(Kinds::NUMBER),
        Value::Bool(_) => Some(Kinds::BOOL),
        _ => None,
    }
}

/// A number as the filter compares it: its `i64` when serde_json holds one, and its `f64`
/// (`-0.0` made `0.0`, so that the order below has one zero). Ordered by `f64`, then `i64`
/// (`None` first): two numbers the filter finds equal, or one smaller than the other, never
/// have their `f64`s in the opposite order (`as f64` is monotone), so the keys a clause can
/// match are a range of this order.
#[derive(Debug, Clone, Copy)]
struct NumKey {
    f: f64,
    int: Option<i64>,
}

impl NumKey {
    fn of(n: &Number) -> Option<NumKey> {
        // serde_json numbers are finite: as_f64 is always Some, never NaN.
        let f = n.as_f64().filter(|f| f.is_finite())?;
        Some(NumKey {
            f: f + 0.0,
            int: n.as_i64(),
        })
    }

    /// The filter's equality (`json_eq`): two `i64` exactly, otherwise as `f64`.
    fn same(self, other: NumKey) -> bool {
        match (self.int, other.int) {
            (Some(a), Some(b)) => a == b,
            _ => self.f == other.f,
        }
    }

    /// The filter's order (`compare`): two `i64` exactly, otherwise as `f64`.
    fn order(self, other: NumKey) -> Ordering {
        match (self.int, other.int) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => self.f.total_cmp(&other.f),
        }
    }

    /// The smallest and largest keys with this `f64` value.
    fn band(f: f64) -> (NumKey, NumKey) {
        (
            NumKey { f, int: None },
            NumKey {
                f,
                int: Some(i64::MAX),
            },
        )
    }
}

impl Ord for NumKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.f
            .total_cmp(&other.f)
            .then_with(|| self.int.cmp(&other.int))
    }
}

impl PartialOrd for NumKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for NumKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for NumKey {}

fn admits(op: CmpOp, o: Ordering) -> bool {
    match op {
        CmpOp::Gt => o == Ordering::Greater,
        CmpOp::Gte => o != Ordering::Less,
        CmpOp::Lt => o == Ordering::Less,
        CmpOp::Lte => o != Ordering::Greater,
    }
}

/// The slot lists, by value.
#[derive(Debug)]
enum Lists {
    Keyword(BTreeMap<Box<str>, Vec<u32>>),
    /// Integer and float indexes (an integer index only holds keys with an `i64`).
    Number(BTreeMap<NumKey, Vec<u32>>),
    Bool {
        no: Vec<u32>,
        yes: Vec<u32>,
    },
}

/// An index of one type on one field path.
#[derive(Debug)]
pub(crate) struct FieldIndex {
    path: Vec<String>,
    path_str: String,
    ty: IndexType,
    lists: Lists,
    /// Kinds of scalars seen at the path in any slot inserted.
    seen: Kinds,
    /// A value of the index's own kind was seen that it could not hold (an integer index and a
    /// number that is not an `i64`): it then declines clauses of that kind.
    skipped: bool,
}

/// Adds `slot` to a sorted list (slots arrive in increasing order; a repeat, from a value
/// listed twice in one document, is dropped; an out-of-order slot is placed, not appended).
fn push_slot(list: &mut Vec<u32>, slot: u32) {
    match list.last() {
        Some(&last) if last == slot => {}
        Some(&last) if last > slot => {
            if let Err(i) = list.binary_search(&slot) {
                list.insert(i, slot);
            }
        }
        _ => list.push(slot),
    }
}

impl FieldIndex {
    /// An empty index of type `ty` on the dotted `path`.
    pub fn new(path: &str, ty: IndexType) -> FieldIndex {
        FieldIndex {
            path: path.split('.').map(str::to_string).collect(),
            path_str: path.to_string(),
            ty,
            lists: match ty {
                // A `text` index is a `TextIndex`, never a `FieldIndex`.
                IndexType::Keyword | IndexType::Text => Lists::Keyword(BTreeMap::new()),
                IndexType::Integer | IndexType::Float => Lists::Number(BTreeMap::new()),
                IndexType::Bool => Lists::Bool {
                    no: Vec::new(),
                    yes: Vec::new(),
                },
            },
            seen: Kinds::default(),
            skipped: false,
        }
    }

    pub fn path(&self) -> &[String] {
        &self.path
    }

    pub fn path_str(&self) -> &str {
        &self.path_str
    }

    pub fn index_type(&self) -> IndexType {
        self.ty
    }

    /// Distinct values held.
    #[cfg(test)]
    pub fn distinct_values(&self) -> usize {
        match &self.lists {
            Lists::Keyword(m) => m.len(),
            Lists::Number(m) => m.len(),
            Lists::Bool { no, yes } => usize::from(!no.is_empty()) + usize::from(!yes.is_empty()),
        }
    }

    /// The kind of values this index holds.
    fn own_kind(&self) -> u8 {
        match self.ty {
            IndexType::Keyword | IndexType::Text => Kinds::STRING,
            IndexType::Integer | IndexType::Float => Kinds::NUMBER,
            IndexType::Bool => Kinds::BOOL,
        }
    }

    /// Records the values of `slot` (slots arrive in increasing order).
    pub fn insert(&mut self, slot: u32, metadata: Option<&Metadata>) {
        let Some(m) = metadata else {
            return;
        };
        let mut found = Vec::new();
        field_values(m, &self.path, &mut found);
        for v in found {
            match v {
                Value::Array(items) => items.iter().for_each(|e| self.insert_value(slot, e)),
                v => self.insert_value(slot, v),
            }
        }
    }

    fn insert_value(&mut self, slot: u32, v: &Value) {
        let Some(kind) = kind_of(v) else {
            return;
        };
        self.seen.0 |= kind;
        match (&mut self.lists, v) {
            (Lists::Keyword(map), Value::String(s)) => match map.get_mut(s.as_str()) {
                Some(list) => push_slot(list, slot),
                None => {
                    map.insert(s.as_str().into(), vec![slot]);
                }
            },
            (Lists::Number(map), Value::Number(n)) => {
                let key = NumKey::of(n).filter(|k| self.ty == IndexType::Float || k.int.is_some());
                match key {
                    Some(key) => push_slot(map.entry(key).or_default(), slot),
                    None => self.skipped = true,
                }
            }
            (Lists::Bool { no, yes }, Value::Bool(b)) => push_slot(if *b { yes } else { no }, slot),
            _ => {}
        }
    }

    /// The exact sorted slots (dead ones included) whose values satisfy `cond`, or None when
    /// this index cannot know them (see the module docs).
    pub fn answer(&self, cond: &Cond) -> Option<Vec<u32>> {
        match cond {
            Cond::Eq(v) => self.equal(v),
            Cond::In(vs) => {
                let sets = vs
                    .iter()
                    .map(|v| self.equal(v))
                    .collect::<Option<Vec<_>>>()?;
                Some(union_all(sets))
            }
            Cond::Cmp(op, bound) => self.range(*op, bound),
            Cond::All(conds) => intersect_all(conds.iter().filter_map(|c| self.answer(c))),
            Cond::Exists | Cond::Not(_) => None,
        }
    }

    /// Rules 1, 3 and 4 of the module docs for a clause value of `kind`: Some(answer) when the
    /// index does not hold that kind, None when it does and must look.
    fn foreign(&self, kind: Option<u8>) -> Option<Option<Vec<u32>>> {
        let Some(kind) = kind else {
            // null (or a value no parsed filter holds): declined.
            return Some(None);
        };
        if kind == self.own_kind() {
            return if self.skipped { Some(None) } else { None };
        }
        Some(match self.seen.has(kind) {
            true => None,
            false => Some(Vec::new()),
        })
    }

    fn equal(&self, v: &Value) -> Option<Vec<u32>> {
        if let Some(answer) = self.foreign(kind_of(v)) {
            return answer;
        }
        match (&self.lists, v) {
            (Lists::Keyword(map), Value::String(s)) => {
                Some(map.get(s.as_str()).cloned().unwrap_or_default())
            }
            (Lists::Number(map), Value::Number(n)) => {
                let want = NumKey::of(n)?;
                let (lo, hi) = NumKey::band(want.f);
                Some(union_all(
                    map.range(lo..=hi)
                        .filter(|(k, _)| k.same(want))
                        .map(|(_, list)| list.clone())
                        .collect(),
                ))
            }
            (Lists::Bool { no, yes }, Value::Bool(b)) => Some(if *b { yes } else { no }.clone()),
            _ => None,
        }
    }

    fn range(&self, op: CmpOp, bound: &Value) -> Option<Vec<u32>> {
        let kind = match bound {
            Value::String(_) | Value::Number(_) => kind_of(bound),
            // The filter orders only numbers and strings: nothing else is ever in range.
            _ => return Some(Vec::new()),
        };
        if let Some(answer) = self.foreign(kind) {
            return answer;
        }
        let upward = matches!(op, CmpOp::Gt | CmpOp::Gte);
        match (&self.lists, bound) {
            (Lists::Keyword(map), Value::String(s)) => {
                // str orders by bytes, as the filter compares strings.
                let s = s.as_str();
                let range: (Bound<&str>, Bound<&str>) = match op {
                    CmpOp::Gt => (Bound::Excluded(s), Bound::Unbounded),
                    CmpOp::Gte => (Bound::Included(s), Bound::Unbounded),
                    CmpOp::Lt => (Bound::Unbounded, Bound::Excluded(s)),
                    CmpOp::Lte => (Bound::Unbounded, Bound::Included(s)),
                };
                Some(union_all(
                    map.range::<str, _>(range).map(|(_, l)| l.clone()).collect(),
                ))
            }
            (Lists::Number(map), Value::Number(n)) => {
                let b = NumKey::of(n)?;
                // Every match has an f64 on the bound's side of it or equal to it (those equal
                // are decided by the exact order, key by key).
                let (lo, hi) = NumKey::band(b.f);
                let keys: Box<dyn Iterator<Item = (&NumKey, &Vec<u32>)>> = match upward {
                    true => Box::new(map.range(lo..)),
                    false => Box::new(map.range(..=hi)),
                };
                Some(union_all(
                    keys.filter(|(k, _)| admits(op, k.order(b)))
                        .map(|(_, l)| l.clone())
                        .collect(),
                ))
            }
            _ => None,
        }
    }

    /// Heap and inline bytes (an estimate: B-tree nodes about 2/3 full, list capacities, key
    /// strings, each allocation rounded as the allocator does).
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        fn btree<K, V>(n: usize) -> usize {
            const CAPACITY: usize = 11;
            let leaf = heap_block(16 + CAPACITY * (size_of::<K>() + size_of::<V>()));
            let internal = leaf + (CAPACITY + 1) * size_of::<usize>();
            match n {
                0 => 0,
                n if n <= CAPACITY => leaf,
                n => {
                    let leaves = (n * 3).div_ceil(CAPACITY * 2);
                    leaves * leaf + leaves.div_ceil(CAPACITY * 2 / 3) * internal
                }
            }
        }
        fn list(l: &Vec<u32>) -> usize {
            heap_block(l.capacity() * size_of::<u32>())
        }
        let lists = match &self.lists {
            Lists::Keyword(m) => {
                btree::<Box<str>, Vec<u32>>(m.len())
                    + m.iter()
                        .map(|(k, l)| heap_block(k.len()) + list(l))
                        .sum::<usize>()
            }
            Lists::Number(m) => {
                btree::<NumKey, Vec<u32>>(m.len()) + m.values().map(list).sum::<usize>()
            }
            Lists::Bool { no, yes } => list(no) + list(yes),
        };
        size_of::<FieldIndex>()
            + heap_block(self.path_str.len())
            + heap_block(self.path.capacity() * size_of::<String>())
            + self.path.iter().map(|p| heap_block(p.len())).sum::<usize>()
            + lists
    }
}

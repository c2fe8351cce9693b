//! Metadata filters: a MongoDB-style language over a document's JSON metadata, shared by search,
//! scroll, count and delete-by-filter.
//!
//! ```json
//! {"lang": "en",
//!  "year": {"$gte": 2020, "$lt": 2025},
//!  "author.name": {"$in": ["Ada", "Grace"]},
//!  "$or": [{"draft": {"$exists": false}}, {"draft": false}],
//!  "$not": {"tags": "spam"}}
//! ```
//!
//! - A filter is an object; its keys are ANDed. A key is a field path (dots go into nested
//!   objects: `author.name`) or one of `$and` / `$or` (an array of filters) and `$not` (a
//!   filter).
//! - A field's condition is a value (`"en"`, shorthand for `{"$eq": "en"}`) or an object of
//!   operators, ANDed: `$eq`, `$ne`, `$gt`, `$gte`, `$lt`, `$lte`, `$in`, `$nin`, `$exists`, and
//!   `$not` (an operator object, negated).
//! - Values are strings, numbers, booleans or `null`; `$in` and `$nin` take arrays of them.
//!   Numbers compare by value (`1` equals `1.0`). `$gt`/`$gte`/`$lt`/`$lte` take a number or a
//!   string and compare only with values of the same kind (numbers by value, strings by their
//!   bytes): `{"$gt": 1}` never matches a string.
//!
//! Semantics are MongoDB's:
//! - **Arrays**: a condition holds for an array field when it holds for one of its elements
//!   (`{"tags": "a"}` matches `{"tags": ["a", "b"]}`); a path through an array of objects
//!   reaches the field in each of them (`a.b` in `{"a": [{"b": 1}, {"b": 2}]}` is 1 and 2).
//! - **Missing fields**: a missing field matches `$ne`, `$nin`, `$exists: false` and equality
//!   with `null`, and nothing else (`$eq`, `$in` without `null`, ranges and `$exists: true` do not
//!   match). `$ne` and `$nin` are exactly the negation of `$eq` and `$in`.
//! - `$not` negates its condition, so `{"n": {"$not": {"$gt": 5}}}` matches a document without
//!   `n`.
//!
//! Sizes are bounded (a filter is evaluated on every candidate): at most
//! [`MAX_FILTER_CLAUSES`] conditions, [`MAX_FILTER_VALUES`] listed values and
//! [`MAX_FILTER_DEPTH`] levels of nesting. A bad filter is refused with the path of the
//! offending clause (`filter.$or[1].year.$gt`).

mod parse;

use std::cmp::Ordering;

use serde_json::Value;

use crate::doc::Metadata;

/// Largest number of values a filter may list, over all its clauses.
pub const MAX_FILTER_VALUES: usize = 1024;
/// Largest number of conditions (operators on fields) in a filter, over all its levels.
pub const MAX_FILTER_CLAUSES: usize = 64;
/// Deepest nesting of `$and`, `$or` and `$not`.
pub const MAX_FILTER_DEPTH: usize = 16;

/// A parsed filter. Build one with [`Filter::parse`].
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Every part matches (an empty `And` matches everything).
    And(Vec<Filter>),
    /// At least one part matches.
    Or(Vec<Filter>),
    Not(Box<Filter>),
    /// A condition on the values found at a field path.
    Field {
        path: Vec<String>,
        cond: Cond,
    },
}

/// A condition on one field.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// Some value (or array element) equals it; `null` also matches a missing field.
    Eq(Value),
    /// Some value equals one of them.
    In(Vec<Value>),
    /// Some value (or element) compares as asked with it (same kind only).
    Cmp(CmpOp, Value),
    /// The field is present (with any value, `null` included).
    Exists,
    /// The condition does not hold (`$ne`, `$nin`, `$exists: false`, `$not`).
    Not(Box<Cond>),
    /// Every condition holds (several operators on one field).
    All(Vec<Cond>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl CmpOp {
    fn admits(self, o: Ordering) -> bool {
        match self {
            CmpOp::Gt => o == Ordering::Greater,
            CmpOp::Gte => o != Ordering::Less,
            CmpOp::Lt => o == Ordering::Less,
            CmpOp::Lte => o != Ordering::Greater,
        }
    }
}

impl Filter {
    /// Parses and validates a filter; the error names the offending clause.
    pub fn parse(value: &Value) -> Result<Filter, akidb_core::types::ValidationError> {
        parse::parse(value)
    }

    /// True when a document with this metadata (None: no metadata) matches.
    pub fn matches(&self, metadata: Option<&Metadata>) -> bool {
        match self {
            Filter::And(parts) => parts.iter().all(|p| p.matches(metadata)),
            Filter::Or(parts) => parts.iter().any(|p| p.matches(metadata)),
            Filter::Not(inner) => !inner.matches(metadata),
            Filter::Field { path, cond } => {
                let Some(m) = metadata else {
                    return cond.holds(&[]);
                };
                // Most paths reach one value through objects only: no allocation for them.
                match through_objects(m, path) {
                    Some(Some(v)) => cond.holds(&[v]),
                    Some(None) => cond.holds(&[]),
                    None => {
                        let mut found = Vec::new();
                        resolve(m, path, &mut found);
                        cond.holds(&found)
                    }
                }
            }
        }
    }
}

impl Cond {
    /// Whether the condition holds for the values found at the field's path (empty: missing).
    fn holds(&self, found: &[&Value]) -> bool {
        match self {
            Cond::Eq(want) => {
                (want.is_null() && found.is_empty()) || any_element(found, |v| json_eq(want, v))
            }
            Cond::In(wants) => {
                (found.is_empty() && wants.iter().any(Value::is_null))
                    || any_element(found, |v| wants.iter().any(|w| json_eq(w, v)))
            }
            Cond::Cmp(op, bound) => {
                any_element(found, |v| compare(v, bound).is_some_and(|o| op.admits(o)))
            }
            Cond::Exists => !found.is_empty(),
            Cond::Not(inner) => !inner.holds(found),
            Cond::All(conds) => conds.iter().all(|c| c.holds(found)),
        }
    }
}

/// True when `f` holds for a found value or, for an array, for one of its elements.
fn any_element(found: &[&Value], f: impl Fn(&Value) -> bool) -> bool {
    found.iter().any(|v| match v {
        Value::Array(items) => items.iter().any(&f),
        v => f(v),
    })
}

/// The value at `path` when reaching it crosses no array before its last name: `Some(None)`
/// when missing, None when an array is in the way (then [`resolve`] collects every value).
fn through_objects<'a>(m: &'a Metadata, path: &[String]) -> Option<Option<&'a Value>> {
    let mut v = match m.get(&path[0]) {
        Some(v) => v,
        None => return Some(None),
    };
    for name in &path[1..] {
        v = match v {
            Value::Object(o) => match o.get(name) {
                Some(next) => next,
                None => return Some(None),
            },
            Value::Array(_) => return None,
            _ => return Some(None),
        };
    }
    Some(Some(v))
}

/// The values at `path` in `m`: one for a plain path, several when it crosses arrays of
/// objects, none when missing.
pub(crate) fn resolve<'a>(m: &'a Metadata, path: &[String], out: &mut Vec<&'a Value>) {
    let Some(v) = m.get(&path[0]) else {
        return;
    };
    descend(v, &path[1..], out);
}

fn descend<'a>(v: &'a Value, rest: &[String], out: &mut Vec<&'a Value>) {
    if rest.is_empty() {
        out.push(v);
        return;
    }
    match v {
        Value::Object(m) => resolve(m, rest, out),
        Value::Array(items) => {
            for item in items {
                if let Value::Object(m) = item {
                    resolve(m, rest, out);
                }
            }
        }
        _ => {}
    }
}

/// Equality of scalars; numbers by value.
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        _ => a == b,
    }
}

/// Order of two values of the same kind (numbers, or strings); None for any other pair.
fn compare(v: &Value, bound: &Value) -> Option<Ordering> {
    match (v, bound) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => Some(x.cmp(&y)),
            _ => x.as_f64()?.partial_cmp(&y.as_f64()?),
        },
        (Value::String(x), Value::String(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        _ => None,
    }
}

#[cfg(test)]
mod tests;

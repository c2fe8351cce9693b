//! Filter tests' oracle and data: seeded random metadata, seeded random filters in AkiDB's
//! filter language, and [`filter_oracle`], a brute-force evaluator written straight from the
//! language's documented (MongoDB) semantics, independent of the engine's parser and matcher.

use serde_json::{Map, Value, json};

/// A small seeded generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
}

const KEYS: [&str; 5] = ["n", "s", "b", "tags", "o"];
const WORDS: [&str; 4] = ["a", "b", "c", "d"];

/// A scalar of a random kind from a small domain (so that filters often hit).
fn scalar(rng: &mut Rng) -> Value {
    match rng.below(10) {
        0..=3 => json!(rng.below(6) as i64 - 1),
        4 => json!(rng.below(6) as f64 - 0.5),
        5..=7 => json!(rng.pick(&WORDS)),
        8 => json!(rng.below(2) == 0),
        _ => Value::Null,
    }
}

/// Random metadata over a few keys: scalars, arrays of scalars, a nested object (`o.x`, `o.y`)
/// or an array of such objects; each key may be missing. None for about one document in 12.
pub fn random_metadata(rng: &mut Rng) -> Option<Map<String, Value>> {
    if rng.below(12) == 0 {
        return None;
    }
    let mut m = Map::new();
    for key in KEYS {
        if rng.below(4) == 0 {
            continue;
        }
        let v = match key {
            "tags" => Value::Array((0..rng.below(4)).map(|_| scalar(rng)).collect()),
            "o" => {
                fn obj(rng: &mut Rng) -> Value {
                    let mut o = Map::new();
                    for k in ["x", "y"] {
                        if rng.below(3) != 0 {
                            o.insert(k.to_string(), scalar(rng));
                        }
                    }
                    Value::Object(o)
                }
                match rng.below(3) {
                    0 => Value::Array(vec![obj(rng), obj(rng)]),
                    1 => scalar(rng),
                    _ => obj(rng),
                }
            }
            _ => scalar(rng),
        };
        m.insert(key.to_string(), v);
    }
    Some(m)
}

/// A random valid filter, nesting up to `depth` levels of `$and`/`$or`/`$not`.
pub fn random_filter(rng: &mut Rng, depth: usize) -> Value {
    let mut m = Map::new();
    for _ in 0..1 + rng.below(2) {
        if depth > 0 && rng.below(4) == 0 {
            match rng.below(3) {
                0 | 1 => {
                    let op = if rng.below(2) == 0 { "$and" } else { "$or" };
                    let parts = (0..1 + rng.below(3))
                        .map(|_| random_filter(rng, depth - 1))
                        .collect();
                    m.insert(op.to_string(), Value::Array(parts));
                }
                _ => {
                    m.insert("$not".to_string(), random_filter(rng, depth - 1));
                }
            }
        } else {
            let path = rng.pick(&["n", "s", "b", "tags", "o", "o.x", "o.y", "zz", "n.x"]);
            m.insert(path.to_string(), random_condition(rng, depth));
        }
    }
    Value::Object(m)
}

fn random_condition(rng: &mut Rng, depth: usize) -> Value {
    if rng.below(4) == 0 {
        return scalar(rng);
    }
    let mut ops = Map::new();
    for _ in 0..1 + rng.below(2) {
        let (op, arg) = match rng.below(10) {
            0 => ("$eq", scalar(rng)),
            1 => ("$ne", scalar(rng)),
            2 => (
                "$in",
                Value::Array((0..rng.below(4)).map(|_| scalar(rng)).collect()),
            ),
            3 => (
                "$nin",
                Value::Array((0..rng.below(4)).map(|_| scalar(rng)).collect()),
            ),
            4 => ("$gt", bound(rng)),
            5 => ("$gte", bound(rng)),
            6 => ("$lt", bound(rng)),
            7 => ("$lte", bound(rng)),
            8 => ("$exists", json!(rng.below(2) == 0)),
            _ if depth > 0 => {
                let Value::Object(inner) = random_condition_ops(rng) else {
                    unreachable!()
                };
                ("$not", Value::Object(inner))
            }
            _ => ("$eq", scalar(rng)),
        };
        ops.insert(op.to_string(), arg);
    }
    Value::Object(ops)
}

fn random_condition_ops(rng: &mut Rng) -> Value {
    let v = random_condition(rng, 0);
    match v {
        Value::Object(_) => v,
        scalar => json!({ "$eq": scalar }),
    }
}

fn bound(rng: &mut Rng) -> Value {
    match rng.below(3) {
        0 => json!(rng.pick(&WORDS)),
        1 => json!(rng.below(6) as f64 - 1.5),
        _ => json!(rng.below(6) as i64 - 1),
    }
}

/// Whether `metadata` matches `filter`, by brute force from the documented semantics.
/// Panics on a filter outside the language (the oracle trusts its caller).
pub fn filter_oracle(filter: &Value, metadata: Option<&Map<String, Value>>) -> bool {
    let empty = Map::new();
    let m = metadata.unwrap_or(&empty);
    filter
        .as_object()
        .unwrap()
        .iter()
        .all(|(k, v)| match k.as_str() {
            "$and" => v
                .as_array()
                .unwrap()
                .iter()
                .all(|f| filter_oracle(f, metadata)),
            "$or" => v
                .as_array()
                .unwrap()
                .iter()
                .any(|f| filter_oracle(f, metadata)),
            "$not" => !filter_oracle(v, metadata),
            path => {
                let values = lookup(m, path);
                match v {
                    Value::Object(ops) => ops.iter().all(|(op, arg)| operator(op, arg, &values)),
                    scalar => eq(&values, scalar),
                }
            }
        })
}

/// Values at a dotted path, descending into arrays of objects.
fn lookup(m: &Map<String, Value>, path: &str) -> Vec<Value> {
    let mut current: Vec<Value> = vec![Value::Object(m.clone())];
    for part in path.split('.') {
        let mut next = Vec::new();
        for v in current {
            match v {
                Value::Object(o) => next.extend(o.get(part).cloned()),
                Value::Array(items) => {
                    for item in items {
                        if let Value::Object(o) = item {
                            next.extend(o.get(part).cloned());
                        }
                    }
                }
                _ => {}
            }
        }
        current = next;
    }
    current
}

/// Every candidate a condition is tried on: each value, and each element of an array value.
fn candidates(values: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for v in values {
        match v {
            Value::Array(items) => out.extend(items.iter().cloned()),
            v => out.push(v.clone()),
        }
    }
    out
}

/// Numbers by value: two integers exactly, otherwise as f64.
fn same(a: &Value, b: &Value) -> bool {
    match (a.as_i64(), b.as_i64(), a.as_f64(), b.as_f64()) {
        (Some(x), Some(y), _, _) => x == y,
        (_, _, Some(x), Some(y)) if a.is_number() && b.is_number() => x == y,
        _ => a == b,
    }
}

fn eq(values: &[Value], want: &Value) -> bool {
    (values.is_empty() && want.is_null()) || candidates(values).iter().any(|c| same(c, want))
}

fn operator(op: &str, arg: &Value, values: &[Value]) -> bool {
    let cmp = |c: &Value| -> Option<std::cmp::Ordering> {
        match (c, arg) {
            (Value::Number(_), Value::Number(_)) => match (c.as_i64(), arg.as_i64()) {
                (Some(x), Some(y)) => Some(x.cmp(&y)),
                _ => c.as_f64()?.partial_cmp(&arg.as_f64()?),
            },
            (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
            _ => None,
        }
    };
    let any = |f: &dyn Fn(std::cmp::Ordering) -> bool| {
        candidates(values).iter().any(|c| cmp(c).is_some_and(f))
    };
    match op {
        "$eq" => eq(values, arg),
        "$ne" => !eq(values, arg),
        "$in" => arg.as_array().unwrap().iter().any(|w| eq(values, w)),
        "$nin" => !arg.as_array().unwrap().iter().any(|w| eq(values, w)),
        "$gt" => any(&|o| o.is_gt()),
        "$gte" => any(&|o| o.is_ge()),
        "$lt" => any(&|o| o.is_lt()),
        "$lte" => any(&|o| o.is_le()),
        "$exists" => values.is_empty() != arg.as_bool().unwrap(),
        "$not" => !arg
            .as_object()
            .unwrap()
            .iter()
            .all(|(o, a)| operator(o, a, values)),
        other => panic!("not in the language: {other}"),
    }
}

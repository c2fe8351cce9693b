use serde_json::{Map, Value, json};

use super::*;
use crate::filter::Cond;
use akidb_testkit::filters::{Rng, filter_oracle, random_filter, random_metadata};

use IndexType::{Bool, Float, Integer, Keyword, Text};

fn metadata(doc: &Value) -> Option<Metadata> {
    doc.as_object().cloned()
}

fn build(docs: &[Option<Metadata>], specs: &[(&str, IndexType)]) -> PayloadIndexes {
    let mut idx = PayloadIndexes::new();
    for &(path, ty) in specs {
        assert!(idx.create(path, ty, std::iter::empty()));
    }
    for (slot, m) in docs.iter().enumerate() {
        idx.insert(slot as u32, m.as_ref());
    }
    idx
}

/// The live slots matching `filter`, by the engine's filter (what the caller re-checks
/// candidates with).
fn truth(filter: &Value, docs: &[Option<Metadata>], live: &[bool]) -> Vec<u32> {
    let f = Filter::parse(filter).unwrap();
    (0..docs.len())
        .filter(|&i| live[i] && f.matches(docs[i].as_ref()))
        .map(|i| i as u32)
        .collect()
}

/// `truth`, checked against the testkit's oracle. (The oracle compares every pair of numbers
/// as f64, the engine two i64 exactly: they differ past 2^53, so only small numbers here.)
fn oracle_truth(filter: &Value, docs: &[Option<Metadata>], live: &[bool]) -> Vec<u32> {
    let f = Filter::parse(filter).unwrap();
    for m in docs {
        let m = m.as_ref();
        assert_eq!(f.matches(m), filter_oracle(filter, m), "{filter} on {m:?}");
    }
    truth(filter, docs, live)
}

fn candidates(idx: &PayloadIndexes, filter: &Value, live: &[bool]) -> Option<Vec<u32>> {
    let mut c = idx.candidates(&Filter::parse(filter).unwrap())?;
    c.retain_live(|s| live[s as usize]);
    Some(c.into_vec())
}

/// The answer of one index of type `ty` on `path` over `docs`, checked to be a superset of
/// the matches.
fn answer(docs: &[Value], path: &str, ty: IndexType, filter: Value) -> Option<Vec<u32>> {
    let docs: Vec<_> = docs.iter().map(metadata).collect();
    let live = vec![true; docs.len()];
    let idx = build(&docs, &[(path, ty)]);
    let got = candidates(&idx, &filter, &live);
    if let Some(got) = &got {
        let want = truth(&filter, &docs, &live);
        assert!(
            is_superset(got, &want),
            "{filter}: {got:?} misses some of {want:?}"
        );
    }
    got
}

/// `answer`, and that it is exact.
fn exact(docs: &[Value], path: &str, ty: IndexType, filter: Value) -> Vec<u32> {
    let got = answer(docs, path, ty, filter.clone())
        .unwrap_or_else(|| panic!("{filter} not answered by the {ty:?} index on {path}"));
    let parsed: Vec<_> = docs.iter().map(metadata).collect();
    assert_eq!(
        got,
        truth(&filter, &parsed, &vec![true; docs.len()]),
        "{filter}"
    );
    got
}

fn is_superset(big: &[u32], small: &[u32]) -> bool {
    small.iter().all(|s| big.binary_search(s).is_ok())
}

/// True when every clause of `f` is one the indexes on `indexed` answer exactly, given that
/// each of those paths holds values of one kind.
fn fully_indexed(f: &Filter, indexed: &[&str]) -> bool {
    fn cond_ok(c: &Cond) -> bool {
        match c {
            Cond::Eq(v) => !v.is_null(),
            Cond::In(vs) => vs.iter().all(|v| !v.is_null()),
            Cond::Cmp(..) => true,
            Cond::All(cs) => cs.iter().all(cond_ok),
            Cond::Exists | Cond::Not(_) => false,
        }
    }
    match f {
        Filter::And(parts) => !parts.is_empty() && parts.iter().all(|p| fully_indexed(p, indexed)),
        Filter::Or(parts) => parts.iter().all(|p| fully_indexed(p, indexed)),
        Filter::Not(_) => false,
        Filter::Field { path, cond } => indexed.contains(&path.join(".").as_str()) && cond_ok(cond),
    }
}

const SPECS: [(&str, IndexType); 8] = [
    ("n", Integer),
    ("n", Float),
    ("s", Keyword),
    ("b", Bool),
    ("o.x", Integer),
    ("o.x", Keyword),
    ("o.y", Float),
    ("tags", Keyword),
];

/// Applies `f` to a value, or to each element of an array.
fn each(v: Value, f: fn(Value) -> Value) -> Value {
    match v {
        Value::Array(items) => Value::Array(items.into_iter().map(f).collect()),
        v => f(v),
    }
}

fn to_int(v: Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64().unwrap().floor() as i64),
        Value::String(s) => json!(s.as_bytes()[0] as i64 - b'a' as i64),
        Value::Bool(b) => json!(b as i64 + 2),
        v => v,
    }
}

fn to_float(v: Value) -> Value {
    match to_int(v) {
        Value::Number(n) => json!(n.as_i64().unwrap() as f64 + 0.5),
        v => v,
    }
}

fn to_string(v: Value) -> Value {
    match v {
        Value::Number(_) | Value::Bool(_) => json!(v.to_string()),
        v => v,
    }
}

fn to_bool(v: Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64().unwrap() > 1.0),
        Value::String(s) => json!(s.as_str() < "c"),
        v => v,
    }
}

/// Random metadata with one kind of scalar (and nulls) at each indexed path: `n` and `o.x`
/// integers, `o.y` floats, `s` and `tags` strings, `b` booleans.
fn typed_metadata(rng: &mut Rng) -> Option<Metadata> {
    let m = random_metadata(rng)?;
    let typed_obj = |v: Value| -> Value {
        let Value::Object(o) = v else { return v };
        let o: Map<String, Value> = o
            .into_iter()
            .map(|(k, v)| {
                let v = match k.as_str() {
                    "x" => each(v, to_int),
                    _ => each(v, to_float),
                };
                (k, v)
            })
            .collect();
        Value::Object(o)
    };
    Some(
        m.into_iter()
            .map(|(k, v)| {
                let v = match k.as_str() {
                    "n" => each(v, to_int),
                    "s" | "tags" => each(v, to_string),
                    "b" => each(v, to_bool),
                    "o" => match v {
                        Value::Array(items) => {
                            Value::Array(items.into_iter().map(typed_obj).collect())
                        }
                        v => typed_obj(v),
                    },
                    _ => v,
                };
                (k, v)
            })
            .collect(),
    )
}

/// Random documents (a fifth of them dead) and thousands of random filters: candidates are
/// always a superset of the live matches, and equal to them when every clause is answerable.
/// Returns (filters answered, filters answered exactly).
fn property(seed: u64, typed: bool) -> (usize, usize) {
    let mut rng = Rng::new(seed);
    let docs: Vec<Option<Metadata>> = (0..250)
        .map(|_| match typed {
            true => typed_metadata(&mut rng),
            false => random_metadata(&mut rng),
        })
        .collect();
    let live: Vec<bool> = (0..docs.len()).map(|_| rng.below(5) != 0).collect();
    // Half the indexes filled incrementally, half created over existing documents.
    let mut idx = build(&docs, &SPECS[..4]);
    for &(path, ty) in &SPECS[4..] {
        let existing = docs.iter().enumerate().map(|(i, m)| (i as u32, m.as_ref()));
        assert!(idx.create(path, ty, existing));
    }
    let indexed: Vec<&str> = SPECS.iter().map(|s| s.0).collect();
    let (mut answered, mut exactly) = (0, 0);
    for _ in 0..3000 {
        let filter = random_filter(&mut rng, 2);
        let want = oracle_truth(&filter, &docs, &live);
        let Some(got) = candidates(&idx, &filter, &live) else {
            continue;
        };
        answered += 1;
        assert!(
            is_superset(&got, &want),
            "{filter}: candidates {got:?} miss some of {want:?}"
        );
        if typed && fully_indexed(&Filter::parse(&filter).unwrap(), &indexed) {
            assert_eq!(got, want, "{filter}: not exact");
            exactly += 1;
        }
    }
    (answered, exactly)
}

#[test]
fn candidates_are_a_superset_on_mixed_kinds() {
    let mut answered = 0;
    for seed in 0..2 {
        answered += property(seed, false).0;
    }
    // Mixed kinds make most clauses declined, but not all (e.g. `{"b": "a"}` when no string
    // was seen, or any string clause on a keyword index).
    assert!(answered > 100, "only {answered} filters answered");
}

#[test]
fn candidates_are_exact_on_one_kind_per_field() {
    let (mut answered, mut exactly) = (0, 0);
    for seed in 10..12 {
        let (a, e) = property(seed, true);
        answered += a;
        exactly += e;
    }
    assert!(
        exactly > 500,
        "only {exactly} exact checks ({answered} answered)"
    );
}

/// The kind of the values `typed_metadata` puts at an indexed path.
fn typed_kind(path: &str) -> IndexType {
    match path {
        "s" | "tags" => Keyword,
        "b" => Bool,
        _ => Float,
    }
}

fn kind_of_index(ty: IndexType) -> IndexType {
    match ty {
        Integer => Float,
        ty => ty,
    }
}

fn kind_of_value(v: &Value) -> Option<IndexType> {
    match v {
        Value::String(_) => Some(Keyword),
        Value::Number(_) => Some(Float),
        Value::Bool(_) => Some(Bool),
        _ => None,
    }
}

#[test]
fn single_clauses_on_one_kind_are_exact() {
    let mut rng = Rng::new(99);
    let docs: Vec<Value> = (0..200)
        .map(|_| typed_metadata(&mut rng).map_or(Value::Null, Value::Object))
        .collect();
    let values = [
        json!(-1),
        json!(0),
        json!(2),
        json!(2.0),
        json!(2.5),
        json!(4),
        json!("a"),
        json!("c"),
        json!("2"),
        json!(true),
        json!(false),
    ];
    let (mut exactly, mut declined) = (0, 0);
    for &(path, ty) in &SPECS {
        // An index of the path's kind answers everything; one of another kind (the keyword
        // index on the integers at `o.x`) declines clauses of the path's kind (rule 4) and
        // answers the others with the empty set (rule 3).
        let answers = |vs: &[&Value]| {
            kind_of_index(ty) == typed_kind(path)
                || vs
                    .iter()
                    .all(|v| kind_of_value(v) != Some(typed_kind(path)))
        };
        let mut check = |answered: bool, filter: Value| {
            if answered {
                exact(&docs, path, ty, filter);
                exactly += 1;
            } else {
                assert_eq!(answer(&docs, path, ty, filter.clone()), None, "{filter}");
                declined += 1;
            }
        };
        for v in &values {
            let (b, three, zz) = (json!("b"), json!(3), json!("zz"));
            check(answers(&[v]), json!({ path: v }));
            // $in: answered when every value is.
            check(
                answers(&[v, &b, &three]),
                json!({ path: {"$in": [v, "b", 3]} }),
            );
            check(answers(&[v, &b]), json!({ path: {"$in": [v, "b"]} }));
            if v.is_number() || v.is_string() {
                for op in ["$gt", "$gte", "$lt", "$lte"] {
                    check(answers(&[v]), json!({ path: { op: v } }));
                }
                // Several operators: answered when one is (the intersection of those).
                check(
                    answers(&[v]) || answers(&[&zz]),
                    json!({ path: {"$gte": v, "$lt": "zz"} }),
                );
            }
        }
    }
    assert!(
        exactly > 400 && declined > 10,
        "{exactly} exact, {declined} declined"
    );
}

#[test]
fn keyword_index_declines_the_kinds_it_saw() {
    let docs = [
        json!({"f": "5"}),
        json!({"f": 5}),
        json!({"f": ["a", 5.0]}),
        json!({}),
        json!({"f": null}),
        json!({"f": [["a"]]}),
        json!({"f": {"a": 1}}),
        Value::Null,
    ];
    assert_eq!(exact(&docs, "f", Keyword, json!({"f": "a"})), [2]);
    assert_eq!(exact(&docs, "f", Keyword, json!({"f": "5"})), [0]);
    assert_eq!(
        exact(&docs, "f", Keyword, json!({"f": {"$gt": "4"}})),
        [0, 2]
    );
    assert_eq!(
        exact(&docs, "f", Keyword, json!({"f": {"$in": ["a", "5"]}})),
        [0, 2]
    );
    // Numbers were seen: the number 5 is in slots the index does not list.
    assert_eq!(answer(&docs, "f", Keyword, json!({"f": 5})), None);
    assert_eq!(answer(&docs, "f", Keyword, json!({"f": {"$gt": 1}})), None);
    assert_eq!(
        answer(&docs, "f", Keyword, json!({"f": {"$in": ["a", 5]}})),
        None
    );
    // No boolean was ever seen: nothing can equal true.
    assert_eq!(
        exact(&docs, "f", Keyword, json!({"f": true})),
        Vec::<u32>::new()
    );
    // null, $exists and negations are never answered.
    for f in [
        json!({"f": null}),
        json!({"f": {"$in": ["a", null]}}),
        json!({"f": {"$exists": true}}),
        json!({"f": {"$exists": false}}),
        json!({"f": {"$ne": "a"}}),
        json!({"f": {"$nin": ["a"]}}),
        json!({"f": {"$not": {"$eq": "a"}}}),
    ] {
        assert_eq!(answer(&docs, "f", Keyword, f.clone()), None, "{f}");
    }
    // Only strings: number clauses are answered (empty).
    let strings = [json!({"f": "5"}), json!({"f": ["a", null]}), json!({})];
    assert_eq!(
        exact(&strings, "f", Keyword, json!({"f": 5})),
        Vec::<u32>::new()
    );
    assert_eq!(
        exact(&strings, "f", Keyword, json!({"f": {"$lt": 10}})),
        Vec::<u32>::new()
    );
    assert_eq!(
        exact(&strings, "f", Keyword, json!({"f": {"$gte": "5"}})),
        [0, 1]
    );
}

#[test]
fn numeric_indexes_follow_the_filter_on_numbers() {
    // An integer index skips 2.0 (not an i64): it declines every number clause.
    let with_float = [json!({"n": 2}), json!({"n": 2.0}), json!({"n": 3})];
    assert_eq!(answer(&with_float, "n", Integer, json!({"n": 2})), None);
    assert_eq!(
        answer(&with_float, "n", Integer, json!({"n": {"$gt": 1}})),
        None
    );
    assert_eq!(
        exact(&with_float, "n", Integer, json!({"n": "2"})),
        Vec::<u32>::new()
    );
    assert_eq!(exact(&with_float, "n", Float, json!({"n": 2})), [0, 1]);
    // Strings seen: string clauses declined, numbers still answered.
    let with_string = [json!({"n": 2}), json!({"n": "2"})];
    assert_eq!(answer(&with_string, "n", Integer, json!({"n": "2"})), None);
    assert_eq!(exact(&with_string, "n", Integer, json!({"n": 2})), [0]);

    let ints = [
        json!({"n": 2}),
        json!({"n": [3, -1]}),
        json!({"n": {"k": 1}}),
        json!({}),
        json!({"n": 0}),
    ];
    assert_eq!(exact(&ints, "n", Integer, json!({"n": 2.0})), [0]);
    assert_eq!(exact(&ints, "n", Integer, json!({"n": {"$gte": 2.5}})), [1]);
    assert_eq!(exact(&ints, "n", Integer, json!({"n": {"$lt": 0}})), [1]);
    assert_eq!(
        exact(&ints, "n", Integer, json!({"n": {"$in": [2, 3.0]}})),
        [0, 1]
    );
    assert_eq!(
        exact(&ints, "n", Integer, json!({"n": "x"})),
        Vec::<u32>::new()
    );
    assert_eq!(exact(&ints, "n", Integer, json!({"n": -0.0})), [4]);
    // Each bound may be met by a different element, as in the filter.
    assert_eq!(
        exact(&ints, "n", Integer, json!({"n": {"$gt": 2, "$lt": 0}})),
        [1]
    );

    let floats = [
        json!({"n": 2}),
        json!({"n": 2.0}),
        json!({"n": 2.5}),
        json!({"n": -0.0}),
        json!({"n": 0}),
    ];
    assert_eq!(exact(&floats, "n", Float, json!({"n": 2})), [0, 1]);
    assert_eq!(exact(&floats, "n", Float, json!({"n": 0})), [3, 4]);
    assert_eq!(
        exact(&floats, "n", Float, json!({"n": {"$gt": 0}})),
        [0, 1, 2]
    );
    assert_eq!(
        exact(&floats, "n", Float, json!({"n": {"$lte": -0.0}})),
        [3, 4]
    );
    assert_eq!(exact(&floats, "n", Float, json!({"n": {"$lt": 2}})), [3, 4]);
}

#[test]
fn numbers_past_2_pow_53_stay_exact() {
    let p53: i64 = 1 << 53;
    let numbers = [
        json!(p53),
        json!(p53 + 1),
        json!(p53 - 1),
        json!(p53 as f64),
        json!(i64::MAX),
        json!(i64::MAX - 1),
        json!(i64::MAX as f64),
        json!(i64::MIN),
        json!(-p53 - 1),
        json!(u64::MAX),
        json!(1_700_000_000_123_456_789_i64),
        json!(1_700_000_000_123_456_790_i64),
    ];
    let docs: Vec<Value> = numbers.iter().map(|n| json!({ "n": n })).collect();
    let ints: Vec<Value> = docs.iter().filter(|d| d["n"].is_i64()).cloned().collect();
    for v in &numbers {
        let mut filters = vec![json!({ "n": v }), json!({"n": {"$in": [v, 0]}})];
        for op in ["$gt", "$gte", "$lt", "$lte"] {
            filters.push(json!({ "n": { op: v } }));
        }
        for f in filters {
            exact(&docs, "n", Float, f.clone());
            exact(&ints, "n", Integer, f.clone());
            // u64::MAX and the floats are not i64: the integer index skipped them.
            assert_eq!(answer(&docs, "n", Integer, f), None);
        }
    }
}

#[test]
fn bool_index() {
    let docs = [
        json!({"b": true}),
        json!({"b": [false, true]}),
        json!({"b": false}),
        json!({"b": "true"}),
    ];
    assert_eq!(exact(&docs, "b", Bool, json!({"b": true})), [0, 1]);
    assert_eq!(
        exact(&docs, "b", Bool, json!({"b": {"$in": [false]}})),
        [1, 2]
    );
    assert_eq!(answer(&docs, "b", Bool, json!({"b": "true"})), None);
    assert_eq!(answer(&docs, "b", Bool, json!({"b": {"$gt": "a"}})), None);
    // No number seen: a number range matches nothing.
    assert_eq!(
        exact(&docs, "b", Bool, json!({"b": {"$gt": 0}})),
        Vec::<u32>::new()
    );
    assert_eq!(exact(&docs, "b", Bool, json!({"b": 1})), Vec::<u32>::new());
}

#[test]
fn paths_cross_arrays_of_objects() {
    let docs = [
        json!({"o": [{"x": "a"}, {"x": "b"}]}),
        json!({"o": {"x": ["c", "a"]}}),
        json!({"o": "a"}),
        json!({"o": [[{"x": "a"}]]}),
        json!({"o": {"x": {"y": "a"}}}),
        json!({"o": [{"x": "a"}, {"x": "a"}]}),
    ];
    assert_eq!(exact(&docs, "o.x", Keyword, json!({"o.x": "a"})), [0, 1, 5]);
    assert_eq!(
        exact(&docs, "o.x", Keyword, json!({"o.x": {"$gte": "b"}})),
        [0, 1]
    );
    // The helper finds what the filter finds.
    let m = metadata(&docs[0]).unwrap();
    let mut found = Vec::new();
    field_values(&m, &["o".to_string(), "x".to_string()], &mut found);
    assert_eq!(found, [&json!("a"), &json!("b")]);
}

#[test]
fn filters_combine_indexed_and_other_clauses() {
    let raw = [
        json!({"s": "a", "n": 1, "zz": 1}),
        json!({"s": "a", "n": 2}),
        json!({"s": "b", "n": 2, "zz": 1}),
        json!({"s": "c"}),
    ];
    let docs: Vec<_> = raw.iter().map(metadata).collect();
    let live = [true, true, true, false];
    let idx = build(&docs, &[("s", Keyword), ("n", Integer), ("n", Float)]);
    let c = |f: Value| {
        let got = candidates(&idx, &f, &live);
        if let Some(got) = &got {
            assert!(is_superset(got, &truth(&f, &docs, &live)), "{f}");
        }
        got
    };
    // The unindexed part is left to the full filter.
    assert_eq!(c(json!({"s": "a", "zz": 1})), Some(vec![0, 1]));
    assert_eq!(c(json!({"s": "a", "n": 2})), Some(vec![1]));
    assert_eq!(c(json!({"$or": [{"s": "b"}, {"n": 1}]})), Some(vec![0, 2]));
    assert_eq!(c(json!({"$or": [{"s": "b"}, {"zz": 1}]})), None);
    assert_eq!(c(json!({"$not": {"s": "a"}})), None);
    assert_eq!(c(json!({"zz": 1})), None);
    assert_eq!(c(json!({})), None);
    assert_eq!(
        c(json!({"s": {"$in": ["a", "c"]}, "$or": [{"n": 2}, {"n": {"$lt": 2}}]})),
        Some(vec![0, 1])
    );
    // Dead slots are dropped by the caller's check only.
    let all = idx
        .candidates(&Filter::parse(&json!({"s": "c"})).unwrap())
        .unwrap();
    assert_eq!(all.as_slice(), [3]);
    assert!(all.contains(3) && !all.contains(2));
    assert_eq!(c(json!({"s": "c"})), Some(vec![]));
    // No index at all: nothing to say.
    assert!(
        PayloadIndexes::new()
            .candidates(&Filter::parse(&json!({"s": "a"})).unwrap())
            .is_none()
    );
}

#[test]
fn slots_are_kept_sorted_and_distinct() {
    let mut f = FieldIndex::new("tags", Keyword);
    let m = |v: Value| metadata(&json!({ "tags": v })).unwrap();
    f.insert(5, Some(&m(json!(["a", "a", "b"]))));
    f.insert(3, Some(&m(json!("a"))));
    f.insert(5, Some(&m(json!("a"))));
    f.insert(9, None);
    assert_eq!(f.answer(&Cond::Eq(json!("a"))), Some(vec![3, 5]));
    assert_eq!(f.distinct_values(), 2);
    assert_eq!(f.path(), ["tags"]);
    assert_eq!(f.path_str(), "tags");
    assert_eq!(f.index_type(), Keyword);
}

#[test]
fn indexes_are_created_once_and_counted() {
    let mut idx = PayloadIndexes::new();
    let before = idx.memory_bytes();
    assert!(idx.is_empty());
    assert!(idx.create("s", Keyword, std::iter::empty()));
    assert!(!idx.create("s", Keyword, std::iter::empty()));
    assert!(idx.create("s", Integer, std::iter::empty()));
    assert!(idx.get("s", Keyword).is_some() && idx.get("s", Bool).is_none());
    let empty = idx.memory_bytes();
    assert!(empty > before);
    for slot in 0..1000u32 {
        let m = metadata(&json!({"s": format!("v{}", slot % 100)})).unwrap();
        idx.insert(slot, Some(&m));
    }
    let full = idx.memory_bytes();
    // 100 keys and 1,000 slots: at least the slot lists and key strings.
    assert!(full > empty + 4 * 1000 + 100 * 16, "{full}");
    assert!(full < empty + 100_000, "{full}");
    assert!(idx.remove("s", Integer));
    assert!(!idx.remove("s", Integer));
    assert_eq!(idx.iter().count(), 1);
    assert!(valid_path("a.b") && !valid_path("a..b") && !valid_path(""));
}

#[test]
fn index_types_serialize_lowercase() {
    for (ty, name) in [
        (Keyword, "keyword"),
        (Integer, "integer"),
        (Float, "float"),
        (Bool, "bool"),
        (Text, "text"),
    ] {
        assert_eq!(serde_json::to_value(ty).unwrap(), json!(name));
        assert_eq!(
            serde_json::from_value::<IndexType>(json!(name)).unwrap(),
            ty
        );
        assert_eq!(ty.as_str(), name);
    }
    assert!(serde_json::from_value::<IndexType>(json!("fulltext")).is_err());
}

#[test]
fn planner_boundary() {
    // 16 · ef · n = 16 · 24 · 10,000 = 3,840,000; 1959² = 3,837,681 ≤ it < 1960² = 3,841,600.
    assert_eq!(plan(Some(1959), 10_000, 24, 10), Plan::Scan);
    assert_eq!(plan(Some(1960), 10_000, 24, 10), Plan::Graph);
    // ef is at least k: 16 · 50 · 10,000 = 8,000,000; 2828² ≤ it < 2829²
    assert_eq!(plan(Some(2828), 10_000, 5, 50), Plan::Scan);
    assert_eq!(plan(Some(2829), 10_000, 5, 50), Plan::Graph);
    // No more candidates than k: all of them are the answer.
    assert_eq!(plan(Some(100), 1_000_000, 1, 100), Plan::Scan);
    assert_eq!(plan(Some(0), 1_000_000, 24, 10), Plan::Scan);
    // Below core's brute-force threshold core scans everything anyway.
    assert_eq!(plan(Some(999), 999, 24, 10), Plan::Scan);
    assert_eq!(plan(Some(1000), 1000, 24, 10), Plan::Graph);
    // Unbounded filters walk the graph (core still samples and may scan).
    assert_eq!(plan(None, 10, 24, 10), Plan::Graph);
    // No overflow.
    assert_eq!(
        plan(Some(usize::MAX), usize::MAX, usize::MAX, 10),
        Plan::Scan
    );
    assert_eq!(plan(Some(usize::MAX), usize::MAX, 1, 10), Plan::Graph);
}

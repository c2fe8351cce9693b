use super::*;
use akidb_testkit::filters::{Rng, filter_oracle, random_filter, random_metadata};
use serde_json::json;

fn meta(v: Value) -> Metadata {
    v.as_object().unwrap().clone()
}

fn check(filter: Value, doc: Value, want: bool) {
    let f = Filter::parse(&filter).unwrap();
    let m = doc.as_object().cloned();
    assert_eq!(f.matches(m.as_ref()), want, "{filter} on {doc}");
}

#[test]
fn equality_and_in() {
    let f = Filter::parse(&json!({"lang": "en", "year": {"$in": [2023, 2024.0]}})).unwrap();
    assert!(f.matches(Some(&meta(json!({"lang": "en", "year": 2024})))));
    assert!(f.matches(Some(&meta(json!({"lang": "en", "year": 2023.0, "x": 1})))));
    assert!(!f.matches(Some(&meta(json!({"lang": "de", "year": 2024})))));
    assert!(!f.matches(Some(&meta(json!({"lang": "en"})))));
    assert!(!f.matches(None));
    assert!(Filter::parse(&json!({})).unwrap().matches(None));
}

#[test]
fn missing_fields_and_null_follow_mongodb() {
    check(json!({"a": null}), json!({}), true);
    check(json!({"a": null}), json!({"a": null}), true);
    check(json!({"a": null}), json!({"a": 1}), false);
    check(json!({"a": {"$ne": 1}}), json!({}), true);
    check(json!({"a": {"$ne": null}}), json!({}), false);
    check(json!({"a": {"$nin": [1, 2]}}), json!({"b": 1}), true);
    check(json!({"a": {"$in": [1, null]}}), json!({}), true);
    check(json!({"a": {"$gt": 0}}), json!({}), false);
    check(json!({"a": {"$exists": true}}), json!({"a": null}), true);
    check(json!({"a": {"$exists": false}}), json!({"a": null}), false);
    check(json!({"a": {"$not": {"$gt": 5}}}), json!({}), true);
    check(json!({"a": {"$not": {"$gt": 5}}}), json!({"a": 6}), false);
    check(json!({"a": {"$ne": 1}}), Value::Null, true);
}

#[test]
fn arrays_match_by_element_and_paths_cross_them() {
    check(json!({"tags": "x"}), json!({"tags": ["y", "x"]}), true);
    check(
        json!({"tags": {"$ne": "x"}}),
        json!({"tags": ["y", "x"]}),
        false,
    );
    check(
        json!({"tags": {"$nin": ["z"]}}),
        json!({"tags": ["y", "x"]}),
        true,
    );
    check(json!({"n": {"$gt": 5}}), json!({"n": [1, 9]}), true);
    // Range bounds may be met by different elements, as in MongoDB.
    check(
        json!({"n": {"$gt": 5, "$lt": 2}}),
        json!({"n": [1, 9]}),
        true,
    );
    check(json!({"a.b": 2}), json!({"a": [{"b": 1}, {"b": 2}]}), true);
    check(json!({"a.b.c": "x"}), json!({"a": {"b": {"c": "x"}}}), true);
    check(json!({"a.b": {"$exists": true}}), json!({"a": 3}), false);
    check(json!({"a.b": null}), json!({"a": [1, 2]}), true);
}

#[test]
fn ranges_compare_only_within_a_kind() {
    check(json!({"n": {"$gte": 2, "$lt": 3}}), json!({"n": 2.5}), true);
    check(json!({"n": {"$gte": 2, "$lt": 3}}), json!({"n": 3}), false);
    check(json!({"n": {"$gt": 1}}), json!({"n": "9"}), false);
    check(json!({"s": {"$gt": "b"}}), json!({"s": "c"}), true);
    check(json!({"s": {"$lte": "b"}}), json!({"s": "ba"}), false);
    check(json!({"s": {"$lt": "b"}}), json!({"s": true}), false);
}

#[test]
fn and_or_not() {
    let f = json!({"$or": [{"a": 1}, {"$and": [{"b": 2}, {"$not": {"c": 3}}]}]});
    check(f.clone(), json!({"a": 1}), true);
    check(f.clone(), json!({"b": 2}), true);
    check(f.clone(), json!({"b": 2, "c": 3}), false);
    check(f, json!({"c": 3}), false);
}

#[test]
fn errors_name_the_offending_clause() {
    for (bad, field) in [
        (json!([1]), "filter"),
        (json!({"a": {"$gt": true}}), "filter.a.$gt"),
        (json!({"a": {"$in": 1}}), "filter.a.$in"),
        (json!({"a": {"$in": [1, [1]]}}), "filter.a.$in[1]"),
        (json!({"a": [1, 2]}), "filter.a"),
        (json!({"a": {}}), "filter.a"),
        (json!({"a": {"$regex": "x"}}), "filter.a.$regex"),
        (json!({"a": {"b": 1}}), "filter.a.b"),
        (
            json!({"$or": [{"a": 1}, {"b": {"$exists": 1}}]}),
            "filter.$or[1].b.$exists",
        ),
        (json!({"$or": []}), "filter.$or"),
        (json!({"$and": {"a": 1}}), "filter.$and"),
        (json!({"$nor": [{"a": 1}]}), "filter.$nor"),
        (json!({"a..b": 1}), "filter.a..b"),
        (json!({"$not": 1}), "filter.$not"),
        (json!({"a": {"$not": 1}}), "filter.a.$not"),
        (json!({"a": {"$in": vec![1; 1025]}}), "filter.a.$in"),
        (
            json!({"a": {"$in": vec![1; 600]}, "b": {"$in": vec![1; 600]}}),
            "filter.b.$in",
        ),
    ] {
        let err = Filter::parse(&bad).unwrap_err();
        assert_eq!(err.field, field, "{bad}: {err:?}");
    }
    let many = Value::Object((0..65).map(|i| (format!("k{i}"), json!(1))).collect());
    assert!(Filter::parse(&many).unwrap_err().message.contains("64"));
    let mut deep = json!({"a": 1});
    for _ in 0..MAX_FILTER_DEPTH + 1 {
        deep = json!({ "$not": deep });
    }
    assert!(Filter::parse(&deep).unwrap_err().message.contains("deep"));
}

/// Every operator, alone and combined, against the testkit's brute-force oracle.
#[test]
fn random_filters_agree_with_the_oracle() {
    let mut rng = Rng::new(13);
    let docs: Vec<_> = (0..300).map(|_| random_metadata(&mut rng)).collect();
    let mut matched = 0;
    let mut total = 0;
    for _ in 0..3000 {
        let f = random_filter(&mut rng, 3);
        let parsed = Filter::parse(&f).unwrap_or_else(|e| panic!("{f}: {e:?}"));
        for d in &docs {
            let want = filter_oracle(&f, d.as_ref());
            assert_eq!(parsed.matches(d.as_ref()), want, "{f} on {d:?}");
            matched += want as usize;
            total += 1;
        }
    }
    // The generator is useful only if filters both match and miss often.
    let share = matched as f64 / total as f64;
    assert!((0.15..0.85).contains(&share), "share matched {share}");
}

//! Metadata filters: equality and `$in` on top-level metadata keys, all clauses ANDed.
//!
//! ```json
//! {"lang": "en", "year": {"$in": [2023, 2024]}}
//! ```
//!
//! Numbers compare by value (`1` equals `1.0`); other values compare as JSON. A document without
//! the key does not match (there is no way to match a missing key by `null` by accident: a
//! `null` in the filter matches only an explicit `null`).

use akidb_core::types::ValidationError;
use serde_json::Value;

use crate::doc::Metadata;

/// Largest number of values a filter may list, over all its clauses (a filter is checked
/// against every candidate document, so its size bounds a search's work).
pub const MAX_FILTER_VALUES: usize = 1024;
/// Largest number of clauses (keys) in a filter.
pub const MAX_FILTER_CLAUSES: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    clauses: Vec<(String, Vec<Value>)>,
}

impl Filter {
    pub fn parse(value: &Value) -> Result<Filter, ValidationError> {
        let Value::Object(map) = value else {
            return Err(ValidationError::new(
                "filter",
                "filter must be a JSON object",
            ));
        };
        if map.len() > MAX_FILTER_CLAUSES {
            return Err(ValidationError::new(
                "filter",
                format!(
                    "a filter holds at most {MAX_FILTER_CLAUSES} clauses, got {}",
                    map.len()
                ),
            ));
        }
        let mut clauses = Vec::with_capacity(map.len());
        let mut values_total = 0;
        for (key, cond) in map {
            let field = format!("filter.{key}");
            let allowed = match cond {
                Value::Object(op) => {
                    if op.len() != 1 {
                        return Err(ValidationError::new(
                            field,
                            "an operator object takes exactly one operator: {\"$in\": [...]}",
                        ));
                    }
                    let (name, arg) = op.iter().next().unwrap();
                    if name != "$in" {
                        return Err(ValidationError::new(
                            field,
                            format!("unknown operator {name:?}: supported are equality and $in"),
                        ));
                    }
                    let Value::Array(values) = arg else {
                        return Err(ValidationError::new(field, "$in takes an array of values"));
                    };
                    values_total += values.len();
                    if values_total > MAX_FILTER_VALUES {
                        return Err(ValidationError::new(
                            field,
                            format!(
                                "a filter lists at most {MAX_FILTER_VALUES} values over all its clauses"
                            ),
                        ));
                    }
                    if values.iter().any(|v| v.is_object() || v.is_array()) {
                        return Err(ValidationError::new(
                            field,
                            "$in values must be strings, numbers, booleans or null",
                        ));
                    }
                    values.clone()
                }
                Value::Array(_) => {
                    return Err(ValidationError::new(
                        field,
                        "to match any of several values use {\"$in\": [...]}",
                    ));
                }
                scalar => vec![scalar.clone()],
            };
            clauses.push((key.clone(), allowed));
        }
        Ok(Filter { clauses })
    }

    pub fn matches(&self, metadata: Option<&Metadata>) -> bool {
        self.clauses.iter().all(|(key, allowed)| {
            metadata
                .and_then(|m| m.get(key))
                .is_some_and(|v| allowed.iter().any(|a| json_eq(a, v)))
        })
    }
}

fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(v: Value) -> Metadata {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn equality_and_in() {
        let f = Filter::parse(&json!({"lang": "en", "year": {"$in": [2023, 2024.0]}})).unwrap();
        assert!(f.matches(Some(&meta(json!({"lang": "en", "year": 2024})))));
        assert!(f.matches(Some(&meta(json!({"lang": "en", "year": 2023.0, "x": 1})))));
        assert!(!f.matches(Some(&meta(json!({"lang": "de", "year": 2024})))));
        assert!(!f.matches(Some(&meta(json!({"lang": "en"})))));
        assert!(!f.matches(None));
        let null = Filter::parse(&json!({"a": null})).unwrap();
        assert!(!null.matches(Some(&meta(json!({})))));
        assert!(null.matches(Some(&meta(json!({"a": null})))));
        assert!(Filter::parse(&json!({})).unwrap().matches(None));
    }

    #[test]
    fn rejects_bad_filters() {
        for bad in [
            json!([1]),
            json!("x"),
            json!({"a": {"$gt": 1}}),
            json!({"a": {"$in": 1}}),
            json!({"a": {"$in": [[1]]}}),
            json!({"a": [1, 2]}),
            json!({"a": {"$in": [1], "$eq": 2}}),
            json!({"a": {"$in": vec![1; 1025]}}),
            json!({"a": {"$in": vec![1; 600]}, "b": {"$in": vec![1; 600]}}),
            Value::Object((0..65).map(|i| (format!("k{i}"), json!(1))).collect()),
        ] {
            let err = Filter::parse(&bad).unwrap_err();
            assert!(err.field.starts_with("filter"), "{bad}: {err}");
        }
    }
}

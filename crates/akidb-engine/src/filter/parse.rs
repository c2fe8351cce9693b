//! Parsing and validating a filter's JSON (see the module above for the language). Every error
//! names the clause at fault as a path from `filter`.

use akidb_core::types::ValidationError;
use serde_json::{Map, Value};

use super::{CmpOp, Cond, Filter, MAX_FILTER_CLAUSES, MAX_FILTER_DEPTH, MAX_FILTER_VALUES};

/// Longest field path, in bytes.
const MAX_PATH_BYTES: usize = 256;

pub(super) fn parse(value: &Value) -> Result<Filter, ValidationError> {
    let mut p = Parser {
        clauses: 0,
        values: 0,
    };
    p.filter(value, "filter", 0)
}

struct Parser {
    clauses: usize,
    values: usize,
}

fn err(field: &str, message: impl Into<String>) -> ValidationError {
    ValidationError::new(field, message)
}

impl Parser {
    fn filter(&mut self, value: &Value, at: &str, depth: usize) -> Result<Filter, ValidationError> {
        if depth > MAX_FILTER_DEPTH {
            return Err(err(
                at,
                format!("a filter nests $and, $or and $not at most {MAX_FILTER_DEPTH} deep"),
            ));
        }
        let Value::Object(map) = value else {
            return Err(err(at, "a filter must be a JSON object"));
        };
        let mut parts = Vec::with_capacity(map.len());
        for (key, v) in map {
            let here = format!("{at}.{key}");
            parts.push(match key.as_str() {
                "$and" | "$or" => {
                    let Value::Array(items) = v else {
                        return Err(err(&here, format!("{key} takes an array of filters")));
                    };
                    if items.is_empty() {
                        return Err(err(&here, format!("{key} takes at least one filter")));
                    }
                    let subs = items
                        .iter()
                        .enumerate()
                        .map(|(i, f)| self.filter(f, &format!("{here}[{i}]"), depth + 1))
                        .collect::<Result<Vec<_>, _>>()?;
                    match key.as_str() {
                        "$and" => Filter::And(subs),
                        _ => Filter::Or(subs),
                    }
                }
                "$not" => Filter::Not(Box::new(self.filter(v, &here, depth + 1)?)),
                k if k.starts_with('$') => {
                    return Err(err(
                        &here,
                        format!(
                            "unknown operator {k:?} at the top of a filter: use $and, $or, $not \
                             or a field name"
                        ),
                    ));
                }
                k => Filter::Field {
                    path: field_path(k, &here)?,
                    cond: self.condition(v, &here, depth)?,
                },
            });
        }
        Ok(match parts.len() {
            1 => parts.pop().unwrap(),
            _ => Filter::And(parts),
        })
    }

    /// A field's condition: a value (equality) or an object of operators.
    fn condition(&mut self, v: &Value, at: &str, depth: usize) -> Result<Cond, ValidationError> {
        match v {
            Value::Object(ops) => self.operators(ops, at, depth),
            Value::Array(_) => Err(err(
                at,
                "to match any of several values use {\"$in\": [...]}",
            )),
            scalar => {
                self.count_clause(at)?;
                self.count_values(1, at)?;
                Ok(Cond::Eq(scalar.clone()))
            }
        }
    }

    fn operators(
        &mut self,
        ops: &Map<String, Value>,
        at: &str,
        depth: usize,
    ) -> Result<Cond, ValidationError> {
        if ops.is_empty() {
            return Err(err(
                at,
                "an operator object needs an operator: $eq, $ne, $gt, $gte, $lt, $lte, $in, \
                 $nin, $exists or $not",
            ));
        }
        let mut conds = Vec::with_capacity(ops.len());
        for (name, arg) in ops {
            let here = format!("{at}.{name}");
            if name == "$not" {
                if depth + 1 > MAX_FILTER_DEPTH {
                    return Err(err(
                        &here,
                        format!(
                            "a filter nests $and, $or and $not at most {MAX_FILTER_DEPTH} deep"
                        ),
                    ));
                }
                let Value::Object(inner) = arg else {
                    return Err(err(
                        &here,
                        "$not on a field takes an operator object: {\"$not\": {\"$gt\": 5}}",
                    ));
                };
                conds.push(Cond::Not(Box::new(self.operators(
                    inner,
                    &here,
                    depth + 1,
                )?)));
                continue;
            }
            self.count_clause(&here)?;
            conds.push(match name.as_str() {
                "$eq" => Cond::Eq(self.scalar(arg, &here)?),
                "$ne" => Cond::Not(Box::new(Cond::Eq(self.scalar(arg, &here)?))),
                "$in" => Cond::In(self.list(arg, &here)?),
                "$nin" => Cond::Not(Box::new(Cond::In(self.list(arg, &here)?))),
                "$gt" | "$gte" | "$lt" | "$lte" => {
                    let op = match name.as_str() {
                        "$gt" => CmpOp::Gt,
                        "$gte" => CmpOp::Gte,
                        "$lt" => CmpOp::Lt,
                        _ => CmpOp::Lte,
                    };
                    if !(arg.is_number() || arg.is_string()) {
                        return Err(err(&here, format!("{name} takes a number or a string")));
                    }
                    self.count_values(1, &here)?;
                    Cond::Cmp(op, arg.clone())
                }
                "$exists" => match arg {
                    Value::Bool(true) => Cond::Exists,
                    Value::Bool(false) => Cond::Not(Box::new(Cond::Exists)),
                    _ => return Err(err(&here, "$exists takes true or false")),
                },
                other if other.starts_with('$') => {
                    return Err(err(
                        &here,
                        format!(
                            "unknown operator {other:?}: supported are $eq, $ne, $gt, $gte, \
                             $lt, $lte, $in, $nin, $exists and $not"
                        ),
                    ));
                }
                _ => {
                    return Err(err(
                        &here,
                        "a field's condition is a value or an object of operators ($eq, $in, \
                         ...); to reach a nested field use a dotted path (\"a.b\")",
                    ));
                }
            });
        }
        Ok(match conds.len() {
            1 => conds.pop().unwrap(),
            _ => Cond::All(conds),
        })
    }

    fn scalar(&mut self, v: &Value, at: &str) -> Result<Value, ValidationError> {
        if v.is_object() || v.is_array() {
            return Err(err(at, "takes a string, number, boolean or null"));
        }
        self.count_values(1, at)?;
        Ok(v.clone())
    }

    fn list(&mut self, v: &Value, at: &str) -> Result<Vec<Value>, ValidationError> {
        let Value::Array(values) = v else {
            return Err(err(at, "takes an array of values"));
        };
        self.count_values(values.len(), at)?;
        if let Some(i) = values.iter().position(|v| v.is_object() || v.is_array()) {
            return Err(err(
                &format!("{at}[{i}]"),
                "values must be strings, numbers, booleans or null",
            ));
        }
        Ok(values.clone())
    }

    fn count_clause(&mut self, at: &str) -> Result<(), ValidationError> {
        self.clauses += 1;
        if self.clauses > MAX_FILTER_CLAUSES {
            return Err(err(
                at,
                format!("a filter holds at most {MAX_FILTER_CLAUSES} conditions"),
            ));
        }
        Ok(())
    }

    fn count_values(&mut self, n: usize, at: &str) -> Result<(), ValidationError> {
        self.values += n;
        if self.values > MAX_FILTER_VALUES {
            return Err(err(
                at,
                format!("a filter lists at most {MAX_FILTER_VALUES} values over all its clauses"),
            ));
        }
        Ok(())
    }
}

fn field_path(key: &str, at: &str) -> Result<Vec<String>, ValidationError> {
    if key.len() > MAX_PATH_BYTES {
        return Err(err(
            at,
            format!("a field path is at most {MAX_PATH_BYTES} bytes"),
        ));
    }
    let parts: Vec<String> = key.split('.').map(str::to_string).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(err(
            at,
            "a field path is names joined by dots, none empty (\"a.b\")",
        ));
    }
    Ok(parts)
}

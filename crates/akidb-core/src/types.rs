//! Validated identifiers and limits shared by every layer.
//!
//! Every check here returns a [`ValidationError`] naming the offending field, so the API can
//! answer with a 4xx that tells the user exactly what to fix.

use crate::Metric;

/// Largest vector dimension a collection may have.
pub const MAX_DIMENSION: usize = 4096;
/// Longest document id, in bytes of UTF-8.
pub const MAX_ID_BYTES: usize = 128;
/// Largest metadata object, in bytes of its JSON encoding.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;
/// Longest collection name, in characters.
pub const MAX_NAME_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// The request field at fault, as a path (`documents[3].vector`).
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Checks a collection name against `^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`.
///
/// Names are only ever used as keys in the catalog, never as file or object paths, but this rule
/// also keeps them safe to put in URLs and logs.
pub fn validate_collection_name(name: &str) -> Result<(), ValidationError> {
    let bytes = name.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= MAX_NAME_LEN
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            "name",
            format!(
                "collection name {name:?} is invalid: it must match ^[A-Za-z0-9][A-Za-z0-9_-]{{0,63}}$"
            ),
        ))
    }
}

pub fn validate_dimension(dimension: usize) -> Result<(), ValidationError> {
    if (1..=MAX_DIMENSION).contains(&dimension) {
        Ok(())
    } else {
        Err(ValidationError::new(
            "dimension",
            format!("dimension must be between 1 and {MAX_DIMENSION}, got {dimension}"),
        ))
    }
}

/// A document id: 1 to 128 bytes of UTF-8 without control characters.
pub fn validate_doc_id(field: &str, id: &str) -> Result<(), ValidationError> {
    if id.is_empty() {
        return Err(ValidationError::new(field, "id must not be empty"));
    }
    if id.len() > MAX_ID_BYTES {
        return Err(ValidationError::new(
            field,
            format!(
                "id is {} bytes long, the maximum is {MAX_ID_BYTES}",
                id.len()
            ),
        ));
    }
    if id.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "id must not contain control characters",
        ));
    }
    Ok(())
}

/// Checks a vector against a collection's dimension and metric, and for cosine normalises it in
/// place (collections of metric cosine store unit vectors).
pub fn prepare_vector(
    field: &str,
    vector: &mut [f32],
    dimension: usize,
    metric: Metric,
) -> Result<(), ValidationError> {
    if vector.is_empty() {
        return Err(ValidationError::new(field, "vector must not be empty"));
    }
    if vector.len() != dimension {
        return Err(ValidationError::new(
            field,
            format!("dimension {dimension} expected, got {}", vector.len()),
        ));
    }
    if let Some(i) = vector.iter().position(|x| !x.is_finite()) {
        return Err(ValidationError::new(
            format!("{field}[{i}]"),
            "vector values must be finite numbers (no NaN or infinity, and within f32 range)",
        ));
    }
    if metric == Metric::Cosine && !crate::distance::normalize(vector) {
        return Err(ValidationError::new(
            field,
            "a zero vector has no direction and cannot be used with the cosine metric",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_names() {
        for ok in ["a", "A-1", "docs_2024", &"x".repeat(64)] {
            assert!(validate_collection_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "..",
            ".",
            "a/b",
            "-a",
            "_a",
            "a b",
            "é",
            &"x".repeat(65),
            "a.b",
            "%2e%2e",
        ] {
            assert!(validate_collection_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn vectors() {
        let mut v = vec![3.0, 4.0];
        prepare_vector("v", &mut v, 2, Metric::Cosine).unwrap();
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        assert!(prepare_vector("v", &mut [0.0, 0.0], 2, Metric::Cosine).is_err());
        assert!(prepare_vector("v", &mut [0.0, 0.0], 2, Metric::L2).is_ok());
        assert!(prepare_vector("v", &mut [1.0], 2, Metric::L2).is_err());
        assert!(prepare_vector("v", &mut [], 0, Metric::L2).is_err());
        let err = prepare_vector("v", &mut [1.0, f32::NAN], 2, Metric::Dot).unwrap_err();
        assert_eq!(err.field, "v[1]");
        assert!(prepare_vector("v", &mut [f32::INFINITY, 1.0], 2, Metric::Dot).is_err());
    }

    #[test]
    fn doc_ids() {
        assert!(validate_doc_id("id", "a/b ..").is_ok());
        assert!(validate_doc_id("id", "").is_err());
        assert!(validate_doc_id("id", &"x".repeat(129)).is_err());
        assert!(validate_doc_id("id", "a\nb").is_err());
    }
}

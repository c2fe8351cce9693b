//! Similarity metrics.
//!
//! Internally every index works with a *distance*: lower is better. What a user sees is a
//! *score*, whose direction depends on the metric:
//!
//! | metric   | stored vectors      | internal distance      | user-facing score                 |
//! |----------|---------------------|------------------------|-----------------------------------|
//! | `cosine` | unit length         | `1 - dot(a, b)`        | cosine similarity, higher better  |
//! | `dot`    | as given            | `-dot(a, b)`           | inner product, higher better      |
//! | `l2`     | as given            | `‖a - b‖²`             | Euclidean distance, lower better  |

use serde::{Deserialize, Serialize};

/// The similarity metric of a collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    Cosine,
    L2,
    Dot,
}

impl Metric {
    /// Turns an internal distance (lower is better) into the score a user sees.
    pub fn score(self, distance: f32) -> f32 {
        match self {
            Metric::Cosine => 1.0 - distance,
            Metric::Dot => -distance,
            Metric::L2 => distance.max(0.0).sqrt(),
        }
    }

    /// True when a larger user-facing score is better.
    pub fn higher_is_better(self) -> bool {
        match self {
            Metric::Cosine | Metric::Dot => true,
            Metric::L2 => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::L2 => "l2",
            Metric::Dot => "dot",
        }
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Metric {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cosine" => Ok(Metric::Cosine),
            "l2" => Ok(Metric::L2),
            "dot" => Ok(Metric::Dot),
            other => Err(format!(
                "unknown metric {other:?}: expected cosine, l2 or dot"
            )),
        }
    }
}

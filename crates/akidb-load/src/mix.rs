//! The operation mix: which operations run, with what weights (`search=70,insert=20,tier=10`).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// One kind of request the load tool sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// `POST /api/v1/collections/{name}/search`
    Search,
    /// `POST /api/v1/collections/{name}/documents`
    Insert,
    /// Tier control on the collection: in turn a status read, pin, demote, unpin and promote
    /// (`POST /api/v1/collections/{name}/tier`; see `requests::tier_op`).
    Tier,
}

impl Op {
    pub const ALL: [Op; 3] = [Op::Search, Op::Insert, Op::Tier];

    pub fn name(self) -> &'static str {
        match self {
            Op::Search => "search",
            Op::Insert => "insert",
            Op::Tier => "tier",
        }
    }

    pub fn index(self) -> usize {
        match self {
            Op::Search => 0,
            Op::Insert => 1,
            Op::Tier => 2,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Integer weights per operation; a request picks an operation with probability weight / sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    weights: [u32; 3],
}

impl Mix {
    pub const DEFAULT: &'static str = "search=70,insert=20,tier=10";

    pub fn new(search: u32, insert: u32, tier: u32) -> Result<Mix, String> {
        let mix = Mix {
            weights: [search, insert, tier],
        };
        if mix.total() == 0 {
            return Err(
                "the mix weights sum to 0: give at least one operation a weight > 0".into(),
            );
        }
        Ok(mix)
    }

    pub fn weight(&self, op: Op) -> u32 {
        self.weights[op.index()]
    }

    pub fn total(&self) -> u64 {
        self.weights.iter().map(|&w| u64::from(w)).sum()
    }

    /// The operations with a weight > 0.
    pub fn ops(&self) -> Vec<Op> {
        Op::ALL
            .into_iter()
            .filter(|&o| self.weight(o) > 0)
            .collect()
    }

    /// The share of `op`, 0..=1.
    pub fn fraction(&self, op: Op) -> f64 {
        f64::from(self.weight(op)) / self.total() as f64
    }

    /// Picks an operation from a uniformly random `r`.
    pub fn pick(&self, r: u64) -> Op {
        let mut x = r % self.total();
        for op in Op::ALL {
            let w = u64::from(self.weight(op));
            if x < w {
                return op;
            }
            x -= w;
        }
        unreachable!("x < total")
    }
}

impl Default for Mix {
    fn default() -> Self {
        Mix::DEFAULT.parse().expect("the default mix parses")
    }
}

impl FromStr for Mix {
    type Err = String;

    /// `search=70,insert=20,tier=10`; omitted operations get weight 0.
    fn from_str(s: &str) -> Result<Mix, String> {
        let mut weights: [Option<u32>; 3] = [None; 3];
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| format!("mix entry {part:?} is not NAME=WEIGHT"))?;
            let op = match name.trim() {
                "search" => Op::Search,
                "insert" => Op::Insert,
                "tier" => Op::Tier,
                other => {
                    return Err(format!(
                        "unknown operation {other:?} in the mix (known: search, insert, tier)"
                    ));
                }
            };
            let w: u32 = value
                .trim()
                .parse()
                .map_err(|_| format!("weight {value:?} of {op} is not a non-negative integer"))?;
            if weights[op.index()].replace(w).is_some() {
                return Err(format!("operation {op} appears twice in the mix"));
            }
        }
        Mix::new(
            weights[0].unwrap_or(0),
            weights[1].unwrap_or(0),
            weights[2].unwrap_or(0),
        )
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "search={},insert={},tier={}",
            self.weights[0], self.weights[1], self.weights[2]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_default_and_partial_mixes() {
        let m: Mix = "search=70,insert=20,tier=10".parse().unwrap();
        assert_eq!(m, Mix::new(70, 20, 10).unwrap());
        assert_eq!(Mix::default(), m);
        assert_eq!(m.to_string(), "search=70,insert=20,tier=10");
        let m: Mix = " insert = 3 , search=1 ".parse().unwrap();
        assert_eq!(m, Mix::new(1, 3, 0).unwrap());
        assert_eq!(m.ops(), vec![Op::Search, Op::Insert]);
        assert!((m.fraction(Op::Insert) - 0.75).abs() < 1e-12);
    }

    #[test]
    fn rejects_bad_mixes() {
        for (bad, needle) in [
            ("search=70,delete=30", "unknown operation"),
            ("search=0,insert=0", "sum to 0"),
            ("", "sum to 0"),
            ("search", "NAME=WEIGHT"),
            ("search=-1", "non-negative"),
            ("search=1.5", "non-negative"),
            ("search=1,search=2", "twice"),
        ] {
            let err = bad.parse::<Mix>().unwrap_err();
            assert!(err.contains(needle), "{bad:?}: {err}");
        }
    }

    #[test]
    fn pick_follows_the_weights_exactly_over_one_cycle() {
        let m = Mix::new(7, 2, 1).unwrap();
        let mut counts = [0; 3];
        for r in 0..10u64 {
            counts[m.pick(r).index()] += 1;
        }
        assert_eq!(counts, [7, 2, 1]);
        // A zero weight is never picked.
        let m = Mix::new(0, 1, 0).unwrap();
        assert!((0..100).all(|r| m.pick(r) == Op::Insert));
    }
}

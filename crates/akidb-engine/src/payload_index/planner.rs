//! The filtered-search planner: scan the candidate slots the payload indexes gave, or walk the
//! HNSW graph with the filter.
//!
//! # Cost model
//!
//! The same as the core index's own choice (`VectorIndex::too_selective`, see the module docs
//! of `akidb_core::index`), with the selectivity known instead of sampled. With `c` candidates
//! out of `n` live documents, `p = c / n`:
//! - the graph walk must visit about `ef / p` nodes, each a distance evaluation, to collect
//!   `ef` admitted ones;
//! - the scan evaluates the filter and the distance of each candidate: about `c = p · n`.
//!
//! Core scans when `p² · n <= 2 · ef`; in candidates that is `c² <= 2 · ef · n`. Here the
//! factor is [`SCAN_FACTOR`] (16), measured: the walk's cost per admitted node is larger than
//! one distance, since every expanded node's neighbours are evaluated:
//!
//! ```text
//! Scan  ⇔  c² <= 16 · ef · n        (ef = max(ef, k))
//! ```
//!
//! and besides, always [`Plan::Scan`] when `c <= k` (every candidate is an answer) or when
//! `n` is below [`BRUTE_FORCE_THRESHOLD`] (core would then scan all `n` slots, and `c` is
//! fewer). Without candidates (the indexes could not bound the filter) the graph is walked,
//! and core still falls back to a scan on its own sampled estimate.
//!
//! The candidates are a superset of the matches when some clause was not answered by an
//! index, so `p` is then an overestimate and the plan leans to the graph (which is what core
//! would choose without indexes). Pass the count of live candidates
//! ([`super::Candidates::retain_live`]); core counts `n` over the graph's slots, dead ones
//! included, so passing all slots instead of live ones matches core exactly.

use akidb_core::index::BRUTE_FORCE_THRESHOLD;

/// `c² <= SCAN_FACTOR · ef · n` scans. Core's factor is 2; measured with a payload index on
/// minilm (20,000 × 384, `ef` 24; BENCHMARKS.md "Filtered search"), scanning the 2,000
/// candidates of a 10% filter was 1.5× faster than the filtered walk and the 10,000 of a 50%
/// filter 6× slower: the walk evaluates the neighbours of every node it expands (up to 2M on
/// level 0), not one distance per node, and its filter checks read JSON. The crossover sits near
/// 12–16; 16 is used.
const SCAN_FACTOR: u128 = 16;

/// How a filtered search runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Brute force over the candidate slots (live ones matching the full filter).
    Scan,
    /// HNSW walk with the filter as its admission check.
    Graph,
}

/// Chooses how to search `k` nearest among `candidates_len` candidates (None: unbounded) out of
/// `live` documents, with beam width `ef` (see the module docs for the formula).
pub(crate) fn plan(candidates_len: Option<usize>, live: usize, ef: usize, k: usize) -> Plan {
    let Some(c) = candidates_len else {
        return Plan::Graph;
    };
    let ef = ef.max(k) as u128;
    let (c, n) = (c as u128, live as u128);
    if c <= k as u128
        || live < BRUTE_FORCE_THRESHOLD
        || c * c <= (SCAN_FACTOR * ef).saturating_mul(n)
    {
        Plan::Scan
    } else {
        Plan::Graph
    }
}

//! The `tiered` scenario: many collections, most of them cold.
//!
//! After the preload, the collections are split by rank (rank = index, 0 = most popular): the
//! first few are kept hot (`promote` to hot), the next ones are demoted to warm, the rest to
//! cold, each with `POST /api/v1/collections/{name}/tier`. Then, for a sample of each tier, the
//! tier is read back (`GET .../tier`) and the first search after the move is timed: one latency
//! series per tier. The run's requests then pick collections Zipf-like over the ranks (a few
//! hot collections get most requests, a long tail goes to the cold ones), so the server's
//! promotion rule (accesses within a window) moves the tail up; `GET /api/v1/tiers` before and
//! after the run, and each collection's tier before and after, show how far.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Instant;

use akidb_api::{Tier, TierAction, TierRequest, TierStatus, TiersResponse};
use anyhow::{Result, bail};
use serde::Serialize;

use crate::raw::{Raw, collection_path};
use crate::section::{SeriesReport, counts, opt};
use crate::stats::{OpStats, Outcome};
use crate::zipf::Zipf;

/// Exponent of the Zipf choice over the collection ranks: rank r gets weight 1 / (r + 1)^s.
pub const ZIPF_EXPONENT: f64 = 1.0;
/// At most this many collections per tier get a first-query measurement (of the cold group at
/// most half, so that part of the tail is still cold when the run starts).
pub const FIRST_QUERY_SAMPLES: usize = 4;
/// Fewest collections the scenario runs with (one per tier).
pub const MIN_COLLECTIONS: usize = 3;

pub const TIERS: [Tier; 3] = [Tier::Hot, Tier::Warm, Tier::Cold];

pub fn tier_name(t: Tier) -> &'static str {
    match t {
        Tier::Hot => "hot",
        Tier::Warm => "warm",
        Tier::Cold => "cold",
    }
}

/// How many collections go to each tier, by rank: the first `hot`, then `warm`, then the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub hot: usize,
    pub warm: usize,
    pub cold: usize,
}

impl Split {
    /// A tenth hot, a fifth warm (at least one each), the rest cold. `n >= MIN_COLLECTIONS`.
    pub fn of(n: usize) -> Split {
        assert!(
            n >= MIN_COLLECTIONS,
            "the tiered split needs {MIN_COLLECTIONS} collections"
        );
        let hot = (n / 10).max(1);
        let warm = (n / 5).max(1);
        Split {
            hot,
            warm,
            cold: n - hot - warm,
        }
    }

    pub fn tier_of(&self, rank: usize) -> Tier {
        if rank < self.hot {
            Tier::Hot
        } else if rank < self.hot + self.warm {
            Tier::Warm
        } else {
            Tier::Cold
        }
    }

    /// The ranks whose first search is measured: the first of each group, at most
    /// [`FIRST_QUERY_SAMPLES`], and at most half of the cold group (rounded up). A first search
    /// moves a cold collection, so the most popular cold ones are sampled and the rest of the
    /// tail is left cold for the run.
    pub fn first_query_ranks(&self, t: Tier) -> std::ops::Range<usize> {
        let r = self.ranks(t);
        let cap = match t {
            Tier::Cold => r.len().div_ceil(2),
            _ => r.len(),
        };
        r.start..r.start + cap.min(FIRST_QUERY_SAMPLES)
    }

    /// The ranks of one tier's group.
    pub fn ranks(&self, t: Tier) -> std::ops::Range<usize> {
        match t {
            Tier::Hot => 0..self.hot,
            Tier::Warm => self.hot..self.hot + self.warm,
            Tier::Cold => self.hot + self.warm..self.hot + self.warm + self.cold,
        }
    }
}

/// One first search after a move.
#[derive(Debug, Clone, Serialize)]
pub struct FirstQuerySample {
    pub collection: String,
    /// Where the setup moved it.
    pub moved_to: Tier,
    /// Read back (`GET .../tier`) just before the search: the series it belongs to.
    pub tier_before: Tier,
    /// The server's count of recent reads and writes (the promotion rule's input) before it.
    pub recent_accesses_before: u64,
    /// Of a successful search, from just before the send to the decoded answer.
    pub latency_ms: Option<f64>,
    /// Of a failed search: HTTP status and code, or the transport error kind.
    pub error: Option<String>,
    /// Read back just after the search (absent when that read failed).
    pub tier_after: Option<Tier>,
}

/// The first searches of one tier.
#[derive(Debug, Clone, Serialize)]
pub struct FirstQueryReport {
    pub latency: SeriesReport,
    /// Samples whose collection was hot right after its first search although it was not
    /// before (the search promoted it; its latency includes the load into RAM).
    pub promoted_by_the_search: u64,
    pub samples: Vec<FirstQuerySample>,
}

/// `GET /api/v1/tiers` at three moments (absent when that read failed).
#[derive(Debug, Clone, Serialize)]
pub struct TierCounts {
    /// After the setup's moves, before the first queries.
    pub after_moves: Option<TiersResponse>,
    /// After the first queries, just before the run (warm-up included).
    pub before_run: Option<TiersResponse>,
    pub after_run: Option<TiersResponse>,
}

/// The `tiered` part of the report.
#[derive(Debug, Clone, Serialize)]
pub struct TieredReport {
    /// By rank (0 = most requested): kept hot, demoted to warm, demoted to cold.
    pub hot_collections: Vec<String>,
    pub warm_collections: Vec<String>,
    pub cold_collections: Vec<String>,
    pub zipf_exponent: f64,
    /// Share of the run's requests the Zipf choice sends to each group, percent.
    pub expected_share_percent: BTreeMap<String, f64>,
    /// The setup's tier commands (`promote_to_hot`, `demote_to_warm`, `demote_to_cold`): latency
    /// of the successful ones, failures by HTTP status and error code.
    pub moves: BTreeMap<String, SeriesReport>,
    /// Tier status reads (`GET .../tier`, `GET /api/v1/tiers`) of the setup and the end.
    pub status_reads: SeriesReport,
    /// First search after the move, by the tier read back just before it (`hot`, `warm`,
    /// `cold`; a tier without a sample has an empty series).
    pub first_query: BTreeMap<String, FirstQueryReport>,
    pub tiers: TierCounts,
    /// Per collection, its tier before the run -> after it (`cold -> hot`: count); `unknown`
    /// where a read failed.
    pub transitions: BTreeMap<String, u64>,
}

/// Between the setup and the end of the run.
pub struct Tiered {
    split: Split,
    moves: BTreeMap<String, OpStats>,
    status_reads: OpStats,
    first_query: BTreeMap<&'static str, (OpStats, Vec<FirstQuerySample>)>,
    after_moves: Option<TiersResponse>,
    before_run: Option<TiersResponse>,
    /// Each collection's tier just before the run, when known.
    tier_before_run: Vec<Option<Tier>>,
}

fn describe(o: &Outcome) -> Option<String> {
    match o {
        Outcome::Ok { .. } => None,
        Outcome::Http { status, code, .. } => Some(format!(
            "HTTP {status} {}",
            code.as_deref().unwrap_or("(no error code)")
        )),
        Outcome::Transport(kind) => Some(format!("transport: {kind}")),
    }
}

impl Tiered {
    /// `GET .../tier`, counted in the status reads.
    async fn read_tier(&mut self, raw: &Raw, name: &str) -> Option<TierStatus> {
        let t0 = Instant::now();
        let r = raw.get::<TierStatus>(&collection_path(name, "/tier")).await;
        let outcome = match &r {
            Ok(_) => Outcome::Ok { recall: None },
            Err(f) => f.outcome(),
        };
        self.status_reads.record(t0.elapsed(), &outcome);
        r.ok()
    }

    /// `GET /api/v1/tiers`, counted in the status reads.
    async fn read_tiers(&mut self, raw: &Raw) -> Option<TiersResponse> {
        let t0 = Instant::now();
        let r = raw.get::<TiersResponse>("/api/v1/tiers").await;
        let outcome = match &r {
            Ok(_) => Outcome::Ok { recall: None },
            Err(f) => f.outcome(),
        };
        self.status_reads.record(t0.elapsed(), &outcome);
        r.ok()
    }

    /// Moves the collections to their tiers, then times the first search of a sample of each
    /// tier. `first_search(rank)` sends one search to collection `rank`. Fails only when the
    /// server has no tier API; a failed move is counted with its status and code.
    pub async fn prepare(
        raw: &Raw,
        names: &[String],
        first_search: impl AsyncFn(usize) -> Outcome,
    ) -> Result<Tiered> {
        let split = Split::of(names.len());
        let mut t = Tiered {
            split,
            moves: BTreeMap::new(),
            status_reads: OpStats::default(),
            first_query: TIERS
                .iter()
                .map(|&tier| (tier_name(tier), (OpStats::default(), Vec::new())))
                .collect(),
            after_moves: None,
            before_run: None,
            tier_before_run: vec![None; names.len()],
        };
        for (rank, name) in names.iter().enumerate() {
            let target = split.tier_of(rank);
            let (key, action) = match target {
                Tier::Hot => ("promote_to_hot", TierAction::Promote),
                Tier::Warm => ("demote_to_warm", TierAction::Demote),
                Tier::Cold => ("demote_to_cold", TierAction::Demote),
            };
            let req = TierRequest {
                action,
                target: Some(target),
            };
            let t0 = Instant::now();
            let r = raw
                .post::<_, TierStatus>(&collection_path(name, "/tier"), &req)
                .await;
            let latency = t0.elapsed();
            let outcome = match &r {
                Ok(_) => Outcome::Ok { recall: None },
                Err(f) => f.outcome(),
            };
            if let Err(f) = &r
                && matches!(f.error.code(), Some("not_found" | "method_not_allowed"))
            {
                bail!(
                    "the server at {} has no tier API (POST {} answered {}); the tiered scenario \
                     needs a server with hot/warm/cold tiers",
                    raw.base_url(),
                    collection_path(name, "/tier"),
                    f
                );
            }
            t.moves
                .entry(key.to_string())
                .or_default()
                .record(latency, &outcome);
            t.tier_before_run[rank] = r.ok().map(|s| s.tier);
        }
        eprintln!(
            "[akidb-load] tiers set: {} hot, {} warm, {} cold",
            split.hot, split.warm, split.cold
        );
        t.after_moves = t.read_tiers(raw).await;

        for tier in TIERS {
            for rank in split.first_query_ranks(tier) {
                let name = &names[rank];
                // Confirm the tier; without it the sample would land in an unknown series.
                let Some(before) = t.read_tier(raw, name).await else {
                    continue;
                };
                let t0 = Instant::now();
                let outcome = first_search(rank).await;
                let latency = t0.elapsed();
                let after = t.read_tier(raw, name).await.map(|s| s.tier);
                t.tier_before_run[rank] = after;
                let (stats, samples) = t
                    .first_query
                    .get_mut(tier_name(before.tier))
                    .expect("every tier has a series");
                stats.record(latency, &outcome);
                samples.push(FirstQuerySample {
                    collection: name.clone(),
                    moved_to: tier,
                    tier_before: before.tier,
                    recent_accesses_before: before.recent_accesses,
                    latency_ms: matches!(outcome, Outcome::Ok { .. })
                        .then(|| latency.as_secs_f64() * 1000.0),
                    error: describe(&outcome),
                    tier_after: after,
                });
            }
        }
        t.before_run = t.read_tiers(raw).await;
        Ok(t)
    }

    /// The Zipf choice over the ranks the run uses.
    pub fn zipf(&self) -> Zipf {
        Zipf::new(
            self.split.hot + self.split.warm + self.split.cold,
            ZIPF_EXPONENT,
        )
    }

    /// Reads the tiers after the run and builds the report. Adds notes that explain the
    /// figures (promotion by the first search, tiers that did not stay put).
    pub async fn finish(
        mut self,
        raw: &Raw,
        names: &[String],
        notes: &mut Vec<String>,
    ) -> TieredReport {
        let after_run = self.read_tiers(raw).await;
        let mut transitions = BTreeMap::new();
        for (rank, name) in names.iter().enumerate() {
            let after = self.read_tier(raw, name).await.map(|s| s.tier);
            let show = |t: Option<Tier>| t.map_or("unknown", tier_name);
            let key = format!("{} -> {}", show(self.tier_before_run[rank]), show(after));
            *transitions.entry(key).or_insert(0u64) += 1;
        }
        let zipf = self.zipf();
        let split = self.split;
        let group = |t: Tier| names[split.ranks(t)].to_vec();
        let first_query: BTreeMap<String, FirstQueryReport> = self
            .first_query
            .into_iter()
            .map(|(tier, (stats, samples))| {
                let promoted = samples
                    .iter()
                    .filter(|s| s.tier_before != Tier::Hot && s.tier_after == Some(Tier::Hot))
                    .count() as u64;
                let r = FirstQueryReport {
                    latency: SeriesReport::new(&stats),
                    promoted_by_the_search: promoted,
                    samples,
                };
                (tier.to_string(), r)
            })
            .collect();
        let promoted: u64 = first_query.values().map(|f| f.promoted_by_the_search).sum();
        if promoted > 0 {
            notes.push(format!(
                "{promoted} first searches promoted their warm/cold collection to hot: the server \
                 counts reads and writes (the preload's included) within its promotion window, \
                 and at its threshold (by default 2 accesses within 60 s) a read loads the \
                 collection into RAM first, so those latencies include that load (see `tier \
                 after` per sample)."
            ));
        }
        let misplaced = first_query
            .values()
            .flat_map(|f| &f.samples)
            .filter(|s| s.tier_before != s.moved_to)
            .count();
        if misplaced > 0 {
            notes.push(format!(
                "{misplaced} sampled collections were not in the tier the setup moved them to \
                 when read back (a failed move, or the server's tiering policy moved them; start \
                 the server with `--tiering false` to keep tiers put); each first query is \
                 counted under the tier read back."
            ));
        }
        TieredReport {
            hot_collections: group(Tier::Hot),
            warm_collections: group(Tier::Warm),
            cold_collections: group(Tier::Cold),
            zipf_exponent: ZIPF_EXPONENT,
            expected_share_percent: TIERS
                .iter()
                .map(|&t| (tier_name(t).to_string(), zipf.share(split.ranks(t)) * 100.0))
                .collect(),
            moves: self
                .moves
                .iter()
                .map(|(k, s)| (k.clone(), SeriesReport::new(s)))
                .collect(),
            status_reads: SeriesReport::new(&self.status_reads),
            first_query,
            tiers: TierCounts {
                after_moves: self.after_moves,
                before_run: self.before_run,
                after_run,
            },
            transitions,
        }
    }
}

impl TieredReport {
    pub fn to_markdown(&self, s: &mut String) {
        let _ = writeln!(s, "\n## Tiers\n");
        let _ = writeln!(
            s,
            "{} collections by rank: {} kept hot, {} demoted to warm, {} demoted to cold. The \
             run picks collections Zipf-like (rank r with weight 1/(r+1)^{}): {:.0} % of the \
             requests go to the hot group, {:.0} % to the warm one, {:.0} % to the cold tail.\n",
            self.hot_collections.len() + self.warm_collections.len() + self.cold_collections.len(),
            self.hot_collections.len(),
            self.warm_collections.len(),
            self.cold_collections.len(),
            self.zipf_exponent,
            self.expected_share_percent
                .get("hot")
                .copied()
                .unwrap_or(0.0),
            self.expected_share_percent
                .get("warm")
                .copied()
                .unwrap_or(0.0),
            self.expected_share_percent
                .get("cold")
                .copied()
                .unwrap_or(0.0),
        );
        let _ = writeln!(s, "### First search after the move\n");
        let _ = writeln!(
            s,
            "Tier read back just before the search; latency from the send to the decoded answer.\n"
        );
        let _ = writeln!(
            s,
            "| tier | samples | ok | errors | min ms | p50 ms | max ms | promoted to hot by it | errors by status | by code |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---|---|");
        for t in TIERS {
            let Some(f) = self.first_query.get(tier_name(t)) else {
                continue;
            };
            let l = f.latency.latency_ms.as_ref();
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                tier_name(t),
                f.latency.attempted,
                f.latency.ok,
                f.latency.errors,
                opt(l.map(|l| l.min_ms), 2),
                opt(l.map(|l| l.p50_ms), 2),
                opt(l.map(|l| l.max_ms), 2),
                f.promoted_by_the_search,
                counts(&f.latency.errors_by_status),
                counts(&f.latency.errors_by_code),
            );
        }
        let _ = writeln!(
            s,
            "\n| collection | moved to | tier before | recent accesses before | latency ms | tier after |"
        );
        let _ = writeln!(s, "|---|---|---|---:|---:|---|");
        for f in TIERS
            .iter()
            .filter_map(|&t| self.first_query.get(tier_name(t)))
        {
            for x in &f.samples {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} |",
                    x.collection,
                    tier_name(x.moved_to),
                    tier_name(x.tier_before),
                    x.recent_accesses_before,
                    x.latency_ms.map_or_else(
                        || x.error.clone().unwrap_or_default(),
                        |l| format!("{l:.2}")
                    ),
                    x.tier_after.map_or("unknown", tier_name),
                );
            }
        }

        let _ = writeln!(s, "\n### Tier moves of the setup\n");
        let _ = writeln!(
            s,
            "| move | attempted | ok | errors | p50 ms | max ms | errors by status | by code |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---|---|");
        for (name, m) in self
            .moves
            .iter()
            .map(|(k, v)| (k.as_str(), v))
            .chain([("status reads", &self.status_reads)])
        {
            let l = m.latency_ms.as_ref();
            let _ = writeln!(
                s,
                "| {name} | {} | {} | {} | {} | {} | {} | {} |",
                m.attempted,
                m.ok,
                m.errors,
                opt(l.map(|l| l.p50_ms), 2),
                opt(l.map(|l| l.max_ms), 2),
                counts(&m.errors_by_status),
                counts(&m.errors_by_code),
            );
        }

        let _ = writeln!(s, "\n### Collections per tier (`GET /api/v1/tiers`)\n");
        let _ = writeln!(s, "Every collection on the server, not only this run's.\n");
        let _ = writeln!(s, "| when | hot | warm | cold |");
        let _ = writeln!(s, "|---|---:|---:|---:|");
        for (when, c) in [
            ("after the moves", &self.tiers.after_moves),
            ("before the run", &self.tiers.before_run),
            ("after the run", &self.tiers.after_run),
        ] {
            match c {
                Some(c) => {
                    let _ = writeln!(
                        s,
                        "| {when} | {} | {} | {} |",
                        c.hot.collections, c.warm.collections, c.cold.collections
                    );
                }
                None => {
                    let _ = writeln!(s, "| {when} | read failed | read failed | read failed |");
                }
            }
        }
        let _ = writeln!(
            s,
            "\nPer collection, tier before the run -> after it: {}.",
            counts(&self.transitions)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_a_few_hot_some_warm_and_the_rest_cold() {
        assert_eq!(
            Split::of(20),
            Split {
                hot: 2,
                warm: 4,
                cold: 14
            }
        );
        let s = Split::of(3);
        assert_eq!((s.hot, s.warm, s.cold), (1, 1, 1));
        assert_eq!(
            (0..3).map(|r| s.tier_of(r)).collect::<Vec<_>>(),
            vec![Tier::Hot, Tier::Warm, Tier::Cold]
        );
        let s = Split::of(20);
        assert_eq!(s.ranks(Tier::Warm), 2..6);
        assert_eq!(s.ranks(Tier::Cold), 6..20);
        assert_eq!(s.tier_of(5), Tier::Warm);
        assert_eq!(s.tier_of(6), Tier::Cold);
        // First queries: up to 4 per group, at most half of the cold tail.
        assert_eq!(s.first_query_ranks(Tier::Hot), 0..2);
        assert_eq!(s.first_query_ranks(Tier::Warm), 2..6);
        assert_eq!(s.first_query_ranks(Tier::Cold), 6..10);
        let s = Split::of(5);
        assert_eq!((s.hot, s.warm, s.cold), (1, 1, 3));
        assert_eq!(s.first_query_ranks(Tier::Cold), 2..4);
        assert_eq!(Split::of(3).first_query_ranks(Tier::Cold), 2..3);
    }
}

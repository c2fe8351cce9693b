//! The `tiered` part of the report: the setup's tier moves, the first search per tier, the tier
//! counts before and after the run ([`TieredReport`]), and its Markdown section.

use std::collections::BTreeMap;
use std::fmt::Write;

use akidb_api::{Tier, TiersResponse};
use serde::Serialize;

use super::split::{TIERS, tier_name};
use crate::section::{ReportSection, SeriesReport, counts, opt};

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

impl ReportSection for TieredReport {
    const KEY: &'static str = "tiered";

    /// The `## Tiers` section.
    fn markdown_after_operations(&self, s: &mut String) {
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

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
//!
//! This file holds the scenario's hooks ([`TieredHooks`]) and what they run: the setup and the
//! end-of-run reads ([`Tiered`]). The split by rank is in `split.rs`, the report section in
//! `report.rs`.

pub mod report;
pub mod split;

use std::collections::BTreeMap;
use std::time::Instant;

use akidb_api::{Tier, TierAction, TierRequest, TierStatus, TiersResponse};
use anyhow::{Result, bail};

use crate::hooks::ScenarioHooks;
use crate::mix::Op;
use crate::raw::{Raw, collection_path};
use crate::requests::{CollectionChoice, Requests};
use crate::rng::Rng;
use crate::section::SeriesReport;
use crate::stats::{OpStats, Outcome};
use crate::zipf::Zipf;
use report::{FirstQueryReport, FirstQuerySample, TierCounts, TieredReport};
use split::{Split, TIERS, ZIPF_EXPONENT, tier_name};

/// The `tiered` scenario's hooks: requests pick collections Zipf-like by rank; the prepare
/// phase moves the collections to their tiers and times a first search per tier; the end reads
/// the tiers again.
#[derive(Default)]
pub struct TieredHooks {
    /// Set by `prepare`.
    tiered: Option<Tiered>,
}

impl ScenarioHooks for TieredHooks {
    type Section = TieredReport;

    fn collection_choice(&self, collections: usize) -> CollectionChoice {
        CollectionChoice::Zipf(Zipf::new(collections, ZIPF_EXPONENT))
    }

    /// Moves the collections to their tiers and times the first search of each tier.
    async fn prepare(&mut self, requests: &Requests, notes: &mut Vec<String>) -> Result<()> {
        let first_search = async |c: usize| {
            let rng = Rng::derive(requests.seed, 0x6671, c as u64);
            requests.execute_on(Op::Search, c, rng, 0).await
        };
        let tiered = Tiered::prepare(&requests.raw, &requests.names, first_search).await?;
        self.tiered = Some(tiered);
        notes.push(format!(
            "tiered: requests pick collection i with weight 1/(i+1)^{} (Zipf), so the few hot \
             collections get most of them and the cold tail a few each; the server's promotion \
             rule decides how many of the tail end up hot (see Tiers).",
            ZIPF_EXPONENT
        ));
        Ok(())
    }

    /// Reads the tiers after the run (before the cleanup deletes the collections).
    async fn finish(
        self,
        requests: &Requests,
        _totals: &OpStats,
        notes: &mut Vec<String>,
    ) -> Option<TieredReport> {
        match self.tiered {
            Some(t) => Some(t.finish(&requests.raw, &requests.names, notes).await),
            None => None,
        }
    }
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

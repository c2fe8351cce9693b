//! Named scenarios: each sets the defaults of the knobs (explicit flags override), and
//! [`Scenario::availability`] is the one place that decides whether a scenario can run.

use clap::ValueEnum;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Small and quick: 2 collections x 1,000 vectors, dim 64, closed loop with 4 workers, 10 s.
    Baseline,
    /// 10 minutes of open-loop load at a fixed rate.
    Sustained,
    /// Open loop whose rate jumps 5x for the middle third of the measured phase.
    Spike,
    /// 100 collections with 100 vectors each, open loop.
    ManyCollections,
    /// 20 collections x 2,000 vectors, most of them demoted to cold: first-query latency per
    /// tier, then a Zipf-skewed open loop at 50 req/s for 30 s, tier counts before/after.
    Tiered,
    /// Baseline-like load (30 s) against a server started with `--test-faults` (testing only):
    /// `/ready` polled during the run, object-store counters, errors by status and code.
    FailureInjection,
    /// 1 collection x 10,000 vectors (use `--dataset` for MiniLM), closed loop with 4 workers,
    /// 120 s: inserts replace existing ids with changed vectors, and every search's recall@k
    /// at the default ef is measured against the server's exact answer.
    Churn,
}

/// Closed loop (N workers back to back) or open loop (a fixed arrival rate).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    Closed { workers: usize },
    Open { qps: f64 },
}

/// The knob defaults a scenario sets.
#[derive(Debug, Clone, PartialEq)]
pub struct Defaults {
    pub duration_secs: f64,
    pub warmup_secs: f64,
    pub load: Load,
    pub spike_factor: f64,
    pub collections: usize,
    pub dimension: usize,
    pub vectors_per_collection: usize,
    pub cleanup: bool,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Baseline => "baseline",
            Scenario::Sustained => "sustained",
            Scenario::Spike => "spike",
            Scenario::ManyCollections => "many-collections",
            Scenario::Tiered => "tiered",
            Scenario::FailureInjection => "failure-injection",
            Scenario::Churn => "churn",
        }
    }

    /// Whether the server side the scenario needs exists. Every scenario can run now: the
    /// tier API serves `tiered` (a server without it stops the run with exit 1), and
    /// `failure-injection` runs against whatever server `--url` names and reports what it could
    /// check (it cannot tell from outside whether the server injects faults). A scenario that
    /// needs a server feature not yet built returns `Err` here (exit 2, nothing run).
    pub fn availability(self) -> Result<(), String> {
        match self {
            Scenario::Baseline
            | Scenario::Sustained
            | Scenario::Spike
            | Scenario::ManyCollections
            | Scenario::Tiered
            | Scenario::FailureInjection
            | Scenario::Churn => Ok(()),
        }
    }

    pub fn defaults(self) -> Defaults {
        let base = Defaults {
            duration_secs: 10.0,
            warmup_secs: 2.0,
            load: Load::Closed { workers: 4 },
            spike_factor: 1.0,
            collections: 2,
            dimension: 64,
            vectors_per_collection: 1000,
            cleanup: true,
        };
        match self {
            Scenario::Baseline => base,
            Scenario::Tiered => Defaults {
                duration_secs: 30.0,
                // The first requests to the cold tail are what the scenario is about.
                warmup_secs: 0.0,
                load: Load::Open { qps: 50.0 },
                collections: 20,
                dimension: 64,
                vectors_per_collection: 2_000,
                ..base
            },
            Scenario::FailureInjection => Defaults {
                duration_secs: 30.0,
                ..base
            },
            // Long enough for the replacements (20 % of the requests) to leave about as many
            // dead slots as there are live documents, where compaction starts.
            Scenario::Churn => Defaults {
                duration_secs: 120.0,
                collections: 1,
                vectors_per_collection: 10_000,
                ..base
            },
            Scenario::Sustained => Defaults {
                duration_secs: 600.0,
                warmup_secs: 10.0,
                load: Load::Open { qps: 100.0 },
                collections: 2,
                dimension: 128,
                vectors_per_collection: 10_000,
                cleanup: false,
                ..base
            },
            Scenario::Spike => Defaults {
                duration_secs: 60.0,
                warmup_secs: 5.0,
                load: Load::Open { qps: 50.0 },
                spike_factor: 5.0,
                collections: 2,
                dimension: 128,
                vectors_per_collection: 5_000,
                cleanup: false,
            },
            Scenario::ManyCollections => Defaults {
                duration_secs: 60.0,
                warmup_secs: 5.0,
                load: Load::Open { qps: 100.0 },
                collections: 100,
                dimension: 64,
                vectors_per_collection: 100,
                cleanup: false,
                ..base
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_runs_with_its_defaults() {
        for s in Scenario::value_variants() {
            assert_eq!(s.availability(), Ok(()), "{}", s.name());
        }
        assert_eq!(
            Scenario::Baseline.defaults().load,
            Load::Closed { workers: 4 }
        );
        assert_eq!(Scenario::Sustained.defaults().duration_secs, 600.0);
        assert!(matches!(Scenario::Spike.defaults().load, Load::Open { .. }));
        assert!(Scenario::Spike.defaults().spike_factor > 1.0);
        assert_eq!(Scenario::ManyCollections.defaults().collections, 100);
        let t = Scenario::Tiered.defaults();
        assert_eq!(
            (t.collections, t.vectors_per_collection, t.dimension),
            (20, 2000, 64)
        );
        assert_eq!(t.load, Load::Open { qps: 50.0 });
        assert!(t.collections >= crate::tiered::split::MIN_COLLECTIONS);
        let f = Scenario::FailureInjection.defaults();
        assert_eq!(f.load, Load::Closed { workers: 4 });
        assert_eq!(
            (f.collections, f.vectors_per_collection, f.dimension),
            (2, 1000, 64)
        );
        let c = Scenario::Churn.defaults();
        assert_eq!((c.collections, c.vectors_per_collection), (1, 10_000));
        assert_eq!(c.load, Load::Closed { workers: 4 });
        assert!(c.cleanup);
    }
}

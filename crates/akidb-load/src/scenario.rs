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
    /// Hot/cold tier movement under load. Needs the tier API (not available yet).
    Tiered,
    /// Load while the object store injects faults. Needs a fault-injecting object store
    /// (not available yet).
    FailureInjection,
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
        }
    }

    /// Whether the server side the scenario needs exists. To enable `tiered` or
    /// `failure-injection` once the tier API / fault-injecting object store lands, return `Ok`
    /// here and give the scenario its operations in `runner` (and its defaults below).
    pub fn availability(self) -> Result<(), String> {
        match self {
            Scenario::Baseline
            | Scenario::Sustained
            | Scenario::Spike
            | Scenario::ManyCollections => Ok(()),
            Scenario::Tiered => Err(
                "scenario `tiered` is not available yet: it needs the tier API (moving collections \
                 between hot and cold tiers), which the AkiDB server does not have. Nothing was run."
                    .into(),
            ),
            Scenario::FailureInjection => Err(
                "scenario `failure-injection` is not available yet: it needs a fault-injecting \
                 object store in the server, which does not exist. Nothing was run."
                    .into(),
            ),
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
            Scenario::Baseline | Scenario::Tiered | Scenario::FailureInjection => base,
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
    fn unavailable_scenarios_say_why_and_the_others_run() {
        for s in Scenario::value_variants() {
            match s {
                Scenario::Tiered | Scenario::FailureInjection => {
                    let msg = s.availability().unwrap_err();
                    assert!(msg.contains("not available yet"), "{msg}");
                }
                _ => assert!(s.availability().is_ok()),
            }
        }
        assert_eq!(
            Scenario::Baseline.defaults().load,
            Load::Closed { workers: 4 }
        );
        assert_eq!(Scenario::Sustained.defaults().duration_secs, 600.0);
        assert!(matches!(Scenario::Spike.defaults().load, Load::Open { .. }));
        assert!(Scenario::Spike.defaults().spike_factor > 1.0);
        assert_eq!(Scenario::ManyCollections.defaults().collections, 100);
    }
}

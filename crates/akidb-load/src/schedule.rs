//! The open-loop timeline. Request `i` is due at a fixed offset from the start that depends only
//! on `i` and the rate profile, never on how fast the server answered: a slow server cannot slow
//! the generator down, and latency is measured from the due time (coordinated omission
//! corrected).

use serde::Serialize;

/// A piecewise-constant arrival rate over `[0, end)` seconds from the start of the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateProfile {
    /// `(start_secs, requests_per_sec)`, sorted by start; each phase lasts until the next one
    /// (the last until `end_secs`).
    pub phases: Vec<(f64, f64)>,
    pub end_secs: f64,
}

impl RateProfile {
    /// `qps` requests per second for `total_secs`: request i is due at i / qps.
    pub fn constant(qps: f64, total_secs: f64) -> RateProfile {
        RateProfile {
            phases: vec![(0.0, qps)],
            end_secs: total_secs,
        }
    }

    /// `qps` during the warm-up and the first and last thirds of the measured phase, and
    /// `qps * factor` during its middle third.
    pub fn spike(qps: f64, warmup_secs: f64, duration_secs: f64, factor: f64) -> RateProfile {
        RateProfile::spike_repeated(qps, warmup_secs, duration_secs, factor, 1)
    }

    /// [`RateProfile::spike`] with `repeats` measured phases of `duration_secs` back to back
    /// after the warm-up (`--repeat`): each repeat has its own spike in its middle third.
    pub fn spike_repeated(
        qps: f64,
        warmup_secs: f64,
        duration_secs: f64,
        factor: f64,
        repeats: usize,
    ) -> RateProfile {
        let end_secs = warmup_secs + duration_secs * repeats as f64;
        if factor == 1.0 {
            return RateProfile::constant(qps, end_secs);
        }
        let third = duration_secs / 3.0;
        let mut phases = vec![(0.0, qps)];
        for r in 0..repeats {
            let start = warmup_secs + duration_secs * r as f64;
            phases.push((start + third, qps * factor));
            phases.push((start + 2.0 * third, qps));
        }
        RateProfile { phases, end_secs }
    }

    fn phase_end(&self, j: usize) -> f64 {
        self.phases
            .get(j + 1)
            .map_or(self.end_secs, |p| p.0)
            .min(self.end_secs)
    }

    /// Seconds from the start at which request `i` (0-based) is due, or `None` when the
    /// timeline holds fewer than `i + 1` requests.
    pub fn due(&self, i: u64) -> Option<f64> {
        let i = i as f64;
        let mut before = 0.0; // requests due in earlier phases
        for (j, &(start, rate)) in self.phases.iter().enumerate() {
            let end = self.phase_end(j);
            if rate <= 0.0 || end <= start {
                continue;
            }
            let here = (end - start) * rate;
            if i < before + here {
                return Some(start + (i - before) / rate);
            }
            before += here;
        }
        None
    }

    /// How many requests the timeline schedules.
    pub fn total_requests(&self) -> u64 {
        let mut n = 0.0;
        for (j, &(start, rate)) in self.phases.iter().enumerate() {
            let end = self.phase_end(j);
            if rate > 0.0 && end > start {
                n += (end - start) * rate;
            }
        }
        n.ceil() as u64
    }

    /// The target rate at `t` seconds.
    pub fn rate_at(&self, t: f64) -> f64 {
        self.phases
            .iter()
            .rev()
            .find(|p| p.0 <= t)
            .map_or(0.0, |p| p.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn constant_rate_is_i_over_qps() {
        let p = RateProfile::constant(100.0, 2.0);
        assert_eq!(p.due(0), Some(0.0));
        assert!(close(p.due(1).unwrap(), 0.01));
        assert!(close(p.due(150).unwrap(), 1.5));
        assert!(close(p.due(199).unwrap(), 1.99));
        assert_eq!(p.due(200), None);
        assert_eq!(p.total_requests(), 200);
        // Strictly increasing and independent of anything but i.
        let dues: Vec<f64> = (0..200).map(|i| p.due(i).unwrap()).collect();
        assert!(dues.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn spike_multiplies_the_rate_in_the_middle_third() {
        // 1 s warm-up, 3 s measured: [0,2) at 10/s, [2,3) at 50/s, [3,4) at 10/s.
        let p = RateProfile::spike(10.0, 1.0, 3.0, 5.0);
        assert_eq!(p.total_requests(), 20 + 50 + 10);
        assert!(close(p.due(19).unwrap(), 1.9));
        assert!(close(p.due(20).unwrap(), 2.0));
        assert!(close(p.due(21).unwrap(), 2.02));
        assert!(close(p.due(69).unwrap(), 2.98));
        assert!(close(p.due(70).unwrap(), 3.0));
        assert!(close(p.due(79).unwrap(), 3.9));
        assert_eq!(p.due(80), None);
        assert_eq!(p.rate_at(2.5), 50.0);
        assert_eq!(p.rate_at(0.5), 10.0);
        assert_eq!(p.rate_at(3.5), 10.0);
        assert_eq!(
            RateProfile::spike(10.0, 1.0, 3.0, 1.0),
            RateProfile::constant(10.0, 4.0)
        );
    }

    #[test]
    fn repeated_spikes_one_per_repeat() {
        // 1 s warm-up, 2 repeats of 3 s: spikes in [2,3) and [5,6).
        let p = RateProfile::spike_repeated(10.0, 1.0, 3.0, 5.0, 2);
        assert_eq!(p.end_secs, 7.0);
        assert_eq!(p.total_requests(), 20 + 50 + 20 + 50 + 10);
        for (t, rate) in [
            (0.5, 10.0),
            (2.5, 50.0),
            (4.0, 10.0),
            (5.5, 50.0),
            (6.5, 10.0),
        ] {
            assert_eq!(p.rate_at(t), rate, "at {t}");
        }
        assert_eq!(
            RateProfile::spike_repeated(10.0, 1.0, 3.0, 5.0, 1),
            RateProfile::spike(10.0, 1.0, 3.0, 5.0)
        );
        assert_eq!(
            RateProfile::spike_repeated(10.0, 1.0, 3.0, 1.0, 3),
            RateProfile::constant(10.0, 10.0)
        );
    }

    #[test]
    fn fractional_rates_and_empty_timelines() {
        let p = RateProfile::constant(0.5, 5.0);
        assert_eq!(p.due(0), Some(0.0));
        assert!(close(p.due(2).unwrap(), 4.0));
        assert_eq!(p.due(3), None);
        assert_eq!(p.total_requests(), 3);
        assert_eq!(RateProfile::constant(100.0, 0.0).due(0), None);
    }
}

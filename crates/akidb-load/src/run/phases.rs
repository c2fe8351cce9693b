//! The measured timeline: one warm-up, then `--repeat` measured phases of `--duration` back to
//! back ([`Phases`]); which phase a moment of the run falls in. Pure.

/// The measured phases: `repeats` of `duration_secs` back to back after `warmup_secs`.
#[derive(Debug, Clone, Copy)]
pub struct Phases {
    pub warmup_secs: f64,
    pub duration_secs: f64,
    pub repeats: usize,
}

impl Phases {
    /// The repeat (0-based) a time `t_secs` from the start of the run falls in; `None` during
    /// the warm-up. Times past the last repeat count in the last one (a closed-loop request
    /// that started before the end and finished after it).
    pub fn repeat_at(&self, t_secs: f64) -> Option<usize> {
        if t_secs < self.warmup_secs {
            return None;
        }
        let r = ((t_secs - self.warmup_secs) / self.duration_secs).floor() as usize;
        Some(r.min(self.repeats - 1))
    }

    /// Warm-up plus every repeat, seconds.
    pub fn total_secs(&self) -> f64 {
        self.warmup_secs + self.measured_secs()
    }

    /// Every repeat together, seconds.
    pub fn measured_secs(&self) -> f64 {
        self.duration_secs * self.repeats as f64
    }
}

#[cfg(test)]
mod tests {
    use super::Phases;

    #[test]
    fn times_map_to_repeats() {
        let p = Phases {
            warmup_secs: 2.0,
            duration_secs: 10.0,
            repeats: 3,
        };
        assert_eq!(p.repeat_at(0.0), None);
        assert_eq!(p.repeat_at(1.999), None);
        assert_eq!(p.repeat_at(2.0), Some(0));
        assert_eq!(p.repeat_at(11.999), Some(0));
        assert_eq!(p.repeat_at(12.0), Some(1));
        assert_eq!(p.repeat_at(31.9), Some(2));
        // A closed-loop request ending after the last repeat counts in the last one.
        assert_eq!(p.repeat_at(40.0), Some(2));
        assert_eq!((p.total_secs(), p.measured_secs()), (32.0, 30.0));
        let single = Phases { repeats: 1, ..p };
        assert_eq!(single.repeat_at(100.0), Some(0));
    }
}

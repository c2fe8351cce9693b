//! How a collection has been used: its last access and recent access times, for the tiering
//! policy's idle and access-rate rules. Pure; the collection holds it behind a mutex.

use std::collections::VecDeque;
use std::time::SystemTime;

/// Access times kept per collection (for the access-rate rule and the tier API).
const HISTORY: usize = 256;

/// Access times kept by a closed collection (the newest few, enough for the access-rate rule
/// at its usual settings), so that closing and reopening does not forget recent use.
pub(crate) const CLOSED_ACCESSES_KEPT: usize = 4;

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What a closed collection remembers of its use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct AccessSnapshot {
    pub last_ms: u64,
    /// Newest last; 0 = none.
    pub recent: [u64; CLOSED_ACCESSES_KEPT],
}

impl AccessSnapshot {
    /// Accessed now, nothing before.
    pub fn now() -> AccessSnapshot {
        AccessSnapshot {
            last_ms: now_ms(),
            recent: [0; CLOSED_ACCESSES_KEPT],
        }
    }
}

/// An open collection's use.
#[derive(Debug)]
pub(crate) struct Access {
    last_ms: u64,
    times: VecDeque<u64>,
}

impl Access {
    pub fn from_snapshot(s: AccessSnapshot) -> Access {
        Access {
            last_ms: s.last_ms,
            times: s.recent.iter().copied().filter(|&t| t > 0).collect(),
        }
    }

    pub fn snapshot(&self) -> AccessSnapshot {
        let mut recent = [0; CLOSED_ACCESSES_KEPT];
        let newest = self.times.iter().rev().take(CLOSED_ACCESSES_KEPT);
        for (slot, &t) in recent.iter_mut().rev().zip(newest) {
            *slot = t;
        }
        AccessSnapshot {
            last_ms: self.last_ms,
            recent,
        }
    }

    /// Records an access; returns how many accesses fall within `window_ms` (this one
    /// included; at most the 256 kept).
    pub fn touch(&mut self, now: u64, window_ms: u64) -> usize {
        self.last_ms = self.last_ms.max(now);
        self.times.push_back(now);
        while self.times.len() > HISTORY
            || self
                .times
                .front()
                .is_some_and(|&t| now.saturating_sub(t) >= window_ms)
        {
            self.times.pop_front();
        }
        self.times.len()
    }

    pub fn last_ms(&self) -> u64 {
        self.last_ms
    }

    /// Accesses within `window_ms` of `now`.
    pub fn recent(&self, now: u64, window_ms: u64) -> usize {
        self.times
            .iter()
            .filter(|&&t| now.saturating_sub(t) < window_ms)
            .count()
    }

    pub fn times(&self) -> Vec<u64> {
        self.times.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_and_the_snapshot() {
        let mut a = Access::from_snapshot(AccessSnapshot {
            last_ms: 100,
            recent: [0, 0, 50, 100],
        });
        assert_eq!(a.recent(120, 60), 1);
        assert_eq!(a.touch(130, 60), 2, "100 and 130 are within 60 ms of 130");
        assert_eq!(a.last_ms(), 130);
        let s = a.snapshot();
        assert_eq!(s.recent, [0, 0, 100, 130]);
        assert_eq!(Access::from_snapshot(s).times(), vec![100, 130]);
    }
}

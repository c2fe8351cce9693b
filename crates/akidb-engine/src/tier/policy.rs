//! Tiering policy: a pure function from collection usage to a plan of moves.
//!
//! Tiers are ordered `Hot < Warm < Cold`; "down" means towards `Cold`.
//! [`plan`] applies these rules, in order:
//!
//! 1. **Idle** (unpinned only): a Hot collection idle for `>= hot_idle_ms` goes
//!    to Warm, or straight to Cold if idle for `>= hot_idle_ms + warm_idle_ms`;
//!    a Warm one idle for `>= warm_idle_ms` goes to Cold. A threshold of 0
//!    disables its step. Idle = `now - last_access_ms` (saturating).
//! 2. **Pinned** collections never move down (idle or budget), but may be promoted.
//! 3. **Access rate**: a non-Hot collection for which [`wants_promotion`] holds
//!    goes to Hot. This takes precedence over the idle rule.
//! 4. **RAM budget**: the would-be Hot set uses `bytes_in_ram` for current Hot
//!    collections and `bytes_on_disk` as the estimate for promoted ones. While
//!    over budget, the least recently used unpinned member (smallest
//!    `last_access_ms`, ties by name) is demoted to Warm, or, if it was being
//!    promoted, its promotion is dropped. Members that contribute 0 bytes are
//!    never victims. Stops when no candidate remains.
//! 5. **Disk budget**: the would-be Hot+Warm set uses `bytes_on_disk` (0 for a
//!    Cold collection being promoted). While over budget, the LRU unpinned
//!    would-be-Warm collection goes to Cold, then the LRU would-be-Hot one.
//!    An already planned move just gets its target replaced by Cold.
//! 6. At most one move per collection (its final target), never `from == to`.
//!    Output: demotions sorted by name, then promotions sorted by name.
//!
//! A budget of 0 means unlimited.

use std::fmt;
use std::str::FromStr;

/// Storage tier: Hot (in RAM), Warm (local disk only), Cold (object store only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    Hot,
    Warm,
    Cold,
}

impl Tier {
    pub fn as_str(&self) -> &'static str {
        match self {
            Tier::Hot => "hot",
            Tier::Warm => "warm",
            Tier::Cold => "cold",
        }
    }

    /// The next tier down (towards Cold), if any.
    pub fn below(self) -> Option<Tier> {
        match self {
            Tier::Hot => Some(Tier::Warm),
            Tier::Warm => Some(Tier::Cold),
            Tier::Cold => None,
        }
    }

    /// The next tier up (towards Hot), if any.
    pub fn above(self) -> Option<Tier> {
        match self {
            Tier::Hot => None,
            Tier::Warm => Some(Tier::Hot),
            Tier::Cold => Some(Tier::Warm),
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Tier {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "hot" => Ok(Tier::Hot),
            "warm" => Ok(Tier::Warm),
            "cold" => Ok(Tier::Cold),
            other => Err(format!(
                "unknown tier {other:?} (expected hot, warm or cold)"
            )),
        }
    }
}

/// Tunables for [`plan`].
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// Hot, unpinned, unaccessed this long -> Warm. 0 = never. Default: `600_000` (10 min).
    pub hot_idle_ms: u64,
    /// Warm, unpinned, unaccessed this long -> Cold. 0 = never. Default: `3_600_000` (1 h).
    pub warm_idle_ms: u64,
    /// Accesses within `promote_window_ms` needed to promote to Hot. 0 = never. Default: 2.
    pub promote_accesses: usize,
    /// Window for counting accesses. Default: `60_000` (1 min).
    pub promote_window_ms: u64,
    /// Max sum of `bytes_in_ram` over Hot collections. 0 = unlimited. Default: 0.
    pub ram_budget_bytes: u64,
    /// Max sum of `bytes_on_disk` over Hot+Warm collections. 0 = unlimited. Default: 0.
    pub disk_budget_bytes: u64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            hot_idle_ms: 600_000,
            warm_idle_ms: 3_600_000,
            promote_accesses: 2,
            promote_window_ms: 60_000,
            ram_budget_bytes: 0,
            disk_budget_bytes: 0,
        }
    }
}

/// One collection as the policy sees it.
#[derive(Debug, Clone)]
pub struct Usage {
    /// The collection's key (the engine passes its id: names can be reused).
    pub name: String,
    pub tier: Tier,
    pub pinned: bool,
    /// 0 unless Hot.
    pub bytes_in_ram: u64,
    /// Local disk bytes (Hot and Warm keep local files; Cold has 0).
    pub bytes_on_disk: u64,
    /// Unix ms of the last read or write (creation counts).
    pub last_access_ms: u64,
    /// Unix ms of recent accesses; entries outside the window are ignored.
    pub access_times_ms: Vec<u64>,
}

/// Why a move was planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Idle,
    AccessRate,
    RamBudget,
    DiskBudget,
}

impl Reason {
    pub fn as_str(&self) -> &'static str {
        match self {
            Reason::Idle => "idle",
            Reason::AccessRate => "access_rate",
            Reason::RamBudget => "ram_budget",
            Reason::DiskBudget => "disk_budget",
        }
    }
}

/// One planned tier change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    /// [`Usage::name`] of the collection to move.
    pub name: String,
    pub from: Tier,
    pub to: Tier,
    pub reason: Reason,
}

/// The access-rate rule alone: true when at least `promote_accesses` (> 0)
/// accesses satisfy `t <= now` and `now - t < promote_window_ms`.
pub fn wants_promotion(access_times_ms: &[u64], config: &PolicyConfig, now_ms: u64) -> bool {
    let recent = access_times_ms
        .iter()
        .filter(|&&t| t <= now_ms && now_ms - t < config.promote_window_ms)
        .count();
    promotes(recent, config)
}

/// The access-rate rule on a count already limited to the window (the request path keeps
/// that count, so it needs neither the times nor an allocation).
pub fn promotes(recent_accesses: usize, config: &PolicyConfig) -> bool {
    config.promote_accesses > 0 && recent_accesses >= config.promote_accesses
}

/// Planned target per collection; the reason is `Some` iff the target differs.
type Target = (Tier, Option<Reason>);

/// Computes the moves to perform now. See the module docs for the rules.
pub fn plan(usage: &[Usage], config: &PolicyConfig, now_ms: u64) -> Vec<Move> {
    let mut to: Vec<Target> = usage
        .iter()
        .map(|u| initial_target(u, config, now_ms))
        .collect();
    enforce_ram(usage, &mut to, config.ram_budget_bytes);
    enforce_disk(usage, &mut to, config.disk_budget_bytes);

    let mut moves: Vec<Move> = usage
        .iter()
        .zip(&to)
        .filter_map(|(u, &(target, reason))| {
            let reason = reason?;
            (target != u.tier).then(|| Move {
                name: u.name.clone(),
                from: u.tier,
                to: target,
                reason,
            })
        })
        .collect();
    moves.sort_by(|a, b| {
        (a.to < a.from)
            .cmp(&(b.to < b.from))
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| (a.from, a.to).cmp(&(b.from, b.to)))
    });
    moves
}

/// Rules 1-3: access-rate promotion, else idle demotion of unpinned collections.
fn initial_target(u: &Usage, c: &PolicyConfig, now_ms: u64) -> Target {
    if u.tier != Tier::Hot && wants_promotion(&u.access_times_ms, c, now_ms) {
        return (Tier::Hot, Some(Reason::AccessRate));
    }
    if u.pinned {
        return (u.tier, None);
    }
    let idle = now_ms.saturating_sub(u.last_access_ms);
    let past = |limit: u64| limit > 0 && idle >= limit;
    let target = match u.tier {
        Tier::Hot
            if past(c.hot_idle_ms)
                && c.warm_idle_ms > 0
                && past(c.hot_idle_ms.saturating_add(c.warm_idle_ms)) =>
        {
            Tier::Cold
        }
        Tier::Hot if past(c.hot_idle_ms) => Tier::Warm,
        Tier::Warm if past(c.warm_idle_ms) => Tier::Cold,
        tier => return (tier, None),
    };
    (target, Some(Reason::Idle))
}

/// RAM a collection would use if Hot: actual if already Hot, else its disk size.
fn ram_estimate(u: &Usage) -> u64 {
    match u.tier {
        Tier::Hot => u.bytes_in_ram,
        _ => u.bytes_on_disk,
    }
}

/// Local disk a collection would use if Hot or Warm (Cold ones count 0).
fn disk_estimate(u: &Usage) -> u64 {
    match u.tier {
        Tier::Cold => 0,
        _ => u.bytes_on_disk,
    }
}

/// Index of the least recently used unpinned collection accepted by `eligible`.
fn lru(usage: &[Usage], to: &[Target], eligible: impl Fn(&Usage, Tier) -> bool) -> Option<usize> {
    usage
        .iter()
        .zip(to)
        .enumerate()
        .filter(|(_, (u, (target, _)))| !u.pinned && eligible(u, *target))
        .min_by(|(_, (a, _)), (_, (b, _))| {
            (a.last_access_ms, &a.name).cmp(&(b.last_access_ms, &b.name))
        })
        .map(|(i, _)| i)
}

/// Bytes used by the collections whose planned target satisfies `member`.
fn used_bytes(
    usage: &[Usage],
    to: &[Target],
    member: fn(Tier) -> bool,
    size: fn(&Usage) -> u64,
) -> u128 {
    usage
        .iter()
        .zip(to)
        .filter(|(_, (target, _))| member(*target))
        .map(|(u, _)| u128::from(size(u)))
        .sum()
}

/// Rule 4.
fn enforce_ram(usage: &[Usage], to: &mut [Target], budget: u64) {
    if budget == 0 {
        return;
    }
    let mut used = used_bytes(usage, to, |t| t == Tier::Hot, ram_estimate);
    while used > u128::from(budget) {
        let Some(i) = lru(usage, to, |u, t| t == Tier::Hot && ram_estimate(u) > 0) else {
            break;
        };
        let u = &usage[i];
        used -= u128::from(ram_estimate(u));
        to[i] = if u.tier == Tier::Hot {
            (Tier::Warm, Some(Reason::RamBudget))
        } else {
            (u.tier, None) // drop the planned promotion
        };
    }
}

/// Rule 5.
fn enforce_disk(usage: &[Usage], to: &mut [Target], budget: u64) {
    if budget == 0 {
        return;
    }
    let mut used = used_bytes(usage, to, |t| t != Tier::Cold, disk_estimate);
    while used > u128::from(budget) {
        let pick = |tier: Tier| lru(usage, to, |u, t| t == tier && disk_estimate(u) > 0);
        let Some(i) = pick(Tier::Warm).or_else(|| pick(Tier::Hot)) else {
            break;
        };
        used -= u128::from(disk_estimate(&usage[i]));
        to[i] = (Tier::Cold, Some(Reason::DiskBudget));
    }
}

#[cfg(test)]
mod tests {
    use super::Reason::*;
    use super::Tier::*;
    use super::*;
    use std::collections::HashSet;

    const NOW: u64 = 100_000_000;

    fn u(name: &str, tier: Tier, bytes: u64, last: u64) -> Usage {
        Usage {
            name: name.to_string(),
            tier,
            pinned: false,
            bytes_in_ram: if tier == Hot { bytes } else { 0 },
            bytes_on_disk: if tier == Cold { 0 } else { bytes },
            last_access_ms: last,
            access_times_ms: Vec::new(),
        }
    }

    fn pinned(x: Usage) -> Usage {
        Usage { pinned: true, ..x }
    }

    fn accessed(mut x: Usage, times: &[u64]) -> Usage {
        x.access_times_ms = times.to_vec();
        x
    }

    fn cfg(hot: u64, warm: u64, ram: u64, disk: u64) -> PolicyConfig {
        let mut c = PolicyConfig::default();
        (
            c.hot_idle_ms,
            c.warm_idle_ms,
            c.ram_budget_bytes,
            c.disk_budget_bytes,
        ) = (hot, warm, ram, disk);
        c
    }

    fn budgets(ram: u64, disk: u64) -> PolicyConfig {
        cfg(600_000, 3_600_000, ram, disk)
    }

    /// Asserts that `plan` at `NOW` returns exactly `want`.
    fn check(input: &[Usage], c: &PolicyConfig, want: &[(&str, Tier, Tier, Reason)]) {
        let got = plan(input, c, NOW);
        let got: Vec<_> = got
            .iter()
            .map(|m| (m.name.as_str(), m.from, m.to, m.reason))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn tier_names_and_order() {
        for t in [Hot, Warm, Cold] {
            assert_eq!(t.as_str().parse::<Tier>(), Ok(t));
            assert_eq!(t.to_string(), t.as_str());
        }
        assert!("Hot".parse::<Tier>().is_err());
        assert!(Hot < Warm && Warm < Cold);
        assert_eq!(
            [Hot.below(), Warm.below(), Cold.below()],
            [Some(Warm), Some(Cold), None]
        );
        assert_eq!(
            [Hot.above(), Warm.above(), Cold.above()],
            [None, Some(Hot), Some(Warm)]
        );
        assert_eq!(DiskBudget.as_str(), "disk_budget");
    }

    #[test]
    fn idle_transitions() {
        let input = [
            u("a", Hot, 1, NOW - 600_000),    // hot -> warm
            u("b", Warm, 1, NOW - 3_600_000), // warm -> cold
            u("c", Hot, 1, NOW - 4_200_000),  // doubly idle: hot -> cold
            u("d", Hot, 1, NOW - 4_199_999),  // just under: hot -> warm
            u("e", Hot, 1, NOW - 599_999),    // before threshold
            u("f", Warm, 1, NOW - 3_599_999), // before threshold
            u("g", Cold, 0, 0),               // nothing below cold
            u("h", Hot, 1, NOW + 5),          // future access: idle 0
        ];
        let want = [
            ("a", Hot, Warm, Idle),
            ("b", Warm, Cold, Idle),
            ("c", Hot, Cold, Idle),
            ("d", Hot, Warm, Idle),
        ];
        check(&input, &PolicyConfig::default(), &want);
    }

    #[test]
    fn zero_thresholds_disable_idle() {
        let input = [u("a", Hot, 1, 0), u("b", Warm, 1, 0)];
        check(&input, &cfg(0, 0, 0, 0), &[]);
        check(&input, &cfg(600_000, 0, 0, 0), &[("a", Hot, Warm, Idle)]);
        check(&input, &cfg(0, 3_600_000, 0, 0), &[("b", Warm, Cold, Idle)]);
    }

    #[test]
    fn pinned_never_demoted_but_promoted() {
        let input = [
            pinned(u("a", Hot, 100, 0)),
            pinned(u("b", Warm, 100, 0)),
            pinned(accessed(u("c", Cold, 0, NOW - 1), &[NOW - 2, NOW - 1])),
        ];
        check(&input, &budgets(10, 10), &[("c", Cold, Hot, AccessRate)]);
        // RAM budget unreachable with only pinned collections: no moves, no loop.
        let input = [pinned(u("a", Hot, 100, 0)), pinned(u("b", Hot, 100, 0))];
        check(&input, &budgets(50, 0), &[]);
    }

    #[test]
    fn access_rate_promotion_and_window() {
        let c = PolicyConfig::default();
        assert!(wants_promotion(&[NOW - 59_999, NOW], &c, NOW));
        assert!(!wants_promotion(&[NOW - 60_000, NOW], &c, NOW)); // boundary excluded
        assert!(!wants_promotion(&[NOW + 1, NOW], &c, NOW)); // future ignored
        let mut never = c.clone();
        never.promote_accesses = 0;
        assert!(!wants_promotion(&[NOW, NOW], &never, NOW));
        let input = [
            accessed(u("w", Warm, 5, NOW), &[1, 2, NOW - 10, NOW]),
            accessed(u("c", Cold, 0, NOW), &[NOW - 70_000, NOW - 1]), // one outside window
            accessed(u("x", Cold, 0, NOW), &[NOW - 3, NOW - 1]),
            accessed(u("h", Hot, 5, NOW), &[NOW, NOW]), // already hot
        ];
        let want = [("w", Warm, Hot, AccessRate), ("x", Cold, Hot, AccessRate)];
        check(&input, &c, &want);
    }

    #[test]
    fn ram_budget_evicts_lru_only_as_needed() {
        let input = [
            u("a", Hot, 100, NOW - 3),
            u("b", Hot, 100, NOW - 9),
            u("c", Hot, 100, NOW - 1),
        ];
        check(&input, &budgets(250, 0), &[("b", Hot, Warm, RamBudget)]);
        let want = [("a", Hot, Warm, RamBudget), ("b", Hot, Warm, RamBudget)];
        check(&input, &budgets(100, 0), &want);
        check(&input, &budgets(300, 0), &[]);
    }

    #[test]
    fn promotion_dropped_when_lru_victim() {
        let input = [
            u("a", Hot, 100, NOW - 1),
            accessed(u("b", Warm, 100, NOW - 5), &[NOW - 10, NOW - 5]),
            accessed(u("c", Warm, 10, NOW), &[NOW - 1, NOW]),
        ];
        // b is promoted, then dropped as the LRU victim; c's promotion still fits.
        check(&input, &budgets(150, 0), &[("c", Warm, Hot, AccessRate)]);
    }

    #[test]
    fn disk_budget_prefers_warm_then_hot() {
        let input = [
            u("a", Hot, 100, NOW - 100),
            u("b", Warm, 100, NOW - 50),
            u("c", Warm, 100, NOW - 40),
            u("d", Hot, 100, NOW - 10),
            u("e", Cold, 0, 0),
        ];
        check(&input, &budgets(0, 300), &[("b", Warm, Cold, DiskBudget)]);
        let want = [
            ("a", Hot, Cold, DiskBudget),
            ("b", Warm, Cold, DiskBudget),
            ("c", Warm, Cold, DiskBudget),
        ];
        check(&input, &budgets(0, 150), &want);
    }

    #[test]
    fn disk_victim_planned_warm_becomes_cold() {
        let input = [u("a", Hot, 100, NOW - 700_000), u("b", Hot, 100, NOW)];
        check(&input, &budgets(0, 150), &[("a", Hot, Cold, DiskBudget)]);
        // Also when the Warm target came from the RAM budget.
        let input = [u("a", Hot, 100, NOW - 2), u("b", Hot, 100, NOW - 1)];
        check(&input, &budgets(150, 150), &[("a", Hot, Cold, DiskBudget)]);
    }

    #[test]
    fn deterministic_and_empty() {
        check(&[], &budgets(1, 1), &[]);
        let mut input = vec![
            u("d", Hot, 100, 0),
            accessed(u("a", Cold, 0, NOW), &[NOW, NOW]),
            u("c", Hot, 100, NOW - 5),
            accessed(u("b", Warm, 100, NOW), &[NOW, NOW]),
            u("e", Warm, 100, NOW - 4_000_000),
        ];
        let want = [
            ("c", Hot, Warm, RamBudget),
            ("d", Hot, Cold, Idle),
            ("e", Warm, Cold, Idle),
            ("a", Cold, Hot, AccessRate),
            ("b", Warm, Hot, AccessRate),
        ];
        check(&input, &budgets(150, 0), &want);
        input.reverse();
        input.swap(0, 2);
        check(&input, &budgets(150, 0), &want);
    }

    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
        fn pick(&mut self, xs: &[u64]) -> u64 {
            xs[self.below(xs.len() as u64) as usize]
        }
    }

    #[test]
    fn random_invariants() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let now = 10_000;
        for _ in 0..1000 {
            let c = PolicyConfig {
                promote_accesses: rng.below(4) as usize,
                promote_window_ms: rng.pick(&[0, 50, 500]),
                ..cfg(
                    rng.pick(&[0, 100, 1000]),
                    rng.pick(&[0, 500, 2000]),
                    rng.pick(&[0, 50, 200, 500]),
                    rng.pick(&[0, 100, 300, 800]),
                )
            };
            let mut input: Vec<Usage> = (0..rng.below(9))
                .map(|i| {
                    let tier = [Hot, Warm, Cold][rng.below(3) as usize];
                    let (bytes, last) = (rng.below(150), now - rng.below(5000));
                    let mut x = u(&format!("c{i}"), tier, bytes, last);
                    x.access_times_ms = (0..rng.below(5))
                        .map(|_| now + 20 - rng.below(999))
                        .collect();
                    x.pinned = rng.below(4) == 0;
                    x
                })
                .collect();
            let moves = plan(&input, &c, now);
            let mut names = HashSet::new();
            for m in &moves {
                let x = input.iter().find(|x| x.name == m.name).expect("known name");
                assert!(names.insert(&m.name), "duplicate move {m:?}");
                assert!(m.from != m.to && m.from == x.tier, "bad move {m:?}");
                assert!(!(x.pinned && m.to > m.from), "pinned demoted {m:?}");
                assert_eq!(m.reason == AccessRate, m.to < m.from);
            }
            let moved = |x: &Usage| moves.iter().find(|m| m.name == x.name).map(|m| m.to);
            let final_tier = |x: &Usage| moved(x).unwrap_or(x.tier);
            let within = |budget: u64, member: fn(Tier) -> bool, size: fn(&Usage) -> u64| {
                let live: Vec<&Usage> = input.iter().filter(|x| member(final_tier(x))).collect();
                let used: u64 = live.iter().map(|x| size(x)).sum();
                let stuck = live.iter().all(|x| x.pinned || size(x) == 0);
                assert!(
                    budget == 0 || used <= budget || stuck,
                    "over {budget}: {input:?} {moves:?}"
                );
            };
            within(c.ram_budget_bytes, |t| t == Hot, ram_estimate);
            within(c.disk_budget_bytes, |t| t != Cold, disk_estimate);
            input.reverse();
            assert_eq!(plan(&input, &c, now), moves);
        }
    }
}

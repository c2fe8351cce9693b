//! Merging small segments. Every flush adds a segment, and a collection written a little at a
//! time, or demoted often (each demotion flushes), piles up small ones: the seed's load test
//! left 30–35 segments per collection after a minute, and a load fetches (cold) or reads (warm)
//! each of them. The newest segments are merged a level at a time, as in a log-structured merge:
//! a segment's level is `floor(log_8(rows))`, and when at least [`FANIN`] of the newest segments
//! are at or below one level and their merge lands a level higher than each of them, they become
//! one segment. A row is rewritten only when it climbs a level, and a collection keeps a few
//! small segments per level (fewer than [`FANIN`] at each, but for the smaller ones waiting
//! behind a larger one until a later merge takes them along; see the tests).
//!
//! A merge concatenates: the merged segment holds the same rows in the same order, so every
//! slot keeps its number and the saved graph and the partitioned base stay valid. Dropping dead
//! rows is compaction's work, not this.
//!
//! [`plan`] is the pure rule; [`Collection::merge_segments`] carries it out on a hot collection
//! (tier lock shared, manifest lock held), after a background flush and before a demotion.

use std::ops::Range;

use super::Collection;
use super::info::FlushError;
use crate::error::EngineError;
use crate::manifest::ObjectRef;
use crate::segment::{self, Columns};
use crate::tier::Tier;

/// How many segments of one level make a merge (and the base of the levels).
pub const FANIN: usize = 8;

fn level(rows: u64) -> u32 {
    rows.max(1).ilog(FANIN as u64)
}

/// The newest segments to merge now, given every segment's rows (oldest first), or `None`:
/// for the lowest level `l` at which it exists, the suffix of at least [`FANIN`] segments all
/// at or below `l` whose merge lands a level above every one of them (so that a row is
/// rewritten only when it climbs; a smaller segment left behind a larger one is taken along by
/// a later merge). Segments of more than `max_rows / FANIN` rows are never merged, and a suffix
/// whose rows would exceed `max_rows` is trimmed from its oldest end.
pub fn plan(rows: &[u64], max_rows: u64) -> Option<Range<usize>> {
    let small = |r: u64| r.saturating_mul(FANIN as u64) <= max_rows;
    let tail = rows.iter().rev().take_while(|&&r| small(r)).count();
    let newest = &rows[rows.len() - tail..];
    let top = newest.iter().map(|&r| level(r)).max()?;
    (0..=top).find_map(|l| {
        let n = newest.iter().rev().take_while(|&&r| level(r) <= l).count();
        if n < FANIN {
            return None;
        }
        let mut start = rows.len() - n;
        while rows[start..].iter().sum::<u64>() > max_rows {
            start += 1;
        }
        let merged = &rows[start..];
        let highest = merged.iter().map(|&r| level(r)).max()?;
        (merged.len() >= 2 && level(merged.iter().sum()) > highest).then_some(start..rows.len())
    })
}

impl Collection {
    /// Merges the newest small segments while [`plan`] says so (see the module docs); returns
    /// how many segments the collection has fewer. Only while hot: the tier lock is held shared
    /// (no move meanwhile, and no load reads the segments replaced), the manifest lock for the
    /// whole merge (flushes wait). The replaced objects are deleted after the commit; a failure
    /// before it leaves the collection as it was (the upload is an orphan for the sweep).
    #[tracing::instrument(name = "merge", skip_all, fields(collection = %self.def.name))]
    pub async fn merge_segments(&self) -> Result<usize, FlushError> {
        let _tier = self.tier_lock.read().await;
        self.check_live()?;
        if self.tier() != Tier::Hot {
            return Ok(0);
        }
        let mut manifest = self.manifest.lock().await;
        let mut fewer = 0;
        loop {
            let rows: Vec<u64> = manifest.segments.iter().map(|s| s.rows).collect();
            let Some(range) = plan(&rows, self.env.segment_rows as u64) else {
                break;
            };
            self.check_live()?;
            let old = manifest.segments[range.clone()].to_vec();
            let fetched = futures::future::try_join_all(old.iter().map(|s| {
                self.fetch(ObjectRef {
                    path: &s.path,
                    bytes: s.bytes,
                    crc32c: s.crc32c,
                })
            }))
            .await?;
            let (dim, total) = (self.def.dimension, rows[range.clone()].iter().sum::<u64>());
            let columns = tokio::task::spawn_blocking(move || {
                let mut columns = Columns::new(dim, total as usize);
                for data in fetched {
                    for row in segment::decode(dim, data)? {
                        columns.push_row(&row)?;
                    }
                }
                Ok::<_, EngineError>(columns)
            })
            .await
            .expect("merge task panicked")?;
            let merged = self.upload_segments(vec![columns]).await?;
            self.commit(&mut manifest, |next| {
                next.segments.splice(range, merged);
            })
            .await?;
            let paths: Vec<String> = old.iter().map(|s| s.path.clone()).collect();
            self.delete_objects(&paths).await;
            fewer += old.len() - 1;
            tracing::debug!(collection = %self.def.name, segments = old.len(), rows = total, "merged segments");
        }
        Ok(fewer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: u64 = 50_000;

    /// Flushes of the given sizes, each followed by the merges the plan asks for; returns the
    /// segments left and how many rows were rewritten in all.
    fn simulate(flushes: impl IntoIterator<Item = u64>) -> (Vec<u64>, u64) {
        let (mut segments, mut rewritten) = (Vec::new(), 0);
        for rows in flushes {
            segments.push(rows);
            while let Some(range) = plan(&segments, MAX) {
                let merged: u64 = segments[range.clone()].iter().sum();
                rewritten += merged;
                segments.splice(range, [merged]);
            }
        }
        (segments, rewritten)
    }

    #[test]
    fn small_flushes_stay_a_few_segments_per_level() {
        // The load test's pattern: one large first flush, then a small one per demotion.
        let (segments, rewritten) = simulate(std::iter::once(5_000).chain([40; 3_000]));
        let total: u64 = 5_000 + 40 * 3_000;
        assert_eq!(segments.iter().sum::<u64>(), total, "rows are kept");
        let levels = segments.iter().map(|&r| level(r)).max().unwrap() as usize + 1;
        assert!(
            segments.len() <= (FANIN - 1) * levels + 1,
            "{} segments: {segments:?}",
            segments.len()
        );
        // Each row is rewritten at most once per level it climbs.
        assert!(rewritten <= 40 * 3_000 * levels as u64, "{rewritten}");
        assert!(segments.iter().all(|&r| r <= MAX));
    }

    #[test]
    fn nothing_merges_below_the_fanin_or_above_the_size_limit() {
        assert_eq!(plan(&[], MAX), None);
        assert_eq!(plan(&[10; FANIN - 1], MAX), None);
        assert_eq!(plan(&[10; FANIN], MAX), Some(0..FANIN));
        // Large segments are left alone, whatever their number.
        assert_eq!(plan(&[MAX; 20], MAX), None);
        assert_eq!(plan(&[MAX / 4; 20], MAX), None);
        // Only the small newest ones are considered.
        let mut rows = vec![MAX; 3];
        rows.extend([10; FANIN]);
        assert_eq!(plan(&rows, MAX), Some(3..3 + FANIN));
    }

    #[test]
    fn a_merge_climbs_a_level_and_strands_nothing() {
        // Eight at or below level 2 that would stay at level 2 together: not yet.
        let mut rows = vec![10; FANIN - 1];
        rows.push(100);
        assert_eq!(plan(&rows, MAX), None);
        assert_eq!(plan(&[100, 10, 10, 10, 100, 10, 10, 10], MAX), None);
        // The lowest level with enough segments is merged first.
        let mut rows = vec![100; 3];
        rows.extend([10; FANIN]);
        assert_eq!(plan(&rows, MAX), Some(3..3 + FANIN));
        // The small ones behind the larger one are taken along by a later merge.
        let mut flushes = vec![10; FANIN - 1];
        flushes.push(100);
        flushes.extend([10; 60]);
        let (segments, _) = simulate(flushes);
        assert!(segments[0] > 100, "{segments:?}");
        assert!(segments.len() < FANIN, "{segments:?}");
    }

    #[test]
    fn a_merge_never_exceeds_the_size_limit() {
        let rows = [
            6_000, 6_000, 6_000, 6_000, 6_000, 6_000, 6_000, 6_000, 6_000,
        ];
        let range = plan(&rows, MAX).unwrap();
        assert!(rows[range.clone()].iter().sum::<u64>() <= MAX);
        assert_eq!(range.end, rows.len());
        // Varied sizes up to 3,000 rows: merged segments stop growing once above MAX / FANIN,
        // so their number is bounded by the rows over that size, plus a few per level below.
        let flushes: Vec<u64> = (0..1_000u64).map(|i| 1 + (i * 7_919) % 3_000).collect();
        let total: u64 = flushes.iter().sum();
        let (segments, _) = simulate(flushes);
        assert_eq!(segments.iter().sum::<u64>(), total);
        assert!(segments.iter().all(|&r| r <= MAX), "{segments:?}");
        let bound = total / (MAX / FANIN as u64) + (FANIN as u64 - 1) * 5;
        assert!(
            segments.len() as u64 <= bound,
            "{} > {bound}",
            segments.len()
        );
    }
}

//! Cutting what a flush took into segments: its slots, copied a chunk at a time (a flush copies
//! each chunk under a brief read lock of the state, so searches and writes go on between
//! chunks), then its tombstones, into [`Columns`] of at most `segment_rows` rows each.
//!
//! Pure bookkeeping: the caller copies each chunk ([`super::state::State::copy_puts`]).

use std::ops::Range;

use crate::segment::Columns;

/// Slots copied per chunk: about 1.5 MB of 384-d vectors, a fraction of a millisecond.
pub(super) const COPY_CHUNK: usize = 1024;

pub(super) struct Sealer {
    dim: usize,
    segment_rows: usize,
    next: usize,
    end: usize,
    tombstones: Vec<String>,
    /// Rows not yet placed in any columns (slots and tombstones).
    left: usize,
    /// Rows `current` must hold once the chunk handed out last is copied.
    placed: usize,
    current: Columns,
    done: Vec<Columns>,
}

impl Sealer {
    pub fn new(
        dim: usize,
        segment_rows: usize,
        slots: Range<usize>,
        tombstones: Vec<String>,
    ) -> Sealer {
        let segment_rows = segment_rows.max(1);
        let left = slots.len() + tombstones.len();
        Sealer {
            dim,
            segment_rows,
            next: slots.start,
            end: slots.end,
            tombstones,
            left,
            placed: 0,
            current: Columns::new(dim, left.min(segment_rows)),
            done: Vec::new(),
        }
    }

    /// The next slots to copy, one `Put` row each, into the columns handed out with them; None
    /// once every slot is handed out.
    pub fn next_chunk(&mut self) -> Option<(Range<usize>, &mut Columns)> {
        if self.next >= self.end {
            return None;
        }
        self.roll();
        let room = self.segment_rows - self.placed;
        let end = self.end.min(self.next + COPY_CHUNK.min(room));
        let slots = self.next..end;
        self.next = end;
        self.placed += slots.len();
        self.left -= slots.len();
        Some((slots, &mut self.current))
    }

    /// Adds the tombstones and returns the segments' columns, in order.
    pub fn finish(mut self) -> Vec<Columns> {
        for id in std::mem::take(&mut self.tombstones) {
            self.roll();
            self.current.push_tombstone(&id);
            self.placed += 1;
            self.left -= 1;
        }
        assert_eq!(
            self.current.len(),
            self.placed,
            "one row per slot handed out"
        );
        if !self.current.is_empty() {
            self.done.push(self.current);
        }
        self.done
    }

    /// Starts new columns once the current ones are full.
    fn roll(&mut self) {
        assert_eq!(
            self.current.len(),
            self.placed,
            "one row per slot handed out"
        );
        if self.placed == self.segment_rows {
            let next = Columns::new(self.dim, self.left.min(self.segment_rows));
            self.done.push(std::mem::replace(&mut self.current, next));
            self.placed = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::{Row, decode, encode_columns};

    fn ids(columns: Vec<Columns>) -> Vec<Vec<String>> {
        columns
            .into_iter()
            .map(|c| {
                let data = encode_columns(c).unwrap();
                decode(2, data)
                    .unwrap()
                    .iter()
                    .map(|r| match r {
                        Row::Put(d) => d.id.clone(),
                        Row::Tombstone(id) => format!("-{id}"),
                    })
                    .collect()
            })
            .collect()
    }

    fn seal(segment_rows: usize, slots: Range<usize>, tombstones: &[&str]) -> Vec<Vec<String>> {
        let tombstones = tombstones.iter().map(|t| t.to_string()).collect();
        let mut sealer = Sealer::new(2, segment_rows, slots, tombstones);
        let mut chunks = 0;
        while let Some((slots, columns)) = sealer.next_chunk() {
            assert!(slots.len() <= COPY_CHUNK);
            for slot in slots {
                columns.push_put(&slot.to_string(), &[slot as f32, 0.0], None);
            }
            chunks += 1;
        }
        assert!(chunks > 0 || sealer.next >= sealer.end);
        ids(sealer.finish())
    }

    #[test]
    fn slots_then_tombstones_in_segments_of_at_most_segment_rows() {
        assert_eq!(
            seal(3, 5..9, &["x", "y"]),
            [vec!["5", "6", "7"], vec!["8", "-x", "-y"]]
        );
        assert_eq!(seal(10, 0..2, &[]), [vec!["0", "1"]]);
        assert_eq!(
            seal(2, 0..0, &["a", "b", "c"]),
            [vec!["-a", "-b"], vec!["-c"]]
        );
        assert!(seal(4, 3..3, &[]).is_empty());
    }

    #[test]
    fn large_flushes_are_copied_in_chunks_that_respect_segment_boundaries() {
        let segments = seal(2500, 0..6000, &["gone"]);
        let sizes: Vec<usize> = segments.iter().map(Vec::len).collect();
        assert_eq!(sizes, [2500, 2500, 1001]);
        let flat: Vec<String> = segments.concat();
        let expected: Vec<String> = (0..6000)
            .map(|i| i.to_string())
            .chain(["-gone".to_string()])
            .collect();
        assert_eq!(flat, expected);
    }
}

//! Listing a state's live documents by id: scroll pages, counts and the ids a delete by filter
//! removes. Pages are in id order (bytes), and a page's cursor is the last id it returned, so
//! a scroll over a collection that changes meanwhile returns every document that lived through
//! it exactly once, and is not upset by compaction or a tier move (slot numbers change; ids do
//! not). Each page walks every live id once: O(live · log limit).

use std::collections::BinaryHeap;
use std::io;
use std::sync::Arc;

use super::State;
use crate::collection::info::{Listed, ScrollPage, ScrollRequest};
use crate::filter::Filter;

impl State {
    fn matches(&self, slot: u32, filter: Option<&Filter>) -> bool {
        filter.is_none_or(|f| f.matches(self.metadata[slot as usize].as_deref()))
    }

    /// The live slots matching `filter`, through the payload indexes' candidates when they
    /// bound it, else by checking every live document.
    fn matching_slots(&self, filter: &Filter) -> Vec<u32> {
        match self.live_candidates(filter) {
            Some(c) => c
                .into_vec()
                .into_iter()
                .filter(|&slot| self.matches(slot, Some(filter)))
                .collect(),
            None => self
                .by_id
                .values()
                .copied()
                .filter(|&slot| self.matches(slot, Some(filter)))
                .collect(),
        }
    }

    /// Live documents matching `filter` (all of them without one).
    pub fn count_matching(&self, filter: Option<&Filter>) -> usize {
        match filter {
            None => self.count(),
            Some(f) => self.matching_slots(f).len(),
        }
    }

    /// Ids of the live documents matching `filter`, in no particular order.
    pub fn matching_ids(&self, filter: &Filter) -> Vec<String> {
        self.matching_slots(filter)
            .into_iter()
            .map(|slot| self.ids[slot as usize].to_string())
            .collect()
    }

    /// The first `req.limit` matching live documents by id after `req.after`.
    pub fn scroll(&self, req: &ScrollRequest) -> io::Result<ScrollPage> {
        // The limit + 1 smallest ids after the cursor: a max-heap that drops its largest.
        let keep = req.limit + 1;
        let mut heap: BinaryHeap<(&Arc<str>, u32)> = BinaryHeap::with_capacity(keep + 1);
        let indexed: Vec<(&Arc<str>, u32)>;
        let live: Box<dyn Iterator<Item = (&Arc<str>, u32)>> =
            match req.filter.as_ref().and_then(|f| self.live_candidates(f)) {
                Some(c) => {
                    indexed = c
                        .into_vec()
                        .into_iter()
                        .map(|slot| (&self.ids[slot as usize], slot))
                        .collect();
                    Box::new(indexed.iter().copied())
                }
                None => Box::new(self.by_id.iter().map(|(id, &slot)| (id, slot))),
            };
        for (id, slot) in live {
            if req
                .after
                .as_deref()
                .is_some_and(|a| id.as_bytes() <= a.as_bytes())
            {
                continue;
            }
            if heap.len() == keep && heap.peek().is_some_and(|(top, _)| *top <= id) {
                continue;
            }
            if !self.matches(slot, req.filter.as_ref()) {
                continue;
            }
            heap.push((id, slot));
            if heap.len() > keep {
                heap.pop();
            }
        }
        let mut page = heap.into_sorted_vec();
        let more = page.len() > req.limit;
        page.truncate(req.limit);
        let documents = page
            .iter()
            .map(|&(id, slot)| {
                Ok(Listed {
                    id: id.to_string(),
                    vector: match req.include_vector {
                        true => Some(self.index.vector(slot)?.into_owned()),
                        false => None,
                    },
                    metadata: match req.include_metadata {
                        true => self.metadata[slot as usize].as_deref().cloned(),
                        false => None,
                    },
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        let next_cursor = match more {
            true => documents.last().map(|d| d.id.clone()),
            false => None,
        };
        Ok(ScrollPage {
            documents,
            next_cursor,
        })
    }
}

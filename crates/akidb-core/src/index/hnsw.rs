//! HNSW search and insertion (Malkov & Yashunin 2016; the structure follows hnswlib).

use std::cmp::Reverse;

use super::graph::Graph;
use super::scratch::{Item, Scratch};
use super::space::{Space, prefetch};

/// Hard cap on a node's level (with M = 16, level 16 has probability 16^-16).
pub(crate) const MAX_LEVEL: usize = 16;

/// Deterministic level for a slot: `floor(-ln(U) * mL)` with `mL = 1 / ln(M)` and `U` from
/// splitmix64 of the slot number, so a slot's level does not depend on when it is inserted.
pub(crate) fn random_level(slot: u32, m: usize) -> usize {
    let mut z = (slot as u64) ^ 0x5EED_A4B1_D000_0001;
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    // U in (0, 1]
    let u = ((z >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let ml = 1.0 / (m as f64).ln();
    ((-u.ln() * ml) as usize).min(MAX_LEVEL)
}

/// How a [`View::search_layer`] walk ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Walk {
    /// Distance evaluations.
    pub work: usize,
    /// Stopped on the budget before converging: its results may miss closer nodes.
    pub exhausted: bool,
}

/// Read-only view over what a graph search needs: the graph and the space its distances are
/// measured in.
#[derive(Clone, Copy)]
pub(crate) struct View<'a, S: Space> {
    pub graph: &'a Graph,
    pub space: S,
}

impl<S: Space> View<'_, S> {
    /// Greedy descent on one upper level: move to the closest neighbour until none is closer.
    pub fn greedy(&self, q: &S::Query<'_>, mut cur: Item, level: usize) -> Item {
        loop {
            let mut changed = false;
            for &n in self.graph.neighbors(cur.id, level) {
                let d = self.space.d(q, n);
                if d < cur.d {
                    cur = Item { d, id: n };
                    changed = true;
                }
            }
            if !changed {
                return cur;
            }
        }
    }

    /// Entry point descended greedily from the top level down to `level + 1`'s result.
    pub fn descend(&self, q: &S::Query<'_>, down_to: usize) -> Option<Item> {
        let (ep, top) = self.graph.entry?;
        let mut cur = Item {
            d: self.space.d(q, ep),
            id: ep,
        };
        let mut l = top;
        while l > down_to {
            cur = self.greedy(q, cur, l);
            l -= 1;
        }
        Some(cur)
    }

    /// Beam search on one level from `ep` (hnswlib's `searchBaseLayerST`). All nodes are
    /// traversed; only those with `admit(id)` enter the result heap (`s.results`, at most `ef`),
    /// so nodes not admitted (tombstones, filtered out) never end the walk: it goes on past
    /// them until `ef` admitted ones are found and no candidate is closer than the worst of
    /// them (converged), or `budget` distance evaluations are spent (exhausted).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub fn search_layer<A: Fn(u32) -> bool>(
        &self,
        q: &S::Query<'_>,
        ep: Item,
        ef: usize,
        level: usize,
        admit: A,
        budget: usize,
        s: &mut Scratch,
    ) -> Walk {
        let Scratch {
            visited,
            candidates,
            results,
            batch,
            ..
        } = s;
        visited.reset(self.graph.len());
        candidates.clear();
        results.clear();
        visited.insert(ep.id);
        let mut lower = f32::INFINITY;
        if admit(ep.id) {
            results.push(ep);
            lower = ep.d;
        }
        candidates.push(Reverse(ep));
        let mut work = 1usize;
        let mut exhausted = false;
        while let Some(&Reverse(c)) = candidates.peek() {
            if c.d > lower && results.len() >= ef {
                break;
            }
            if work >= budget {
                exhausted = true;
                break;
            }
            candidates.pop();
            let links = if level == 0 {
                self.graph.neighbors0(c.id)
            } else {
                self.graph.neighbors(c.id, level)
            };
            // Prefetch: the first cache line of every unvisited neighbour now, the rest of
            // each vector one neighbour ahead of the distance loop (a few % more QPS than
            // hnswlib's first-line-only prefetch in best-of-20 runs on the minilm set; the
            // search is memory-latency bound).
            batch.clear();
            for &n in links {
                if visited.insert(n) {
                    prefetch(self.space.location(n).0);
                    batch.push(n);
                }
            }
            work += batch.len();
            if let Some(&first) = batch.first() {
                self.space.prefetch_rest(first);
            }
            for (j, &n) in batch.iter().enumerate() {
                if let Some(&next) = batch.get(j + 1) {
                    self.space.prefetch_rest(next);
                }
                let d = self.space.d(q, n);
                if results.len() < ef || d < lower {
                    candidates.push(Reverse(Item { d, id: n }));
                    if admit(n) {
                        results.push(Item { d, id: n });
                        if results.len() > ef {
                            results.pop();
                        }
                        lower = results.peek().map_or(f32::INFINITY, |t| t.d);
                    }
                }
            }
            if level == 0
                && let Some(&Reverse(next)) = candidates.peek()
            {
                prefetch(self.graph.neighbors0_ptr(next.id));
            }
        }
        Walk { work, exhausted }
    }

    /// hnswlib's `getNeighborsByHeuristic2`: from `cands` (sorted ascending by distance to the
    /// base point) keep a candidate only if it is closer to the base point than to every
    /// already-kept one; at most `max` are kept, into `out` (ascending).
    pub fn select_heuristic(&self, cands: &[Item], max: usize, out: &mut Vec<Item>) {
        out.clear();
        if cands.len() <= max {
            out.extend_from_slice(cands);
            return;
        }
        // Each candidate is decoded once (free in f32), and compared with the kept ones.
        let dist = self.space.kernel();
        let mut kept: Vec<S::Decoded<'_>> = Vec::with_capacity(max);
        for &c in cands {
            if out.len() >= max {
                break;
            }
            let cv = self.space.decoded(c.id);
            let good = kept.iter().all(|r| dist.eval(&cv, r) >= c.d);
            if good {
                out.push(c);
                kept.push(cv);
            }
        }
    }
}

/// What inserting a slot will link, found on the graph as it was before its batch (read-only,
/// so the plans of one batch are made in parallel): per level, top-down, the `ef_construction`
/// nearest nodes, ascending.
pub(crate) struct Plan {
    slot: u32,
    level: usize,
    per_level: Vec<(usize, Vec<Item>)>,
}

/// Plans the insertion of `slot` (its vector stored, not yet a node of `view.graph`).
pub(crate) fn plan<S: Space>(
    view: &View<'_, S>,
    ef_construction: usize,
    slot: u32,
    s: &mut Scratch,
) -> Plan {
    let level = random_level(slot, view.graph.m);
    let mut per_level = Vec::new();
    let Some((_, top)) = view.graph.entry else {
        return Plan {
            slot,
            level,
            per_level,
        };
    };
    let q = view.space.node_query(slot);
    let mut cur = view.descend(&q, level).expect("graph has an entry point");
    for l in (0..=level.min(top)).rev() {
        view.search_layer(&q, cur, ef_construction, l, |_| true, usize::MAX, s);
        s.sorted.clear();
        s.sorted.extend(s.results.drain());
        s.sorted.sort_unstable();
        if let Some(&nearest) = s.sorted.first() {
            cur = nearest;
            per_level.push((l, s.sorted.clone()));
        }
    }
    Plan {
        slot,
        level,
        per_level,
    }
}

/// Adds a planned slot (== `graph.len()`) to the graph: on each level its links are chosen
/// (the heuristic) from the planned candidates plus the nodes of its own batch added before it
/// (`batch`), which the plan could not see; then the reverse links.
pub(crate) fn apply<S: Space>(
    graph: &mut Graph,
    space: S,
    plan: Plan,
    batch: &[u32],
    s: &mut Scratch,
) {
    let Plan {
        slot,
        level,
        per_level,
    } = plan;
    let id = graph.add_node(level);
    debug_assert_eq!(id, slot);
    let Some((_, top)) = graph.entry else {
        graph.entry = Some((slot, level));
        return;
    };
    let q = space.node_query(slot);
    let mut planned = per_level.into_iter().peekable();
    let mut links: Vec<(usize, Vec<Item>)> = Vec::new();
    for l in (0..=level.min(top)).rev() {
        let mut cands = match planned.peek() {
            Some((pl, _)) if *pl == l => planned.next().expect("peeked").1,
            _ => Vec::new(),
        };
        let before = cands.len();
        for &b in batch {
            if graph.level(b) >= l {
                cands.push(Item {
                    d: space.d(&q, b),
                    id: b,
                });
            }
        }
        if cands.len() > before {
            cands.sort_unstable();
        }
        if cands.is_empty() {
            continue;
        }
        let view = View { graph, space };
        view.select_heuristic(&cands, graph.m, &mut s.selected);
        links.push((l, s.selected.clone()));
    }
    for (l, selected) in links {
        graph.set_neighbors(slot, l, selected.iter().map(|it| it.id));
        for it in &selected {
            connect(graph, space, it.id, slot, it.d, l, s);
        }
    }
    if level > top {
        graph.entry = Some((slot, level));
    }
}

/// Adds the reverse link `node -> new` on `level`; if `node`'s list is full, re-selects its
/// links with the heuristic over the old links plus `new`.
#[allow(clippy::too_many_arguments)]
fn connect<S: Space>(
    graph: &mut Graph,
    space: S,
    node: u32,
    new: u32,
    d_new: f32,
    level: usize,
    s: &mut Scratch,
) {
    if graph.try_push_neighbor(node, level, new) {
        return;
    }
    let cap = graph.capacity(level);
    let view = View { graph, space };
    let nq = space.node_query(node);
    s.prune.clear();
    s.prune.push(Item { d: d_new, id: new });
    for &x in graph.neighbors(node, level) {
        s.prune.push(Item {
            d: space.d(&nq, x),
            id: x,
        });
    }
    s.prune.sort_unstable();
    view.select_heuristic(&s.prune, cap, &mut s.pruned);
    graph.set_neighbors(node, level, s.pruned.iter().map(|it| it.id));
}

/// HNSW search; leaves the best ≤ ef admitted graph nodes in `s.results`. Returns their
/// number, or `None` when the level-0 walk stopped on `budget` before converging (the results
/// may then miss closer nodes, however many there are).
pub(crate) fn graph_search<S: Space, A: Fn(u32) -> bool>(
    view: &View<'_, S>,
    q: &S::Query<'_>,
    ef: usize,
    admit: A,
    budget: usize,
    s: &mut Scratch,
) -> Option<usize> {
    let Some(ep) = view.descend(q, 0) else {
        s.results.clear();
        return Some(0);
    };
    let walk = view.search_layer(q, ep, ef, 0, admit, budget, s);
    (!walk.exhausted).then_some(s.results.len())
}

/// Drops the worst items of a max-heap until it holds `k`.
pub(crate) fn truncate(heap: &mut std::collections::BinaryHeap<Item>, k: usize) {
    while heap.len() > k {
        heap.pop();
    }
}

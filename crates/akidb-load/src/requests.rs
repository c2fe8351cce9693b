//! One request of the run: which operation request `i` is, which collection it goes to, the
//! vectors it carries (seeded random or the dataset's), and how it ended ([`Outcome`]). Every
//! request is a function of the seed and `i`, so runs with the same flags send the same
//! requests. The loops that send them are in `run/drive.rs`.

use std::sync::Arc;
use std::time::Instant;

use akidb_api::{
    DocumentIn, SearchRequest, SearchResponse, TierAction, TierRequest, TierStatus, UpsertRequest,
    UpsertResponse,
};

use crate::churn::log::{ChurnLog, Sample, recall_by_score, replacement};
use crate::dataset::{Dataset, recall};
use crate::mix::{Mix, Op};
use crate::raw::{Raw, collection_path};
use crate::rng::Rng;
use crate::stats::Outcome;
use crate::zipf::Zipf;

/// Where vectors come from.
pub enum Source {
    Random { dim: usize },
    Dataset { data: Arc<Dataset>, loaded: usize },
}

/// How a request picks its collection.
#[derive(Debug, Clone)]
pub enum CollectionChoice {
    /// Every collection equally likely.
    Uniform,
    /// Zipf-like by index (`tiered`: the first collections get most requests).
    Zipf(Zipf),
}

impl CollectionChoice {
    /// One of `n` collections, from the request's random stream.
    fn pick(&self, n: usize, rng: &mut Rng) -> usize {
        match self {
            CollectionChoice::Uniform => rng.below(n),
            CollectionChoice::Zipf(z) => z.pick(rng.next_u64()),
        }
    }
}

/// What every request needs: the client, the collections, the vectors. Built by the prepare
/// phase, shared by the request tasks, and handed to the scenario hooks (which send requests of
/// their own: `tiered` times a first search per tier).
pub struct Requests {
    /// Raw JSON requests, so the `Retry-After` of an error answer is seen.
    pub raw: Raw,
    pub names: Vec<String>,
    pub choice: CollectionChoice,
    pub mix: Mix,
    pub seed: u64,
    pub k: usize,
    /// `--ef`: sent with every search when given.
    pub ef: Option<usize>,
    pub insert_batch: usize,
    pub source: Source,
    /// Dataset runs with valid ground truth: the exact top-k per query.
    pub truth: Option<Vec<Option<Vec<u32>>>>,
    /// The `churn` scenario: inserts replace preloaded documents with changed vectors, and each
    /// search is checked against the server's exact answer (see `churn/mod.rs`).
    pub churn: Option<Arc<ChurnLog>>,
}

/// Query vectors of a churn run without a dataset (so that each is searched several times).
pub const RANDOM_QUERIES: usize = 1000;

/// How a request ended, and when its measured part did (a churn search's exact check comes
/// after it and is not part of its latency).
#[derive(Debug)]
pub struct Done {
    pub outcome: Outcome,
    pub ended: Instant,
}

impl Requests {
    /// Request `i`'s operation and its private random stream (deterministic in seed and i).
    pub fn plan(&self, i: u64) -> (Op, Rng) {
        let mut rng = Rng::derive(self.seed, 0x6F70, i);
        (self.mix.pick(rng.next_u64()), rng)
    }

    /// Request `i`'s operation `op` on the collection its random stream picks.
    pub async fn execute(&self, op: Op, mut rng: Rng, i: u64) -> Done {
        let c = self.choice.pick(self.names.len(), &mut rng);
        self.execute_timed(op, c, rng, i).await
    }

    /// Request `i`'s operation `op` on collection `c`.
    pub async fn execute_on(&self, op: Op, c: usize, rng: Rng, i: u64) -> Outcome {
        self.execute_timed(op, c, rng, i).await.outcome
    }

    /// Request `i`'s operation `op` on collection `c`, and when its measured part ended.
    async fn execute_timed(&self, op: Op, c: usize, mut rng: Rng, i: u64) -> Done {
        let name = &self.names[c];
        if let Some(churn) = &self.churn {
            match op {
                Op::Search => return self.churn_search(churn, c, rng).await,
                Op::Insert => return self.churn_replace(churn, c, rng).await,
                // Churn measures recall, not tier moves: its tier operations only read.
                Op::Tier => {
                    return Done {
                        outcome: tier_read(&self.raw, name).await,
                        ended: Instant::now(),
                    };
                }
            }
        }
        let outcome = match op {
            Op::Search => {
                let (vector, truth) = match &self.source {
                    Source::Random { dim } => (rng.vector(*dim), None),
                    Source::Dataset { data, .. } => {
                        let q = rng.below(data.queries.len());
                        let truth = self.truth.as_ref().and_then(|t| t[q].as_ref());
                        (data.queries.row(q).to_vec(), truth)
                    }
                };
                let req = self.search_request(vector);
                let path = collection_path(name, "/search");
                match self.raw.post::<_, SearchResponse>(&path, &req).await {
                    Ok(resp) if resp.results.len() > self.k => Outcome::Transport("decode"),
                    Ok(resp) => Outcome::Ok {
                        recall: truth.map(|t| {
                            let ids: Vec<String> = resp.results.into_iter().map(|h| h.id).collect();
                            recall(&ids, t)
                        }),
                    },
                    Err(f) => f.outcome(),
                }
            }
            Op::Insert => {
                let documents: Vec<DocumentIn> = (0..self.insert_batch)
                    .map(|b| match &self.source {
                        // Random mode: new documents (the collections grow).
                        Source::Random { dim } => DocumentIn {
                            id: Some(format!("load-extra-{i}-{b}")),
                            vector: rng.vector(*dim),
                            metadata: None,
                        },
                        // Dataset mode: re-upsert a base vector under its own id, so the
                        // collection keeps exactly the base set and the ground truth stays valid.
                        Source::Dataset { data, loaded } => {
                            let j = rng.below(*loaded);
                            DocumentIn {
                                id: Some(j.to_string()),
                                vector: data.base.row(j).to_vec(),
                                metadata: None,
                            }
                        }
                    })
                    .collect();
                let n = documents.len() as u64;
                let path = collection_path(name, "/documents");
                let req = UpsertRequest { documents };
                match self.raw.post::<_, UpsertResponse>(&path, &req).await {
                    Ok(resp) if resp.upserted == n => Outcome::Ok { recall: None },
                    Ok(_) => Outcome::Transport("decode"),
                    Err(f) => f.outcome(),
                }
            }
            Op::Tier => tier_op(&self.raw, name, i).await,
        };
        Done {
            outcome,
            ended: Instant::now(),
        }
    }

    /// A churn search's query vector and its number: a random row of `queries.fvecs`, or one
    /// of [`RANDOM_QUERIES`] seeded random vectors.
    fn query(&self, rng: &mut Rng) -> (usize, Vec<f32>) {
        match &self.source {
            Source::Random { dim } => {
                let q = rng.below(RANDOM_QUERIES);
                (q, Rng::derive(self.seed, 0x7175, q as u64).vector(*dim))
            }
            Source::Dataset { data, .. } => {
                let q = rng.below(data.queries.len());
                (q, data.queries.row(q).to_vec())
            }
        }
    }

    /// The preloaded vector of `row` in collection `c` (see `run/collections.rs`).
    fn original(&self, c: usize, row: usize) -> Vec<f32> {
        match &self.source {
            Source::Random { dim } => Rng::derive(self.seed, c as u64, row as u64).vector(*dim),
            Source::Dataset { data, .. } => data.base.row(row).to_vec(),
        }
    }

    /// The preloaded rows per collection.
    fn loaded(&self, churn: &ChurnLog) -> usize {
        match &self.source {
            Source::Dataset { loaded, .. } => *loaded,
            Source::Random { .. } => churn.per_collection,
        }
    }

    /// The tool's search: k nearest to `vector` at `--ef` (else the collection's default), ids
    /// and scores only.
    fn search_request(&self, vector: Vec<f32>) -> SearchRequest {
        SearchRequest {
            vector,
            k: self.k,
            ef: self.ef,
            nprobe: None,
            filter: None,
            exact: false,
            include_vector: false,
            include_metadata: false,
            report: false,
            timeout_ms: None,
            text: None,
            text_field: None,
            text_weight: None,
        }
    }

    /// A churn search: the measured search (`--ef`, else the collection's default), then the
    /// same query exact; recall by score, flagged when a document of either answer was written
    /// meanwhile.
    async fn churn_search(&self, churn: &ChurnLog, c: usize, mut rng: Rng) -> Done {
        let (q, vector) = self.query(&mut rng);
        let path = collection_path(&self.names[c], "/search");
        let mut req = self.search_request(vector);
        let sent = churn.now();
        let replaced_before = churn.replaced();
        let found = self.raw.post::<_, SearchResponse>(&path, &req).await;
        let ended = Instant::now();
        let found = match found {
            Ok(resp) if resp.results.len() > self.k => {
                return Done {
                    outcome: Outcome::Transport("decode"),
                    ended,
                };
            }
            Ok(resp) => resp,
            Err(f) => {
                return Done {
                    outcome: f.outcome(),
                    ended,
                };
            }
        };
        req.exact = true;
        let recall = match self.raw.post::<_, SearchResponse>(&path, &req).await {
            Ok(exact) => {
                let scores = |r: &SearchResponse| r.results.iter().map(|h| h.score).collect();
                let (f, e): (Vec<f32>, Vec<f32>) = (scores(&found), scores(&exact));
                let recall = recall_by_score(&f, &e, self.k);
                let conflicted = found
                    .results
                    .iter()
                    .chain(&exact.results)
                    .filter_map(|h| row_of(&h.id))
                    .filter(|&row| row < churn.per_collection)
                    .any(|row| churn.touched_since(churn.doc(c, row), sent));
                if let Some(recall) = recall {
                    churn.record(Sample {
                        at: ended,
                        query: q,
                        recall,
                        conflicted,
                        replaced_before,
                    });
                }
                recall
            }
            Err(_) => {
                churn.exact_failed();
                None
            }
        };
        Done {
            outcome: Outcome::Ok { recall },
            ended,
        }
    }

    /// A churn insert: `insert_batch` preloaded documents replaced by changed vectors.
    async fn churn_replace(&self, churn: &ChurnLog, c: usize, mut rng: Rng) -> Done {
        let loaded = self.loaded(churn);
        let mut rows: Vec<usize> = Vec::with_capacity(self.insert_batch);
        let documents: Vec<DocumentIn> = (0..self.insert_batch)
            .map(|_| {
                let row = rng.below(loaded);
                rows.push(row);
                DocumentIn {
                    id: Some(preload_id(&self.source, row)),
                    vector: replacement(&self.original(c, row), churn.noise as f32, &mut rng),
                    metadata: None,
                }
            })
            .collect();
        let docs: Vec<usize> = rows.iter().map(|&r| churn.doc(c, r)).collect();
        let n = documents.len() as u64;
        let path = collection_path(&self.names[c], "/documents");
        let req = UpsertRequest { documents };
        churn.write_started(&docs);
        let r = self.raw.post::<_, UpsertResponse>(&path, &req).await;
        let ended = Instant::now();
        let outcome = match r {
            Ok(resp) if resp.upserted == n => Outcome::Ok { recall: None },
            Ok(_) => Outcome::Transport("decode"),
            Err(f) => f.outcome(),
        };
        churn.write_ended(&docs, matches!(outcome, Outcome::Ok { .. }));
        Done { outcome, ended }
    }
}

/// The id the preload gives `row` (see `run/collections.rs`).
pub fn preload_id(source: &Source, row: usize) -> String {
    match source {
        Source::Random { .. } => format!("base-{row}"),
        Source::Dataset { .. } => row.to_string(),
    }
}

/// The preload row of an id (`base-<row>` or `<row>`), when it is one.
pub fn row_of(id: &str) -> Option<usize> {
    id.strip_prefix("base-").unwrap_or(id).parse().ok()
}

/// A tier status read, `GET /api/v1/collections/{name}/tier`. It reads where the data is
/// without counting as an access, so it never moves the collection itself.
pub async fn tier_read(raw: &Raw, name: &str) -> Outcome {
    match raw.get::<TierStatus>(&collection_path(name, "/tier")).await {
        Ok(_) => Outcome::Ok { recall: None },
        Err(f) => f.outcome(),
    }
}

/// What the tier operation of request `i` does: the actions in turn (as the seed's tier
/// control: promotes, demotes, pins and unpins besides status reads). `None` is a status read.
pub const TIER_ROTATION: [Option<TierAction>; 5] = [
    None,
    Some(TierAction::Pin),
    Some(TierAction::Demote),
    Some(TierAction::Unpin),
    Some(TierAction::Promote),
];

/// A "tier" operation: request `i`'s turn of [`TIER_ROTATION`] on the collection: a status
/// read, or `POST .../tier` with pin, demote (one tier down; a cold collection stays cold),
/// unpin or promote (to hot; a write waits for the load).
pub async fn tier_op(raw: &Raw, name: &str, i: u64) -> Outcome {
    let Some(action) = TIER_ROTATION[(i % TIER_ROTATION.len() as u64) as usize] else {
        return tier_read(raw, name).await;
    };
    let req = TierRequest {
        action,
        target: None,
    };
    match raw
        .post::<_, TierStatus>(&collection_path(name, "/tier"), &req)
        .await
    {
        Ok(_) => Outcome::Ok { recall: None },
        Err(f) => f.outcome(),
    }
}

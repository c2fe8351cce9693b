//! One request of the run: which operation request `i` is, which collection it goes to, the
//! vectors it carries (seeded random or the dataset's), and how it ended ([`Outcome`]). Every
//! request is a function of the seed and `i`, so runs with the same flags send the same
//! requests. The loops that send them are in `run/drive.rs`.

use std::sync::Arc;

use akidb_api::{
    DocumentIn, SearchRequest, SearchResponse, TierStatus, UpsertRequest, UpsertResponse,
};

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
    pub insert_batch: usize,
    pub source: Source,
    /// Dataset runs with valid ground truth: the exact top-k per query.
    pub truth: Option<Vec<Option<Vec<u32>>>>,
}

impl Requests {
    /// Request `i`'s operation and its private random stream (deterministic in seed and i).
    pub fn plan(&self, i: u64) -> (Op, Rng) {
        let mut rng = Rng::derive(self.seed, 0x6F70, i);
        (self.mix.pick(rng.next_u64()), rng)
    }

    /// Request `i`'s operation `op` on the collection its random stream picks.
    pub async fn execute(&self, op: Op, mut rng: Rng, i: u64) -> Outcome {
        let c = self.choice.pick(self.names.len(), &mut rng);
        self.execute_on(op, c, rng, i).await
    }

    /// Request `i`'s operation `op` on collection `c`.
    pub async fn execute_on(&self, op: Op, c: usize, mut rng: Rng, i: u64) -> Outcome {
        let name = &self.names[c];
        match op {
            Op::Search => {
                let (vector, truth) = match &self.source {
                    Source::Random { dim } => (rng.vector(*dim), None),
                    Source::Dataset { data, .. } => {
                        let q = rng.below(data.queries.len());
                        let truth = self.truth.as_ref().and_then(|t| t[q].as_ref());
                        (data.queries.row(q).to_vec(), truth)
                    }
                };
                let req = SearchRequest {
                    vector,
                    k: self.k,
                    ef: None,
                    nprobe: None,
                    filter: None,
                    exact: false,
                    include_vector: false,
                    include_metadata: false,
                    report: false,
                    timeout_ms: None,
                };
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
            Op::Tier => tier_op(&self.raw, name).await,
        }
    }
}

/// A "tier" operation: a tier status read, `GET /api/v1/collections/{name}/tier`. It reads
/// where the data is without counting as an access, so it never moves the collection itself.
pub async fn tier_op(raw: &Raw, name: &str) -> Outcome {
    match raw.get::<TierStatus>(&collection_path(name, "/tier")).await {
        Ok(_) => Outcome::Ok { recall: None },
        Err(f) => f.outcome(),
    }
}

//! The run's collections over the typed client: created (or checked, when they exist) and
//! preloaded before the load, the wait for the server's index, and their deletion at the end
//! (or after a failed setup: then only those this run created).

use std::time::{Duration, Instant};

use akidb_api::client::Client;
use akidb_api::{CreateCollectionRequest, DocumentIn, Metric, UpsertRequest};
use anyhow::{Context, Result, anyhow, bail};

use crate::report::CollectionReport;
use crate::requests::{Source, preload_id};
use crate::rng::Rng;

/// Vectors per preload request.
pub const PRELOAD_BATCH: usize = 1000;

/// The collections after their setup.
pub struct SetUp {
    pub collections: Vec<CollectionReport>,
    /// Those this run created (the rest existed with the right dimension).
    pub created_now: Vec<String>,
}

/// Creates (or checks) and preloads each collection in turn, and reads its count back. On
/// failure, only what this run created is deleted (when `cleanup`): a pre-existing collection
/// never is.
pub async fn set_up(
    client: &Client,
    names: &[String],
    dim: usize,
    loaded: usize,
    seed: u64,
    source: &Source,
    cleanup: bool,
) -> Result<SetUp> {
    let mut collections = Vec::new();
    let mut created_now = Vec::new();
    let setup = async {
        for (c, name) in names.iter().enumerate() {
            let created = ensure_collection(client, name, dim).await?;
            if created {
                created_now.push(name.clone());
            }
            preload(client, name, c, loaded, seed, source).await?;
            let info = client.get_collection(name).await?;
            collections.push(CollectionReport {
                name: name.clone(),
                created,
                dimension: info.dimension,
                count_after_preload: info.count,
                deleted_at_end: false,
            });
            if names.len() <= 10 || (c + 1) % 10 == 0 {
                eprintln!("[akidb-load] preloaded {name}: {} documents", info.count);
            }
        }
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = setup {
        if cleanup {
            delete_collections(client, &created_now).await;
        }
        return Err(e);
    }
    Ok(SetUp {
        collections,
        created_now,
    })
}

/// Lets the index absorb the preload, so searches measure HNSW rather than exact scans: polls
/// the collections until nothing is pending or `timeout_secs` have passed. Returns the vectors
/// still pending.
pub async fn wait_for_index(client: &Client, names: &[String], timeout_secs: f64) -> Result<u64> {
    let index_started = Instant::now();
    let pending = loop {
        let mut pending = 0;
        for name in names {
            pending += client.get_collection(name).await?.index_pending;
        }
        if pending == 0 || index_started.elapsed().as_secs_f64() >= timeout_secs {
            break pending;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    Ok(pending)
}

/// Creates the collection or checks that the existing one has the right dimension.
pub async fn ensure_collection(client: &Client, name: &str, dim: usize) -> Result<bool> {
    let req = CreateCollectionRequest {
        name: name.to_string(),
        dimension: dim,
        metric: Metric::Cosine,
        index: None,
        quantization: None,
    };
    match client.create_collection(&req).await {
        Ok(info) if info.dimension == dim => Ok(true),
        Ok(info) => bail!(
            "the server created {name} with dimension {} although {dim} was asked",
            info.dimension
        ),
        Err(e) if e.code() == Some("collection_exists") => {
            let info = client
                .get_collection(name)
                .await
                .with_context(|| format!("reading the existing collection {name}"))?;
            if info.dimension != dim {
                bail!(
                    "wrong dimension: collection {name} already exists with dimension {}, but this \
                     run uses dimension {dim}; delete it (DELETE /api/v1/collections/{name}) or \
                     choose a matching --dimension/--dataset",
                    info.dimension
                );
            }
            if info.status != "ready" {
                bail!(
                    "collection {name} exists but is {}: {}",
                    info.status,
                    info.reason.unwrap_or_default()
                );
            }
            Ok(false)
        }
        Err(e) => Err(anyhow!(e).context(format!("creating collection {name}"))),
    }
}

/// Upserts the first `n` vectors of collection `c` in batches of [`PRELOAD_BATCH`].
pub async fn preload(
    client: &Client,
    name: &str,
    c: usize,
    n: usize,
    seed: u64,
    src: &Source,
) -> Result<()> {
    for start in (0..n).step_by(PRELOAD_BATCH) {
        let documents: Vec<DocumentIn> = (start..(start + PRELOAD_BATCH).min(n))
            .map(|j| match src {
                Source::Random { dim } => DocumentIn {
                    id: Some(preload_id(src, j)),
                    vector: Rng::derive(seed, c as u64, j as u64).vector(*dim),
                    metadata: None,
                },
                Source::Dataset { data, .. } => DocumentIn {
                    id: Some(preload_id(src, j)),
                    vector: data.base.row(j).to_vec(),
                    metadata: None,
                },
            })
            .collect();
        let sent = documents.len() as u64;
        match client.upsert(name, &UpsertRequest { documents }).await {
            Ok(r) if r.upserted == sent => {}
            Ok(r) => bail!(
                "preload of {name}: sent {sent} documents, the server upserted {}",
                r.upserted
            ),
            Err(e) if e.code() == Some("invalid_argument") => bail!(
                "the server rejected the preload of {name} (wrong dimension or invalid vectors?): {e}"
            ),
            Err(e) => {
                return Err(anyhow!(e).context(format!("preloading {name} rows {start}..")));
            }
        }
    }
    Ok(())
}

/// Deletes the collections (a missing one is fine); returns what could not be deleted.
pub async fn delete_collections(client: &Client, names: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    for name in names {
        match client.delete_collection(name).await {
            Ok(()) => {}
            Err(e) if e.code() == Some("collection_not_found") => {}
            Err(e) => problems.push(format!("could not delete {name}: {e}")),
        }
    }
    problems
}

//! The import's one door to the server: a batch of rows sent as an Arrow IPC upsert body,
//! retried on 503 and 429 (after `Retry-After`) and on connections that fail (every row has an
//! id, so a resend is harmless); a row the server refuses comes back as [`Refused::Row`].

use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use arrow_ipc::writer::StreamWriter;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::Value;

use crate::routes::arrow_body::record_batch;

/// Rows on their way, with where each came from (file, row in it). `first` and `span` are the
/// rows over all files this batch covers, bad rows set aside included, for the checkpoint.
#[derive(Debug)]
pub struct Batch {
    first: u64,
    span: u64,
    dim: usize,
    ids: Vec<String>,
    vectors: Vec<f32>,
    metadata: Vec<Option<String>>,
    origins: Vec<(String, u64)>,
}

impl Batch {
    pub fn new(first: u64, dim: usize) -> Batch {
        Batch {
            first,
            span: 0,
            dim,
            ids: Vec::new(),
            vectors: Vec::new(),
            metadata: Vec::new(),
            origins: Vec::new(),
        }
    }

    pub fn push(
        &mut self,
        id: String,
        vector: &[f32],
        metadata: Option<String>,
        origin: (String, u64),
    ) {
        self.ids.push(id);
        self.vectors.extend_from_slice(vector);
        self.metadata.push(metadata);
        self.origins.push(origin);
        self.span += 1;
    }

    /// A row read but set aside: covered by the batch's range, not sent.
    pub fn skip_row(&mut self) {
        self.span += 1;
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn first(&self) -> u64 {
        self.first
    }

    pub fn span(&self) -> u64 {
        self.span
    }

    pub fn origin(&self, index: usize) -> &(String, u64) {
        &self.origins[index]
    }

    /// The batch without its row `index` (refused by the server), same range.
    pub fn without(mut self, index: usize) -> Batch {
        self.ids.remove(index);
        self.vectors.drain(index * self.dim..(index + 1) * self.dim);
        self.metadata.remove(index);
        self.origins.remove(index);
        self
    }

    /// The Arrow IPC stream body: `id`, `vector` (fixed-size list of float32), `metadata`.
    fn body(&self) -> anyhow::Result<Vec<u8>> {
        let rows = (0..self.len()).map(|i| {
            (
                self.ids[i].as_str(),
                &self.vectors[i * self.dim..(i + 1) * self.dim],
                self.metadata[i].as_deref(),
            )
        });
        let batch = record_batch(self.dim, rows)?;
        let mut out = Vec::with_capacity(self.vectors.len() * 4 + self.len() * 64);
        let mut writer = StreamWriter::try_new(&mut out, &batch.schema())?;
        writer.write(&batch)?;
        writer.finish()?;
        drop(writer);
        Ok(out)
    }
}

/// Why a batch was not written.
pub enum Refused {
    /// The server refused row `index` of the batch (400 naming `documents[index]`).
    Row {
        batch: Batch,
        index: usize,
        message: String,
    },
    /// Anything else: the import stops.
    Failed(anyhow::Error),
}

const ATTEMPTS: u32 = 10;

#[derive(Clone)]
pub struct Uploader {
    http: reqwest::Client,
    base: String,
    collection: String,
}

impl Uploader {
    pub fn new(url: &str, api_key: Option<&str>, collection: &str) -> anyhow::Result<Uploader> {
        let mut headers = HeaderMap::new();
        if let Some(key) = api_key {
            let mut value = HeaderValue::from_str(&format!("Bearer {key}"))
                .context("the API key is not a valid header value")?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .default_headers(headers)
            .timeout(Duration::from_secs(300))
            .build()?;
        Ok(Uploader {
            http,
            base: format!(
                "{}/api/v1/collections/{}",
                url.trim_end_matches('/'),
                collection
            ),
            collection: collection.to_string(),
        })
    }

    /// The collection's description, or `None` when it does not exist.
    async fn describe(&self) -> anyhow::Result<Option<Value>> {
        let resp = self
            .http
            .get(&self.base)
            .send()
            .await
            .with_context(|| format!("no answer from {}", self.base))?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(resp.json().await?)),
            s => bail!(
                "{}: HTTP {s}: {}",
                self.base,
                resp.text().await.unwrap_or_default()
            ),
        }
    }

    /// The collection's dimension, or `None` when it does not exist.
    pub async fn dimension(&self) -> anyhow::Result<Option<usize>> {
        Ok(self
            .describe()
            .await?
            .and_then(|c| c["dimension"].as_u64().map(|d| d as usize)))
    }

    pub async fn create(&self, dimension: usize, metric: &str) -> anyhow::Result<()> {
        let url = self
            .base
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(&self.base);
        let body =
            serde_json::json!({"name": self.collection, "dimension": dimension, "metric": metric});
        let resp = self.http.post(url).json(&body).send().await?;
        if !resp.status().is_success() && resp.status() != StatusCode::CONFLICT {
            bail!(
                "creating {}: HTTP {}: {}",
                self.collection,
                resp.status(),
                resp.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// Polls until nothing is left to index; returns when.
    pub async fn wait_indexed(&self, every: Duration) -> anyhow::Result<Instant> {
        loop {
            let c = self.describe().await?.context("the collection went away")?;
            if c["index_pending"].as_u64() == Some(0) {
                return Ok(Instant::now());
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Sends the batch until it is acknowledged, refused or out of retries.
    pub async fn send(self, batch: Batch) -> Result<Batch, Refused> {
        let body = batch.body().map_err(Refused::Failed)?;
        let url = format!("{}/documents", self.base);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = self
                .http
                .post(&url)
                .header(CONTENT_TYPE, "application/vnd.apache.arrow.stream")
                .body(body.clone())
                .send()
                .await;
            let resp = match sent {
                Ok(resp) => resp,
                Err(e) if attempt < ATTEMPTS => {
                    tracing::debug!(error = %e, "retrying a batch");
                    tokio::time::sleep(Duration::from_millis(100 << attempt.min(6))).await;
                    continue;
                }
                Err(e) => return Err(Refused::Failed(anyhow!("no answer from {url}: {e}"))),
            };
            let status = resp.status();
            if status.is_success() {
                return Ok(batch);
            }
            let wait = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let text = resp.text().await.unwrap_or_default();
            if matches!(
                status,
                StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS
            ) && attempt < ATTEMPTS
            {
                tokio::time::sleep(Duration::from_secs(wait.unwrap_or(1).min(30))).await;
                continue;
            }
            let error: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let message = error["error"]["message"]
                .as_str()
                .unwrap_or(&text)
                .to_string();
            let row = error["error"]["field"]
                .as_str()
                .and_then(|f| f.strip_prefix("documents["))
                .and_then(|f| f.split(']').next())
                .and_then(|i| i.parse::<usize>().ok())
                .filter(|&i| i < batch.len());
            return Err(match row {
                Some(index) if status == StatusCode::BAD_REQUEST => Refused::Row {
                    batch,
                    index,
                    message,
                },
                _ => Refused::Failed(anyhow!("{url}: HTTP {status}: {message}")),
            });
        }
    }
}

//! The engine's figures (collections, WAL, uploads, object store, block cache, tiers), read at
//! each scrape and encoded through prometheus-client as a [`Collector`], so they share the
//! registry's exposition (Prometheus text or OpenMetrics) with the request metrics.

use std::fmt::{self, Debug};
use std::sync::atomic::{AtomicU64, Ordering};

use akidb_engine::Engine;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

pub struct EngineCollector {
    pub engine: Engine,
}

impl Debug for EngineCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineCollector").finish_non_exhaustive()
    }
}

fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

/// Writes one unlabelled gauge.
fn gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    let m = ConstGauge::new(value as i64);
    m.encode(enc.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

/// Writes one unlabelled counter (`name` without `_total`: the encoder adds it).
fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    let m = ConstCounter::new(value);
    m.encode(enc.encode_descriptor(name, help, None, MetricType::Counter)?)
}

/// Writes a labelled family: one sample per row.
fn family<M: EncodeMetric>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    rows: Vec<(Vec<(&'static str, String)>, M)>,
) -> fmt::Result {
    let mut metric = enc.encode_descriptor(name, help, None, kind)?;
    for (labels, m) in rows {
        m.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for EngineCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let e = &self.engine;
        let enc = &mut enc;
        let t = e.catalog_totals();
        gauge(
            enc,
            "akidb_collections",
            "Collections that serve",
            t.ready as u64,
        )?;
        gauge(
            enc,
            "akidb_collections_unavailable",
            "Collections that failed to open or found damage they could not heal",
            t.unavailable as u64,
        )?;
        gauge(
            enc,
            "akidb_collections_closed",
            "Cold collections closed to their catalog entry (no RAM, no file descriptor)",
            t.closed as u64,
        )?;
        gauge(
            enc,
            "akidb_documents",
            "Live documents in all collections",
            t.documents as u64,
        )?;
        gauge(
            enc,
            "akidb_index_pending_vectors",
            "Vectors written but not yet in an HNSW graph",
            t.index_pending as u64,
        )?;
        gauge(
            enc,
            "akidb_unflushed_operations",
            "Documents and deletes only in the WAL so far",
            t.unflushed as u64,
        )?;
        gauge(
            enc,
            "akidb_collection_ram_bytes",
            "Bytes held in RAM by collections",
            t.bytes_in_ram as u64,
        )?;
        gauge(
            enc,
            "akidb_quarantined_collection_dirs",
            "Local collection directories the object store does not know, set aside at start",
            e.quarantined() as u64,
        )?;

        let pool = e.file_pool();
        gauge(
            enc,
            "akidb_wal_open_files",
            "WAL files open now (bounded by max_open_files)",
            pool.open_files() as u64,
        )?;
        gauge(
            enc,
            "akidb_wal_open_files_limit",
            "max_open_files: WAL files open at once, at most",
            pool.limit() as u64,
        )?;
        counter(
            enc,
            "akidb_wal_file_evictions",
            "WAL files closed to stay under max_open_files",
            load(&pool.evictions),
        )?;
        let wal = e.wal_stats();
        gauge(
            enc,
            "akidb_wal_live_bytes",
            "Unflushed WAL bytes on local disk, all collections (writes are refused at akidb_wal_budget_bytes)",
            load(&wal.live_bytes),
        )?;
        gauge(
            enc,
            "akidb_wal_budget_bytes",
            "The WAL budget: unflushed bytes at which writes are refused",
            e.wal_budget_bytes(),
        )?;
        counter(
            enc,
            "akidb_wal_disk_full",
            "WAL appends refused because the disk was full (cut back out of the log)",
            load(&wal.disk_full),
        )?;
        counter(
            enc,
            "akidb_wal_appends",
            "WAL records appended",
            load(&wal.appends),
        )?;
        counter(
            enc,
            "akidb_wal_fsyncs",
            "WAL fsyncs (group commit shares them)",
            load(&wal.fsyncs),
        )?;
        counter(
            enc,
            "akidb_wal_bytes",
            "WAL bytes appended",
            load(&wal.bytes),
        )?;

        let up = &e.uploader().stats;
        counter(
            enc,
            "akidb_uploads",
            "Objects uploaded to the object store",
            load(&up.uploads),
        )?;
        counter(
            enc,
            "akidb_upload_bytes",
            "Bytes uploaded to the object store",
            load(&up.bytes),
        )?;
        ConstCounter::new(load(&up.upload_micros) as f64 / 1e6).encode(enc.encode_descriptor(
            "akidb_upload_seconds",
            "Time spent in uploads (divide by akidb_uploads_total for the mean)",
            None,
            MetricType::Counter,
        )?)?;
        counter(
            enc,
            "akidb_upload_multipart",
            "Uploads sent as multipart uploads",
            load(&up.multipart_uploads),
        )?;
        counter(
            enc,
            "akidb_upload_retries",
            "Upload attempts beyond the first",
            load(&up.retries),
        )?;
        counter(
            enc,
            "akidb_upload_failures_transient",
            "Uploads that exhausted their retries on transient errors",
            load(&up.failures_transient),
        )?;
        counter(
            enc,
            "akidb_upload_failures_permanent",
            "Uploads that failed permanently (dead-lettered)",
            load(&up.failures_permanent),
        )?;
        counter(
            enc,
            "akidb_upload_breaker_rejections",
            "Uploads not attempted because the circuit breaker was open",
            load(&up.breaker_rejections),
        )?;
        gauge(
            enc,
            "akidb_upload_breaker_open",
            "1 while the object-store circuit breaker is open",
            u64::from(e.uploader().breaker_open()),
        )?;
        counter(
            enc,
            "akidb_upload_breaker_opened",
            "Times the circuit breaker opened",
            e.uploader().breaker_opened_total(),
        )?;
        gauge(
            enc,
            "akidb_dlq_entries",
            "Dead-lettered flushes waiting for a re-drive",
            e.dead_letters().len() as u64,
        )?;

        // Object-store calls by operation. A put is one object (a multipart upload is one);
        // a get is one request (each range of a ranged read counts).
        family(
            enc,
            "akidb_object_store_requests",
            "Object-store requests by operation (put: objects uploaded; get: whole and ranged GETs; head: reads that were not GETs)",
            MetricType::Counter,
            vec![
                (
                    vec![("op", "put".into())],
                    ConstCounter::new(load(&up.uploads)),
                ),
                (
                    vec![("op", "get".into())],
                    ConstCounter::new(load(&up.gets)),
                ),
                (
                    vec![("op", "head".into())],
                    ConstCounter::new(load(&up.reads).saturating_sub(load(&up.gets))),
                ),
                (
                    vec![("op", "delete".into())],
                    ConstCounter::new(load(&up.deletes)),
                ),
                (
                    vec![("op", "list".into())],
                    ConstCounter::new(load(&up.lists)),
                ),
            ],
        )?;
        family(
            enc,
            "akidb_object_store_bytes",
            "Bytes sent to (put) and received from (get) the object store",
            MetricType::Counter,
            vec![
                (
                    vec![("op", "put".into())],
                    ConstCounter::new(load(&up.bytes)),
                ),
                (
                    vec![("op", "get".into())],
                    ConstCounter::new(load(&up.get_bytes)),
                ),
            ],
        )?;

        let blocks = e.block_cache();
        counter(
            enc,
            "akidb_block_cache_hits",
            "Ranges of partitioned bases a cold query found in the block cache",
            load(&blocks.hits),
        )?;
        counter(
            enc,
            "akidb_block_cache_misses",
            "Ranges of partitioned bases a cold query fetched from the object store",
            load(&blocks.misses),
        )?;
        counter(
            enc,
            "akidb_block_cache_evictions",
            "Blocks dropped from the block cache to stay within its disk budget",
            load(&blocks.evictions),
        )?;
        gauge(
            enc,
            "akidb_block_cache_bytes",
            "Bytes of local disk the block cache holds",
            blocks.bytes(),
        )?;

        let totals = e.tier_totals();
        let per_tier = |f: &dyn Fn(&akidb_engine::TierTotals) -> u64| {
            totals
                .iter()
                .map(|(t, v)| (vec![("tier", t.to_string())], ConstGauge::new(f(v) as i64)))
                .collect::<Vec<_>>()
        };
        family(
            enc,
            "akidb_tier_collections",
            "Collections per tier",
            MetricType::Gauge,
            per_tier(&|t| t.collections as u64),
        )?;
        family(
            enc,
            "akidb_tier_ram_bytes",
            "Bytes in RAM per tier",
            MetricType::Gauge,
            per_tier(&|t| t.bytes_in_ram),
        )?;
        family(
            enc,
            "akidb_tier_disk_bytes",
            "Bytes on local disk (object copies and WAL) per tier",
            MetricType::Gauge,
            per_tier(&|t| t.bytes_on_disk),
        )?;
        family(
            enc,
            "akidb_tier_object_store_bytes",
            "Bytes in the object store per tier",
            MetricType::Gauge,
            per_tier(&|t| t.bytes_in_object_store),
        )?;
        let moves = e.tier_moves().moves;
        let labels = |from: &dyn ToString, to: &dyn ToString| {
            vec![("from", from.to_string()), ("to", to.to_string())]
        };
        family(
            enc,
            "akidb_tier_moves",
            "Tier moves done",
            MetricType::Counter,
            moves
                .iter()
                .map(|(from, to, n, _)| (labels(from, to), ConstCounter::new(*n)))
                .collect(),
        )?;
        family(
            enc,
            "akidb_tier_move_seconds",
            "Time spent in tier moves (divide by akidb_tier_moves_total for the mean)",
            MetricType::Counter,
            moves
                .iter()
                .map(|(from, to, _, s)| (labels(from, to), ConstCounter::new(*s)))
                .collect(),
        )?;
        Ok(())
    }
}

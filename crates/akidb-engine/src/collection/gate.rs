//! The tier gate: every request and move passes here. Requests hold the collection's tier lock
//! shared, moves exclusively, so a move never runs under a request; a read of a warm or cold
//! collection loads a temporary state (one at a time) unless it is promoted; a write makes the
//! collection hot first and is applied only once its WAL record is durable (see the write path
//! in the module docs of [`super`]).
//!
//! A request or move that cannot take a lock at once waits in a `wait` span naming what it waits
//! `on` (`tier_lock`, `tier_lock_exclusive`, `promotion`, `transient_load`): in a trace, the time
//! a request spends behind a move. An uncontended lock makes no span.

use std::sync::Arc;

use tracing::Instrument;

use super::Collection;
use super::cache::replay_wal;
use super::info::{Hit, SearchRequest};
use super::partial_read::ReadReport;
use super::release_free_memory;
use super::state::State;
use crate::doc::{Document, Operation};
use crate::error::EngineError;
use crate::manifest::Manifest;
use crate::tier::Tier;

/// Keeps the collection in its tier while held (pass it to the end of the blocking work).
pub type TierGuard = tokio::sync::OwnedRwLockReadGuard<()>;

impl Collection {
    /// `now` if it holds the lock already (a `try_` acquisition that succeeded), else `acquire`
    /// awaited in a `wait` span naming what it waits `on`.
    async fn wait_for<G, E>(
        &self,
        on: &'static str,
        now: Result<G, E>,
        acquire: impl Future<Output = G>,
    ) -> G {
        match now {
            Ok(guard) => guard,
            Err(_) => {
                let span = tracing::info_span!("wait", collection = %self.def.name, on);
                acquire.instrument(span).await
            }
        }
    }

    /// The tier lock held shared (waiting in a `wait` span if a move holds or wants it).
    async fn shared_tier_lock(&self) -> TierGuard {
        let lock = &self.tier_lock;
        self.wait_for(
            "tier_lock",
            lock.clone().try_read_owned(),
            lock.clone().read_owned(),
        )
        .await
    }
}

pub(super) fn not_loaded() -> EngineError {
    EngineError::Unavailable("collection is not loaded (a tier move is in progress)".into())
}

impl Collection {
    /// Moves the collection to `target`: loads it (hot, see [`Collection::promote`]), frees its
    /// RAM after saving it (warm; a cold one is downloaded), or also removes its local copies
    /// (cold). Returns the tier it came from.
    #[tracing::instrument(name = "tier.move", skip_all, fields(collection = %self.def.name, to = %target))]
    pub async fn move_to(&self, target: Tier) -> Result<Tier, EngineError> {
        if target == Tier::Hot {
            return self.promote().await;
        }
        if self.tier() == Tier::Hot {
            // Flush and save the graph while requests still run: the checkpoint under the
            // exclusive lock below then has only what was written meanwhile, usually nothing
            // (it was the slowest part of a demotion, and every request waited behind it).
            self.checkpoint().await?;
            // Each demotion flushes a segment: merge the small ones before the collection's
            // loads have to read them one by one.
            if let Err(e) = self.merge_segments().await {
                tracing::warn!(collection = %self.def.name, error = %e, "merging segments failed; moving without");
            }
        }
        let lock = &self.tier_lock;
        let moving = self
            .wait_for("tier_lock_exclusive", lock.try_write(), lock.write())
            .await;
        self.check_live()?;
        let from = self.tier();
        if from == target {
            return Ok(from);
        }
        let started = std::time::Instant::now();
        let unloaded = if from == Tier::Hot {
            self.checkpoint().await?;
            let state = self.state.write().take();
            // Everything is flushed: the WAL file needs no descriptor until the next write.
            self.wal.close_file()?;
            self.set_tier(Tier::Warm);
            state
        } else {
            None
        };
        let manifest = self.manifest.lock().await.clone();
        if target == Tier::Warm {
            self.download_all(&manifest).await?;
        } else {
            match tokio::fs::remove_dir_all(self.dir.join("segments")).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.finish_move(&manifest, from, target, started);
        // The state is freed after the lock is released: requests need not wait for that.
        drop(moving);
        if let Some(state) = unloaded {
            drop(state);
            release_free_memory();
        }
        Ok(from)
    }

    fn finish_move(&self, m: &Manifest, from: Tier, to: Tier, started: std::time::Instant) {
        if from == Tier::Hot || to == Tier::Hot {
            // A hot collection reads its state, not a base view; the next demotion brings a new
            // manifest version anyway.
            *self.view.lock() = None;
        }
        self.refresh_cache_bytes(m);
        self.set_tier(to);
        let secs = started.elapsed().as_secs_f64();
        self.env.moves.record(from, to, secs);
        tracing::info!(collection = %self.def.name, %from, to = %to, secs, "tier move");
    }

    /// Loads a warm or cold collection into RAM *in the background of its requests*: the load
    /// runs with the tier lock held shared, so searches go on meanwhile (a collection with a
    /// partitioned base answers them from it; others wait for the load instead of loading a
    /// second copy), and only the install (the WAL records past the manifest replayed, the state
    /// set) takes it exclusively. One promotion at a time; writes wait for it.
    async fn promote(&self) -> Result<Tier, EngineError> {
        let _one = self
            .wait_for(
                "promotion",
                self.promoting.try_lock(),
                self.promoting.lock(),
            )
            .await;
        let started = std::time::Instant::now();
        let (manifest, loaded) = {
            let lock = &self.tier_lock;
            let _shared = self
                .wait_for("tier_lock", lock.try_read(), lock.read())
                .await;
            self.check_live()?;
            if self.tier() == Tier::Hot {
                return Ok(Tier::Hot);
            }
            let manifest = self.manifest.lock().await.clone();
            let loaded = self.load_state(&manifest, Arc::default(), true).await;
            (manifest, loaded)
        };
        let lock = &self.tier_lock;
        let _moving = self
            .wait_for("tier_lock_exclusive", lock.try_write(), lock.write())
            .await;
        self.check_live()?;
        let from = self.tier();
        if from == Tier::Hot {
            return Ok(from); // cannot happen: promotions are one at a time
        }
        let mut state = match loaded {
            Ok(state) => state,
            Err(e) => {
                self.refresh_cache_bytes(&manifest);
                return Err(e);
            }
        };
        // Nothing but a pin commits while a collection is not hot; if its data changed anyway,
        // load again, now under the lock.
        let current = self.manifest.lock().await.clone();
        if (
            &current.base,
            &current.segments,
            &current.graph,
            current.wal_seq,
        ) != (
            &manifest.base,
            &manifest.segments,
            &manifest.graph,
            manifest.wal_seq,
        ) {
            state = self.load_state(&current, Arc::default(), true).await?;
        }
        // The records stay pending until the state that holds them is installed, so that
        // `has_pending_wal` never reports false while they are not applied.
        let records = self.pending_wal.lock().clone();
        replay_wal(&mut state, &self.def, &records)?;
        *self.state.write() = Some(state);
        self.pending_wal.lock().clear();
        self.finish_move(&current, from, Tier::Hot, started);
        Ok(from)
    }

    /// Runs `f` on the state: the hot one, or, for a warm or cold collection, one loaded for
    /// this call (a cold one is fetched to local disk first and is warm afterwards). With
    /// `promote`, or WAL records waiting, the collection is made hot first.
    pub(crate) async fn read<R, F>(self: &Arc<Self>, promote: bool, f: F) -> Result<R, EngineError>
    where
        R: Send + 'static,
        F: FnOnce(&State) -> R + Send + 'static,
    {
        loop {
            if let Some(guard) = self.hot().await? {
                let c = self.clone();
                return tokio::task::spawn_blocking(move || {
                    let _guard = guard;
                    let state = c.state.read();
                    state.as_ref().map(f).ok_or_else(not_loaded)
                })
                .await
                .expect("read task panicked");
            }
            if promote || self.has_pending_wal() {
                self.move_to(Tier::Hot).await?;
                continue;
            }
            if self.promoting.try_lock().is_err() {
                // Loading already: wait for it rather than hold a second copy.
                let span =
                    tracing::info_span!("wait", collection = %self.def.name, on = "promotion");
                drop(self.promoting.lock().instrument(span).await);
                continue;
            }
            if self.tier() == Tier::Cold {
                self.move_to(Tier::Warm).await?;
            }
            let one_at_a_time = self
                .wait_for(
                    "transient_load",
                    self.transient.try_lock(),
                    self.transient.lock(),
                )
                .await;
            let guard = self.shared_tier_lock().await;
            self.check_live()?;
            if self.tier() != Tier::Warm {
                continue; // moved meanwhile
            }
            let manifest = self.manifest.lock().await.clone();
            let state = self.load_state(&manifest, Arc::default(), false).await?;
            let out = tokio::task::spawn_blocking(move || {
                let _guard = guard;
                f(&state)
            })
            .await
            .expect("read task panicked");
            drop(one_at_a_time);
            return Ok(out);
        }
    }

    /// Answers a search: from the state when hot (or promoted); from the partitioned base,
    /// reading only what the query needs, when warm or cold with a base and no text; else from
    /// a state loaded for this call (see [`Collection::read`]).
    pub(crate) async fn search(
        self: &Arc<Self>,
        promote: bool,
        req: SearchRequest,
    ) -> Result<(Vec<Hit>, ReadReport), EngineError> {
        let metric = self.def.metric;
        loop {
            if let Some(guard) = self.hot().await? {
                let c = self.clone();
                let hits = tokio::task::spawn_blocking(move || {
                    let _guard = guard;
                    let state = c.state.read();
                    let hits = state
                        .as_ref()
                        .ok_or_else(not_loaded)?
                        .search(metric, &req)
                        .map_err(EngineError::from)?;
                    if req.deadline.as_ref().is_some_and(|d| d.passed()) {
                        return Err(EngineError::DeadlineExceeded(c.def.name.clone()));
                    }
                    Ok(hits)
                })
                .await
                .expect("read task panicked")?;
                let report = ReadReport {
                    tier: Some(Tier::Hot),
                    ..ReadReport::default()
                };
                return Ok((hits, report));
            }
            if promote || self.has_pending_wal() {
                self.move_to(Tier::Hot).await?;
                continue;
            }
            let guard = self.shared_tier_lock().await;
            self.check_live()?;
            let tier = self.tier();
            if tier == Tier::Hot {
                continue; // moved meanwhile
            }
            let manifest = self.manifest.lock().await.clone();
            // A text search needs the whole text index, which only a state has.
            if manifest.base.is_some() && req.text.is_none() {
                let out = self.search_partial(&manifest, req).await;
                drop(guard);
                return out;
            }
            drop(guard);
            let bytes = manifest.object_bytes();
            let hits = self.read(false, move |s| s.search(metric, &req)).await??;
            let mut report = ReadReport {
                tier: Some(tier),
                ..ReadReport::default()
            };
            // The whole collection was read.
            if tier == Tier::Cold {
                report.bytes_object_store = bytes;
            } else {
                report.bytes_local = bytes;
            }
            return Ok((hits, report));
        }
    }

    /// A document by id: from the state when hot (or promoted); from the partitioned base's id
    /// index and one partition when warm or cold with a base; else from a loaded state.
    pub(crate) async fn get(
        self: &Arc<Self>,
        promote: bool,
        id: String,
    ) -> Result<Option<Document>, EngineError> {
        if !promote && !self.has_pending_wal() {
            let guard = self.shared_tier_lock().await;
            self.check_live()?;
            if self.tier() != Tier::Hot {
                let manifest = self.manifest.lock().await.clone();
                if manifest.base.is_some() {
                    let out = self.get_partial(&manifest, &id).await;
                    drop(guard);
                    return out;
                }
            }
        }
        Ok(self.read(promote, move |state| state.get(&id)).await??)
    }

    /// Runs `f` (which writes through [`Collection::apply_durably`]) with the collection hot,
    /// loading it first if needed.
    pub(crate) async fn write<R, F>(self: &Arc<Self>, f: F) -> Result<R, EngineError>
    where
        R: Send + 'static,
        F: FnOnce(&Collection, TierGuard) -> Result<R, EngineError> + Send + 'static,
    {
        loop {
            if let Some(guard) = self.hot().await? {
                let c = self.clone();
                return tokio::task::spawn_blocking(move || f(&c, guard))
                    .await
                    .expect("write task panicked");
            }
            self.move_to(Tier::Hot).await?;
        }
    }

    /// The tier lock held shared, if the collection is hot.
    async fn hot(&self) -> Result<Option<TierGuard>, EngineError> {
        let guard = self.shared_tier_lock().await;
        self.check_live()?;
        Ok((self.tier() == Tier::Hot).then_some(guard))
    }

    /// Logs `op`, waits until it is durable, applies it. Blocking, and only while the caller
    /// holds the tier lock with the collection hot (see [`Collection::write`]).
    pub fn apply_durably(&self, op: Operation) -> Result<(), EngineError> {
        if self.state.read().is_none() {
            return Err(not_loaded());
        }
        let body = op.encode();
        let mut op = Some(op);
        let seq = self
            .wal
            .append(&body, |seq| {
                self.queue
                    .lock()
                    .push_back((seq, op.take().expect("called once")));
            })
            .map_err(|e| {
                if e.is_disk_full() {
                    EngineError::InsufficientStorage(
                        "the disk is full: no space left for the write-ahead log".into(),
                    )
                } else {
                    e.into()
                }
            })?;
        drop(body);
        self.wal.sync(seq).map_err(|e| {
            // The record may or may not be on disk: the log is re-read from disk (see
            // `recover_wal`) and the write is reported as not known to be applied.
            EngineError::CollectionUnavailable {
                name: self.def.name.clone(),
                reason: format!(
                    "the write-ahead log could not be made durable ({e}); the collection reloads it, and this write may or may not have been applied"
                ),
            }
        })?;
        let mut guard = self.state.write();
        let state = guard.as_mut().ok_or_else(not_loaded)?;
        if state.applied_seq() >= seq {
            return Ok(()); // another writer applied it, in order
        }
        let mut queue = self.queue.lock();
        while let Some((next, _)) = queue.front() {
            if *next > seq {
                break; // not known durable yet; its own writer will apply it
            }
            let (next, op) = queue.pop_front().expect("front exists");
            state.apply(next, op);
        }
        debug_assert!(state.applied_seq() >= seq);
        Ok(())
    }
}

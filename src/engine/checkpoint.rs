//! Checkpoints: copy what is dirty quickly, release the locks, write it to redb in one
//! transaction stamped with the journal sequence it covers, then delete journal segments
//! every stream has covered (persistence.md "Checkpoints").
//!
//! Correctness rests on one ordering: the covered sequence is read from the journal's
//! *applied watermark* **before** the dirty sets are taken. Every event at or below the
//! watermark was applied to memory and marked dirty before its guard was dropped, so the
//! copy taken afterwards contains it; events above the watermark may or may not be in the
//! copy, and are replayed on start either way (replay is idempotent).

use std::time::Instant;

use serde::Serialize;

use crate::persist::codec;
use crate::persist::store::Batch;

use super::Engine;

/// What one checkpoint did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CheckpointReport {
    /// Journal sequence covered.
    pub seq: u64,
    /// Whether the progress/content/accounts stream was written.
    pub progress: bool,
    /// Whether the wallet stream was written.
    pub wallets: bool,
    /// Rows written.
    pub rows: usize,
    /// Journal segments deleted afterwards.
    pub segments_deleted: usize,
    /// Wall time, milliseconds.
    pub duration_ms: u64,
    /// When it finished (RFC 3339).
    pub finished_at: String,
}

impl Engine {
    /// Writes a checkpoint of the chosen streams. Blocking (redb I/O): call it from a
    /// blocking thread. Request handling continues meanwhile: locks are held only while
    /// copying.
    ///
    /// # Errors
    /// The redb error; the dirty marks are restored so the next attempt writes them.
    pub fn checkpoint(&self, progress: bool, wallets: bool) -> Result<CheckpointReport, String> {
        let result = self.write_checkpoint(progress, wallets);
        self.note_checkpoint(result.is_ok());
        result
    }

    fn write_checkpoint(&self, progress: bool, wallets: bool) -> Result<CheckpointReport, String> {
        let inner = self.inner();
        let _one = inner.checkpoint_lock.lock();
        let started = Instant::now();
        let seq = inner.journal.applied_watermark();
        let taken = {
            let mut dirty = inner.dirty.lock();
            super::Dirty {
                progress: if progress {
                    std::mem::take(&mut dirty.progress)
                } else {
                    Default::default()
                },
                wallets: if wallets {
                    std::mem::take(&mut dirty.wallets)
                } else {
                    Default::default()
                },
                players: if progress {
                    std::mem::take(&mut dirty.players)
                } else {
                    Default::default()
                },
                sessions: if progress {
                    std::mem::take(&mut dirty.sessions)
                } else {
                    Default::default()
                },
                catalog: progress && std::mem::take(&mut dirty.catalog),
            }
        };
        // SRS (issue 6): seasons, cards and idempotency records go with progress.
        let srs_taken = if progress {
            self.take_srs_dirty()
        } else {
            Default::default()
        };
        // Audit records, retention and erasures (issue 3) go with progress.
        let (audit_taken, audit_mirror_gone) = if progress {
            self.audit_for_checkpoint()
        } else {
            Default::default()
        };
        // Groups go with progress (after the watermark read, like every dirty mark).
        let groups_taken = if progress {
            self.take_groups_dirty()
        } else {
            None
        };
        let mut batch = Batch {
            progress_seq: progress.then_some(seq),
            wallet_seq: wallets.then_some(seq),
            erased_players: audit_taken.erase.iter().map(|(p, _)| p.clone()).collect(),
            audit: audit_taken,
            replace_groups: groups_taken,
            ..Batch::default()
        };
        if taken.catalog {
            let catalog = self.catalog();
            batch.replace_subjects = Some(
                catalog
                    .subjects()
                    .map(|s| (s.id.to_ascii_lowercase(), codec::encode(s)))
                    .collect(),
            );
            batch.replace_plans = Some(
                catalog
                    .plans()
                    .map(|p| (p.id.to_ascii_lowercase(), codec::encode(p)))
                    .collect(),
            );
        }
        {
            let accounts = inner.accounts.read();
            for id in &taken.players {
                if let Some(p) = accounts.player(id) {
                    batch.players.push((id.clone(), codec::encode(&**p)));
                }
            }
            for hash in &taken.sessions {
                match accounts.session_record(hash) {
                    Some(s) => batch.sessions.push((*hash, codec::encode(&s))),
                    None => batch.sessions_deleted.push(*hash),
                }
            }
        }
        for (player, subject) in &taken.progress {
            if let Some(student) = inner.students.get(player) {
                let state = student.state.read();
                if let Some(p) = state.subjects.get(subject) {
                    let record = p.to_record();
                    batch.progress.push((
                        player.to_string(),
                        subject.to_string(),
                        codec::encode(&record),
                    ));
                }
            }
        }
        for player in &taken.wallets {
            if let Some(student) = inner.students.get(player) {
                let row = student.state.read().wallet.to_record();
                batch
                    .wallets
                    .push((player.to_string(), codec::encode(&row)));
            }
        }
        if progress {
            self.fill_srs_batch(&srs_taken, &mut batch);
        }
        // Erasures delete the erased player's wallet row in this (progress) batch: the
        // anonymous copy goes with it, whatever the wallet stream's position.
        for (_, anon) in &batch.audit.erase {
            if let Some(student) = inner.students.get(anon) {
                let row = student.state.read().wallet.to_record();
                batch.wallets.push((anon.clone(), codec::encode(&row)));
            }
        }
        // --- mirror (issue 5): queue the written rows' keys in the same transaction ---
        if inner.mirror.enabled() {
            use crate::persist::mirror::log;
            let mut keys = Vec::with_capacity(
                batch.players.len() + batch.wallets.len() + batch.progress.len() + 1,
            );
            keys.extend(batch.players.iter().map(|(id, _)| log::player_key(id)));
            keys.extend(batch.wallets.iter().map(|(id, _)| log::wallet_key(id)));
            keys.extend(
                batch
                    .progress
                    .iter()
                    .map(|(p, s, _)| log::progress_key(p, s)),
            );
            keys.extend(
                batch
                    .cards
                    .iter()
                    .map(|(p, s, q, _)| log::card_key(p, s, q)),
            );
            keys.extend(
                batch
                    .cards_deleted
                    .iter()
                    .map(|(p, s, q)| log::card_key(p, s, q)),
            );
            if batch.replace_subjects.is_some() {
                keys.push(log::CONTENT.to_owned());
            }
            if batch.replace_seasons.is_some() {
                keys.push(log::SEASONS.to_owned());
            }
            keys.extend(audit_mirror_gone.iter().cloned());
            batch.mirror_keys = Some(keys);
        }
        // --- end mirror ---
        if let Err(e) = inner.store.commit(&batch) {
            self.audit_checkpointed(std::mem::take(&mut batch.audit), audit_mirror_gone, false);
            self.restore_srs_dirty(srs_taken);
            if batch.replace_groups.is_some() {
                self.restore_groups_dirty();
            }
            let mut dirty = inner.dirty.lock();
            dirty.progress.extend(taken.progress);
            dirty.wallets.extend(taken.wallets);
            dirty.players.extend(taken.players);
            dirty.sessions.extend(taken.sessions);
            dirty.catalog |= taken.catalog;
            tracing::error!(error = %e, "checkpoint failed; will retry");
            return Err(e.to_string());
        }
        self.audit_checkpointed(std::mem::take(&mut batch.audit), Vec::new(), true);
        if batch.rows() > 0 {
            let queued = batch.mirror_keys.as_ref().map_or(0, Vec::len) as u64;
            inner
                .mirror
                .checkpoint_written(queued, self.now().as_millisecond());
        }
        let segments_deleted = match inner.store.meta() {
            Ok(meta) => inner
                .journal
                .truncate_through(meta.progress_seq.min(meta.wallet_seq))
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "journal truncation failed");
                    0
                }),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read checkpoint sequences");
                0
            }
        };
        let report = CheckpointReport {
            seq,
            progress,
            wallets,
            rows: batch.rows(),
            segments_deleted,
            duration_ms: started.elapsed().as_millis() as u64,
            finished_at: self.now().to_string(),
        };
        tracing::info!(
            seq,
            progress,
            wallets,
            rows = report.rows,
            segments_deleted,
            duration_ms = report.duration_ms,
            "checkpoint written"
        );
        *inner.last_checkpoint.lock() = Some(report.clone());
        Ok(report)
    }

    /// The last checkpoint's report.
    pub fn last_checkpoint(&self) -> Option<CheckpointReport> {
        self.inner().last_checkpoint.lock().clone()
    }

    /// Runs the periodic checkpoints until `shutdown` resolves: progress every
    /// `checkpoint.progress_interval_secs`, wallets every `wallet_interval_secs`.
    pub async fn run_checkpoints(&self, shutdown: tokio::sync::watch::Receiver<bool>) {
        let cfg = &self.config().checkpoint;
        let progress_every = std::time::Duration::from_secs(cfg.progress_interval_secs);
        let wallet_every = std::time::Duration::from_secs(cfg.wallet_interval_secs);
        let mut progress_tick = tokio::time::interval(progress_every);
        let mut wallet_tick = tokio::time::interval(wallet_every);
        progress_tick.tick().await;
        wallet_tick.tick().await;
        let mut shutdown = shutdown;
        loop {
            let (progress, wallets) = tokio::select! {
                _ = progress_tick.tick() => (true, false),
                _ = wallet_tick.tick() => (false, true),
                _ = shutdown.changed() => return,
            };
            let engine = self.clone();
            let result =
                tokio::task::spawn_blocking(move || engine.checkpoint(progress, wallets)).await;
            if let Ok(Err(e)) = result {
                tracing::error!(error = %e, "periodic checkpoint failed");
            }
        }
    }
}

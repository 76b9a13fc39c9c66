//! Archive runs (srs.md "Archive and retention"): reserving a season and archiving its
//! cards in batches. The events and their application are in `srs_archive.rs`; status,
//! retention flagging and purge in `srs_retention.rs`.
//!
//! An archive run reserves the season first (refused while it is active, already being
//! archived or imported into; while reserved, it cannot be activated and nothing can be
//! imported into it, so its cards are frozen). It then works through the season's
//! players in batches of about `srs.archive_batch_cards` cards: read the cards (from
//! memory under the student's write lock for students in memory, else from redb),
//! journal one [`CardsArchived`], apply it (the cards leave memory), write a checkpoint
//! on a blocking thread (so the pending rows leave memory too and redb holds the
//! archive), and yield before the next batch. No lock is held across batches, and
//! locks inside a batch are the per-student write locks of the batch's students only.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::error::{ApiError, Code};
use crate::persist::codec;
use crate::players::audit::{AuditKind, AuditRecord, RESULT_OK};
use crate::srs::Card;

use super::jobs::JobHandle;
use super::srs_archive::{CardsArchived, PlayerCards};
use super::srs_ops::CardWrite;
use super::{Engine, Event};

/// A season reserved for archiving; dropping it releases the season.
#[derive(Debug)]
pub struct ArchiveTicket {
    engine: Engine,
    season: String,
}

impl Drop for ArchiveTicket {
    fn drop(&mut self) {
        self.engine
            .inner()
            .srs
            .archive
            .busy
            .lock()
            .archiving
            .remove(&self.season);
    }
}

impl ArchiveTicket {
    /// The season.
    pub fn season(&self) -> &str {
        &self.season
    }
}

/// The result of an archive run (srs.md: `{season, archived_cards, duration_ms}`).
#[derive(Debug, Clone, Serialize)]
pub struct ArchiveOutcome {
    /// The season.
    pub season: String,
    /// Cards moved to the archive.
    pub archived_cards: u64,
    /// Wall time, milliseconds.
    pub duration_ms: u64,
}

fn conflict(message: String) -> ApiError {
    ApiError::new(Code::Conflict, message)
}

impl Engine {
    /// Reserves `season_id` for an archive run.
    ///
    /// # Errors
    /// 404 `NOT_FOUND`; 409 `CONFLICT` when it is active, already being archived or
    /// imported into; 503 `STORAGE_UNAVAILABLE` in degraded mode (nothing would be
    /// stored: the run is refused up front rather than failing at its first batch).
    pub async fn begin_archive(&self, season_id: &str) -> Result<ArchiveTicket, ApiError> {
        self.check_writable()?;
        // Ordered with season changes, so it cannot be activated meanwhile.
        let _order = self.inner().admin_write.lock().await;
        let season = self.season(season_id)?;
        if season.is_active {
            return Err(conflict(format!(
                "season `{season_id}` is active; deactivate it before archiving it"
            )));
        }
        let mut busy = self.inner().srs.archive.busy.lock();
        if let Some(job) = busy.archiving.get(season_id) {
            return Err(conflict(format!(
                "season `{season_id}` is already being archived (job {job})"
            )));
        }
        if busy.importing.get(season_id).is_some_and(|n| *n > 0) {
            return Err(conflict(format!(
                "a review import into season `{season_id}` is running; archive it afterwards"
            )));
        }
        busy.archiving.insert(season_id.to_owned(), String::new());
        Ok(ArchiveTicket {
            engine: self.clone(),
            season: season_id.to_owned(),
        })
    }

    /// Records the job archiving `season_id` (named in conflicts).
    pub fn set_archive_job(&self, season_id: &str, job_id: &str) {
        if let Some(job) = self
            .inner()
            .srs
            .archive
            .busy
            .lock()
            .archiving
            .get_mut(season_id)
        {
            job_id.clone_into(job);
        }
    }

    /// Whether `season_id` is being archived.
    pub fn is_archiving(&self, season_id: &str) -> bool {
        self.inner()
            .srs
            .archive
            .busy
            .lock()
            .archiving
            .contains_key(season_id)
    }

    /// The players holding live cards of `season` with how many (memory for students
    /// in memory, redb minus pending moves for the others), by player id. Blocking.
    fn season_holders(&self, season: &str) -> Result<BTreeMap<Arc<str>, u64>, ApiError> {
        let inner = self.inner();
        let stored = inner
            .store
            .season_live_counts(season)
            .map_err(ApiError::internal)?;
        let pending = self.pending_archive_view(season);
        let moved_by_player = pending.moves_by_player();
        let mut holders: BTreeMap<Arc<str>, u64> = BTreeMap::new();
        for (player, n) in stored {
            if inner.students.get(&player).is_some() {
                continue;
            }
            let player: Arc<str> = Arc::from(player);
            // A student not in memory has every pending move's card in redb still.
            let moved = moved_by_player.get(&player).copied().unwrap_or(0);
            if n > moved {
                holders.insert(player, n - moved);
            }
        }
        for (player, student) in inner.students.snapshot() {
            let n = student
                .state
                .read()
                .srs
                .queues
                .get(season)
                .map_or(0, |q| q.len() as u64);
            if n > 0 {
                holders.insert(player, n);
            }
        }
        Ok(holders)
    }

    /// Live cards of `season` (see [`ArchiveStatus::live_cards`](super::srs_retention::ArchiveStatus::live_cards)). Blocking (redb).
    ///
    /// # Errors
    /// 500 on a redb error.
    pub fn live_cards(&self, season: &str) -> Result<u64, ApiError> {
        Ok(self.season_holders(season)?.values().sum())
    }

    /// Archives every live card of the ticket's season, in batches (module
    /// documentation), reporting progress to `handle`.
    ///
    /// # Errors
    /// 503 `STORAGE_UNAVAILABLE` (journal or checkpoint: degraded mode), 500. The run
    /// stops at the first error; batches journaled before it stay archived, and running
    /// the archive again moves the rest (the daily job does so once storage is back).
    pub async fn run_archive(
        &self,
        ticket: ArchiveTicket,
        handle: Option<JobHandle>,
    ) -> Result<ArchiveOutcome, ApiError> {
        let season = ticket.season.clone();
        let result = self.archive_passes(ticket, handle).await;
        if let Err(e) = &result {
            tracing::warn!(season, code = ?e.code, error = %e.detail, "archive run stopped");
        }
        result
    }

    async fn archive_passes(
        &self,
        ticket: ArchiveTicket,
        handle: Option<JobHandle>,
    ) -> Result<ArchiveOutcome, ApiError> {
        let started = Instant::now();
        let season = ticket.season.clone();
        let batch_cards = self.config().srs.archive_batch_cards;
        // A run an admin started is audited (with their first batch); the daily job's
        // runs have no request context and are recorded as task runs instead.
        let mut audit = super::audit::current().map(|_| {
            self.audit_record(AuditKind::AdminAction, RESULT_OK)
                .detail("action", "season_archived")
                .detail("season", season.as_str())
        });
        let mut archived = 0u64;
        // Later passes catch cards created by a write that raced the reservation (a
        // completion decided while the season was still active).
        for pass in 0..3 {
            let of = season.clone();
            let holders: Vec<(Arc<str>, u64)> = self
                .blocking(move |e| e.season_holders(&of))
                .await?
                .into_iter()
                .collect();
            if pass == 0
                && let Some(h) = &handle
            {
                h.set_total(holders.iter().map(|(_, n)| n).sum());
            }
            if holders.is_empty() {
                break;
            }
            let mut chunk: Vec<Arc<str>> = Vec::new();
            let mut chunk_cards = 0u64;
            let mut iter = holders.into_iter().peekable();
            while let Some((player, n)) = iter.next() {
                chunk.push(player);
                chunk_cards += n;
                if chunk_cards < batch_cards as u64 && iter.peek().is_some() {
                    continue;
                }
                // Degraded mode (engine/degraded.rs): stop before reading the next batch
                // rather than after journaling fails.
                self.check_writable()?;
                let moved = self
                    .archive_batch(&ticket.season, std::mem::take(&mut chunk), &mut audit)
                    .await?;
                chunk_cards = 0;
                archived += moved;
                if let Some(h) = &handle {
                    h.advance(moved);
                }
                // Write the batch to redb now: the pending rows leave memory and the
                // journal can be truncated.
                self.blocking(|e| e.checkpoint(true, false).map_err(ApiError::storage))
                    .await?;
                tokio::task::yield_now().await;
            }
        }
        Ok(ArchiveOutcome {
            season: ticket.season.clone(),
            archived_cards: archived,
            duration_ms: started.elapsed().as_millis() as u64,
        })
    }

    /// Runs `work` on a blocking thread with a clone of the engine.
    pub(super) async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(Engine) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let engine = self.clone();
        tokio::task::spawn_blocking(move || work(engine))
            .await
            .map_err(ApiError::internal)?
    }

    /// Archives the cards of `season` of `players`: one or more journaled events (at
    /// most `srs.archive_batch_cards` cards each), applied. Returns the cards moved.
    async fn archive_batch(
        &self,
        season: &str,
        players: Vec<Arc<str>>,
        audit: &mut Option<AuditRecord>,
    ) -> Result<u64, ApiError> {
        let inner = self.inner();
        // Ordered with erasures (which hold this lock until checkpointed): a batch sees a
        // player either before the erasure (its cards are then archived and re-keyed with
        // the erasure) or after it (no cards under the erased id, in memory or redb).
        let _admin = inner.admin_write.lock().await;
        let mut hot = Vec::new();
        let mut cold: Vec<String> = Vec::new();
        for p in players {
            match inner.students.get(&p) {
                Some(student) => hot.push((p, student)),
                None => cold.push(p.to_string()),
            }
        }
        // Students in memory: their writes are ordered by their write lock.
        let mut guards = Vec::with_capacity(hot.len());
        for (_, student) in &hot {
            guards.push(student.write.lock().await);
        }
        let mut entries: Vec<PlayerCards> = Vec::with_capacity(hot.len() + cold.len());
        {
            let questions = inner.srs.questions.read();
            for (player, student) in &hot {
                let state = student.state.read();
                let Some(queue) = state.srs.queues.get(season) else {
                    continue;
                };
                entries.push(PlayerCards {
                    player_id: player.to_string(),
                    cards: queue
                        .iter()
                        .map(|(k, card)| CardWrite {
                            question_id: questions.name(k).to_owned(),
                            card,
                        })
                        .collect(),
                });
            }
        }
        if !cold.is_empty() {
            let season_owned = season.to_owned();
            let names = cold.clone();
            let rows = self
                .blocking(move |e| {
                    e.inner()
                        .store
                        .season_cards(&names, &season_owned)
                        .map_err(ApiError::internal)
                })
                .await?;
            for (player, rows) in cold.into_iter().zip(rows) {
                if rows.is_empty() {
                    continue;
                }
                let mut cards = Vec::with_capacity(rows.len());
                for (question_id, bytes) in rows {
                    let card: Card = codec::decode(&bytes).map_err(|e| {
                        ApiError::internal(format!("card {player}/{season}/{question_id}: {e}"))
                    })?;
                    cards.push(CardWrite { question_id, card });
                }
                entries.push(PlayerCards {
                    player_id: player,
                    cards,
                });
            }
        }
        let mut moved = 0u64;
        let batch_cards = self.config().srs.archive_batch_cards.max(1);
        let at_ms = self.now().as_millisecond();
        let mut event = CardsArchived {
            season: season.to_owned(),
            at_ms,
            players: Vec::new(),
        };
        let mut in_event = 0usize;
        for mut entry in entries {
            while !entry.cards.is_empty() {
                let room = batch_cards - in_event;
                let rest = entry.cards.split_off(entry.cards.len().min(room));
                in_event += entry.cards.len();
                moved += entry.cards.len() as u64;
                event.players.push(PlayerCards {
                    player_id: entry.player_id.clone(),
                    cards: std::mem::replace(&mut entry.cards, rest),
                });
                if in_event >= batch_cards {
                    let full = std::mem::take(&mut event.players);
                    self.commit_audited(
                        Event::CardsArchived(Box::new(CardsArchived {
                            season: season.to_owned(),
                            at_ms,
                            players: full,
                        })),
                        audit.take().into_iter().collect(),
                    )
                    .await?;
                    in_event = 0;
                }
            }
        }
        if !event.players.is_empty() {
            self.commit_audited(
                Event::CardsArchived(Box::new(event)),
                audit.take().into_iter().collect(),
            )
            .await?;
        }
        drop(guards);
        Ok(moved)
    }
}

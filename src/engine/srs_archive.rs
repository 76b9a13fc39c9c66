//! SRS archive and retention in the engine (srs.md "Archive and retention"): the
//! events, how they are applied to memory, how checkpoints write them to redb
//! (`persist/srs_archive.rs`), and how lazy loads stay consistent with moves that are
//! journaled but not yet checkpointed. The operations (archive job, status, flagging,
//! purge) are in `srs_archive_ops.rs`, the schedule in `srs_maintenance.rs`.
//!
//! **Moves.** A [`CardsArchived`] event carries the archived cards' states (decided when
//! the batch was read). Applying it (1) records the moves as *pending* and then (2)
//! removes the cards from the student's queue if the student is in memory, releasing
//! the queue when the season is emptied. A student who is not in memory is not loaded:
//! the checkpoint moves the rows in redb (`cards` → `cards_archive`) from the pending
//! list, in the same transaction that advances the checkpoint sequence, so the pending
//! list is what stands between journal and redb, like dirty marks do for other state.
//!
//! **Loads.** A student loaded while some of their cards are pending must not get them
//! back from redb. A load records the archive *generation* before reading redb; a
//! checkpoint that wrote moves bumps it (after its commit, under the pending lock). The
//! loaded state is inserted into the student map under the shard lock only if the
//! generation is unchanged, after removing every pending move of the student; otherwise
//! the load reads again. Since (1) precedes (2) on the apply side and the check plus
//! insertion are atomic on the load side, either the apply sees the student in the map
//! or the load sees the move; and an unchanged generation means no move the load could
//! have missed in redb was written meanwhile.
//!
//! **Retention and purges** are single small events: [`ArchiveFlagged`] raises the
//! cutoff before which archived cards are `eligible_for_deletion` (it only grows, so
//! no row is rewritten), [`ArchivePurged`] deletes the archived cards before a cutoff,
//! of one season or all. Both take effect in redb at the next checkpoint.
//!
//! **Mirror.** [`mirror_keys`] lists the MariaDB mirror queue keys of a batch's archive
//! part (moved cards, retention cutoff, purges); the mirror task moves the rows from
//! `srs_cards` to `srs_cards_archive`, flags and purges them there.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::persist::codec;
use crate::persist::srs_archive::{ArchiveMove, ArchivePurge};
use crate::persist::store::Batch;
use crate::srs::{Card, DueQueue};

use super::srs_ops::CardWrite;
use super::students::Student;
use super::{Engine, OpenError};

/// A batch of cards moved from the live tables to the archive (one season).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardsArchived {
    /// The season.
    pub season: String,
    /// `archived_at` of every card of the batch (unix ms).
    pub at_ms: i64,
    /// The cards, by player, with their states at archive time.
    pub players: Vec<PlayerCards>,
}

/// One player's cards in an archive batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlayerCards {
    /// The player.
    pub player_id: String,
    /// Lowercased question ids and card states.
    pub cards: Vec<CardWrite>,
}

/// The weekly retention flagging: archived cards with `archived_at` before `before_ms`
/// are eligible for deletion from now on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveFlagged {
    /// The new cutoff (unix ms); the stored cutoff becomes the larger of both.
    pub before_ms: i64,
    /// When (unix ms).
    pub at_ms: i64,
}

/// An admin's purge of archived cards eligible for deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivePurged {
    /// One season, or every season.
    pub season: Option<String>,
    /// Archived cards with `archived_at` before this (unix ms) are deleted: the
    /// retention cutoff at decision time.
    pub before_ms: i64,
    /// When (unix ms).
    pub at_ms: i64,
    /// Who asked (player id), for the audit.
    pub by: String,
}

/// One pending move of one player.
#[derive(Debug, Clone)]
pub(crate) struct Moved {
    season: Box<str>,
    question: Box<str>,
    card: Card,
    at_ms: i64,
}

type MoveMap = HashMap<Arc<str>, Vec<Moved>>;

/// What the next checkpoint must write for the archive, and the generation of loads.
#[derive(Debug, Default)]
struct Pending {
    /// Applied moves not yet taken by a checkpoint.
    queued: MoveMap,
    /// Moves taken by the running checkpoint, until its commit.
    writing: Option<Arc<MoveMap>>,
    /// Bumped after each checkpoint that wrote moves.
    generation: u64,
    /// The retention cutoff as applied (the larger of all flaggings).
    eligible_before_ms: Option<i64>,
    /// Whether the cutoff changed since the last checkpoint took it.
    eligible_dirty: bool,
    /// Purges applied and not yet taken by a checkpoint.
    purges: Vec<ArchivePurge>,
    /// Purges taken by the running checkpoint.
    purges_writing: Vec<ArchivePurge>,
}

impl Pending {
    fn moves(&self) -> impl Iterator<Item = (&Arc<str>, &Moved)> {
        self.writing
            .iter()
            .flat_map(|w| w.iter())
            .chain(self.queued.iter())
            .flat_map(|(p, moves)| moves.iter().map(move |m| (p, m)))
    }
}

/// Which seasons are being archived (import into them and their activation are then
/// refused) or imported into (archiving them is then refused).
#[derive(Debug, Default)]
pub(crate) struct Busy {
    /// Season → id of the archive job.
    pub archiving: HashMap<String, String>,
    /// Season → imports running.
    pub importing: HashMap<String, usize>,
}

/// The last maintenance slots run (UTC ms of the scheduled instants).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Slots {
    pub daily: Option<i64>,
    pub weekly: Option<i64>,
}

/// The installation-wide archive state (part of `SrsState`).
#[derive(Debug, Default)]
pub struct ArchiveState {
    pending: Mutex<Pending>,
    pub(crate) busy: Mutex<Busy>,
    pub(crate) slots: Mutex<Slots>,
}

/// What a checkpoint took from the pending archive state.
#[derive(Debug, Default)]
pub struct ArchiveTaken {
    moves: Option<Arc<MoveMap>>,
    eligible_before_ms: Option<i64>,
    purges: Vec<ArchivePurge>,
}

/// Pending archive state of one season, for status counts.
pub(crate) struct PendingView {
    /// Distinct pending moves of the season: (player, question) → archived at (the
    /// latest move of a card wins, as it will in redb).
    pub moves: HashMap<(Arc<str>, Box<str>), i64>,
    /// Purges not yet written (every season's).
    pub purges: Vec<ArchivePurge>,
    /// The retention cutoff as applied.
    pub eligible_before_ms: Option<i64>,
}

impl PendingView {
    /// Distinct pending moves per player.
    pub fn moves_by_player(&self) -> HashMap<&Arc<str>, u64> {
        let mut out: HashMap<&Arc<str>, u64> = HashMap::new();
        for (player, _) in self.moves.keys() {
            *out.entry(player).or_default() += 1;
        }
        out
    }
}

/// Removes `questions` (lowercased ids) of `season` from a student's queues, releasing
/// the queue when it empties; rebuilding beats per-card removal for bulk moves.
fn remove_cards(
    student: &Student,
    season: &str,
    questions: &HashSet<crate::srs::QuestionKey>,
) -> usize {
    let mut state = student.state.write();
    let Some(queue) = state.srs.queues.get_mut(season) else {
        return 0;
    };
    let before = queue.len();
    let kept: Vec<_> = queue
        .iter()
        .filter(|(k, _)| !questions.contains(k))
        .collect();
    let removed = before - kept.len();
    if kept.is_empty() {
        state.srs.queues.remove(season);
    } else if removed > 0 {
        *queue = DueQueue::from_cards(kept);
    }
    removed
}

impl Engine {
    fn archive_state(&self) -> &ArchiveState {
        &self.inner().srs.archive
    }

    /// The current archive generation (see module documentation, "Loads").
    pub(super) fn archive_generation(&self) -> u64 {
        self.archive_state().pending.lock().generation
    }

    /// Inserts a freshly loaded student (see module documentation, "Loads"); `None`
    /// when a checkpoint wrote archive moves since the student's cards were read.
    pub(super) fn insert_loaded_student(
        &self,
        player_id: &str,
        student: Student,
    ) -> Option<Arc<Student>> {
        let inner = self.inner();
        inner
            .students
            .insert_if_absent_with(player_id, student, |student| {
                let pending = inner.srs.archive.pending.lock();
                let mut state = student.state.write();
                if pending.generation != state.srs.loaded_generation {
                    return false;
                }
                let mut by_season: HashMap<&str, HashSet<crate::srs::QuestionKey>> = HashMap::new();
                let questions = inner.srs.questions.read();
                for (p, m) in pending.moves() {
                    if &**p == player_id
                        && let Some(k) = questions.key(&m.question)
                    {
                        by_season.entry(&m.season).or_default().insert(k);
                    }
                }
                drop(questions);
                for (season, keys) in by_season {
                    if let Some(queue) = state.srs.queues.get_mut(season) {
                        let kept: Vec<_> =
                            queue.iter().filter(|(k, _)| !keys.contains(k)).collect();
                        if kept.is_empty() {
                            state.srs.queues.remove(season);
                        } else {
                            *queue = DueQueue::from_cards(kept);
                        }
                    }
                }
                true
            })
    }

    /// Applies a durable [`CardsArchived`] (main stream).
    pub(super) fn apply_cards_archived(&self, event: &CardsArchived) {
        let inner = self.inner();
        for pc in &event.players {
            let player: Arc<str> = Arc::from(pc.player_id.as_str());
            {
                let mut pending = inner.srs.archive.pending.lock();
                let moves = pending.queued.entry(player.clone()).or_default();
                moves.extend(pc.cards.iter().map(|c| Moved {
                    season: event.season.as_str().into(),
                    question: c.question_id.as_str().into(),
                    card: c.card,
                    at_ms: event.at_ms,
                }));
            }
            if let Some(student) = inner.students.get(&pc.player_id) {
                let keys: HashSet<_> = {
                    let questions = inner.srs.questions.read();
                    pc.cards
                        .iter()
                        .filter_map(|c| questions.key(&c.question_id))
                        .collect()
                };
                remove_cards(&student, &event.season, &keys);
            }
        }
    }

    /// Applies a durable [`ArchiveFlagged`] (main stream).
    pub(super) fn apply_archive_flagged(&self, event: &ArchiveFlagged) {
        let mut pending = self.archive_state().pending.lock();
        if pending
            .eligible_before_ms
            .is_none_or(|now| now < event.before_ms)
        {
            pending.eligible_before_ms = Some(event.before_ms);
            pending.eligible_dirty = true;
        }
    }

    /// Applies a durable [`ArchivePurged`] (main stream).
    pub(super) fn apply_archive_purged(&self, event: &ArchivePurged) {
        self.archive_state()
            .pending
            .lock()
            .purges
            .push(ArchivePurge {
                season: event.season.clone(),
                before_ms: event.before_ms,
            });
    }

    /// Reads the retention cutoff at start.
    pub(super) fn load_archive_state(&self) -> Result<(), OpenError> {
        let cutoff = self.inner().store.archive_eligible_before()?;
        self.archive_state().pending.lock().eligible_before_ms = cutoff;
        Ok(())
    }

    /// The retention cutoff as applied: archived cards before it are eligible for
    /// deletion.
    pub fn archive_eligible_before(&self) -> Option<i64> {
        self.archive_state().pending.lock().eligible_before_ms
    }

    /// Checkpoint step 2: takes the pending archive state (moves stay visible to loads
    /// until [`Engine::srs_checkpoint_committed`]).
    pub(super) fn take_archive(&self) -> ArchiveTaken {
        let mut pending = self.archive_state().pending.lock();
        let moves = if pending.queued.is_empty() {
            None
        } else {
            let moves = Arc::new(std::mem::take(&mut pending.queued));
            pending.writing = Some(moves.clone());
            Some(moves)
        };
        let eligible_before_ms = if std::mem::take(&mut pending.eligible_dirty) {
            pending.eligible_before_ms
        } else {
            None
        };
        let purges = std::mem::take(&mut pending.purges);
        pending.purges_writing.clone_from(&purges);
        ArchiveTaken {
            moves,
            eligible_before_ms,
            purges,
        }
    }

    /// Puts what a failed checkpoint took back in front of what was applied since.
    pub(super) fn restore_archive(&self, taken: ArchiveTaken) {
        let mut pending = self.archive_state().pending.lock();
        pending.writing = None;
        if let Some(moves) = taken.moves {
            let newer = std::mem::take(&mut pending.queued);
            let mut merged = Arc::unwrap_or_clone(moves);
            for (player, moves) in newer {
                merged.entry(player).or_default().extend(moves);
            }
            pending.queued = merged;
        }
        if taken.eligible_before_ms.is_some() {
            pending.eligible_dirty = true;
        }
        pending.purges_writing.clear();
        let newer = std::mem::take(&mut pending.purges);
        pending.purges = taken.purges;
        pending.purges.extend(newer);
    }

    /// Checkpoint step 3: the archive rows of the batch.
    pub(super) fn fill_archive_batch(&self, taken: &ArchiveTaken, batch: &mut Batch) {
        if let Some(moves) = &taken.moves {
            for (player, moves) in moves.iter() {
                for m in moves {
                    batch.archive_moves.push(ArchiveMove {
                        player_id: player.to_string(),
                        season: m.season.to_string(),
                        question: m.question.to_string(),
                        archived_at_ms: m.at_ms,
                        card: codec::encode(&m.card),
                    });
                }
            }
        }
        batch.archive_eligible_before_ms = taken.eligible_before_ms;
        batch.archive_purges.clone_from(&taken.purges);
    }

    /// After a checkpoint's commit: the moves it wrote are in redb now.
    pub(super) fn srs_checkpoint_committed(&self, taken: &super::srs_ops::SrsDirty) {
        let mut pending = self.archive_state().pending.lock();
        if taken.archive.moves.is_some() {
            pending.writing = None;
            pending.generation += 1;
        }
        pending.purges_writing.clear();
    }

    /// Whether the card (lowercased question id) was archived and its move is not yet
    /// checkpointed: memory no longer has it while redb's live table still does
    /// (reconciliation skips such cards).
    pub(crate) fn has_pending_move(&self, player_id: &str, season: &str, question: &str) -> bool {
        let pending = self.archive_state().pending.lock();
        let hit = |map: &MoveMap| {
            map.get(player_id).is_some_and(|moves| {
                moves
                    .iter()
                    .any(|m| &*m.season == season && &*m.question == question)
            })
        };
        pending.writing.as_deref().is_some_and(hit) || hit(&pending.queued)
    }

    /// Pending (not yet checkpointed) moves of one player in one season: (question,
    /// archived at, card).
    pub(crate) fn pending_moves_of(
        &self,
        player_id: &str,
        season: &str,
    ) -> Vec<(String, i64, Card)> {
        let pending = self.archive_state().pending.lock();
        pending
            .moves()
            .filter(|(p, m)| &***p == player_id && &*m.season == season)
            .map(|(_, m)| (m.question.to_string(), m.at_ms, m.card))
            .collect()
    }

    /// Pending archive state of `season` (or of every season for purges), for counts.
    pub(crate) fn pending_archive_view(&self, season: &str) -> PendingView {
        let pending = self.archive_state().pending.lock();
        let mut moves: HashMap<(Arc<str>, Box<str>), i64> = HashMap::new();
        // `moves()` yields the taken moves first, then newer ones: the last one wins.
        for (player, m) in pending.moves() {
            if &*m.season == season {
                moves.insert((player.clone(), m.question.clone()), m.at_ms);
            }
        }
        PendingView {
            moves,
            purges: pending
                .purges_writing
                .iter()
                .chain(&pending.purges)
                .cloned()
                .collect(),
            eligible_before_ms: pending.eligible_before_ms,
        }
    }
}

/// MariaDB mirror queue keys of a checkpoint batch's archive part
/// (`persist::mirror::log`): for each moved card its live key `k` (the mirror finds the
/// live row gone and deletes it from `srs_cards`, unless the card was re-created) and
/// its archive key `v` (upserted into `srs_cards_archive`, or deleted once purged); `e`
/// for a raised retention cutoff; `x` per purge (no per-row keys: a purge can be
/// millions of rows). A card moved in the batch that also erases its player is queued
/// under the anonymous id its archive row is moved to.
pub fn mirror_keys(batch: &Batch) -> Vec<String> {
    use crate::persist::mirror::log;
    let mut keys = Vec::with_capacity(2 * batch.archive_moves.len());
    for m in &batch.archive_moves {
        keys.push(log::card_key(&m.player_id, &m.season, &m.question));
        let owner = batch
            .audit
            .erase
            .iter()
            .find(|(p, _)| *p == m.player_id)
            .map_or(m.player_id.as_str(), |(_, anon)| anon.as_str());
        keys.push(log::archived_key(owner, &m.season, &m.question));
    }
    if let Some(cutoff) = batch.archive_eligible_before_ms {
        keys.push(log::archive_flagged_key(cutoff));
    }
    for p in &batch.archive_purges {
        keys.push(log::archive_purged_key(p.before_ms, p.season.as_deref()));
    }
    keys
}
